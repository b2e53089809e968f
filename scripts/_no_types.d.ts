// No types: see _vendor_packages.js.
export {};
