/**
 * `deno task vendor:web`: copies the web page's libraries from their npm packages, at the
 * versions pinned in `deno.json` (`preact`, `htm`, `uplot`; Deno checks each package against
 * `deno.lock`'s integrity hash when it fetches it), into `src/web/vendor/`, where the page loads
 * them from the server itself (no CDN, no build step).
 *
 * Each file is the package's own file, byte for byte, after a one-line comment that names the
 * package, its version, the file and its license; the only change is in Preact's hooks, whose
 * bare `"preact"` import becomes `"./preact.js"`, since a page under a Content-Security-Policy
 * without `unsafe-inline` has no inline import map to resolve a bare name. Each package's license
 * text is copied beside it. `src/web/vendor_test.ts` checks the vendored files are exactly what
 * this script makes from the pinned packages.
 *
 * ```sh
 * deno task vendor:web     # after changing a version in deno.json (and `deno install`)
 * ```
 *
 * @module
 */

import "./_vendor_packages.js";
import { dirname, join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

/** One vendored file: where it comes from and what it becomes. */
interface Vendored {
  /** Its name in `src/web/vendor/`. */
  name: string;
  /** The bare specifier whose resolved file is the package's file (deno.json's imports). */
  from: string;
  /** The file inside the package, for the header. */
  path: string;
  /** Changes to the package's text (a bare import made relative). */
  rewrite?: (text: string) => string;
}

const FILES: readonly Vendored[] = [
  { name: "preact.js", from: "preact", path: "dist/preact.mjs" },
  {
    name: "hooks.js",
    from: "preact/hooks",
    path: "hooks/dist/hooks.mjs",
    rewrite: (text) => replaceOnce(text, 'from"preact"', 'from"./preact.js"'),
  },
  { name: "htm.js", from: "htm", path: "dist/htm.mjs" },
  { name: "uPlot.js", from: "uplot", path: "dist/uPlot.iife.min.js" },
  { name: "uPlot.css", from: "uplot", path: "dist/uPlot.min.css" },
];

/** The folder the vendored files live in. */
export const VENDOR_DIR = fromFileUrl(new URL("../src/web/vendor/", import.meta.url));

/**
 * What `src/web/vendor/` must hold, by file name: made from the pinned packages in Deno's npm
 * cache (they are fetched and checked against `deno.lock` when this module loads).
 */
export async function vendoredFiles(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const licenses = new Map<string, string>();
  for (const file of FILES) {
    const root = await packageRoot(file.from);
    const pkg = JSON.parse(await Deno.readTextFile(join(root, "package.json")));
    const text = await Deno.readTextFile(join(root, file.path));
    const body = file.rewrite === undefined ? text : file.rewrite(text);
    const header = `/* vendored: npm ${pkg.name}@${pkg.version} ${file.path}; ` +
      `${pkg.license} license, see ${pkg.name}.LICENSE; made by scripts/vendor_web.ts */\n`;
    out.set(file.name, header + body);
    licenses.set(`${pkg.name}.LICENSE`, await Deno.readTextFile(join(root, "LICENSE")));
  }
  for (const [name, text] of licenses) out.set(name, text);
  return out;
}

/** The folder of the npm package a bare specifier of deno.json resolves into. */
async function packageRoot(specifier: string): Promise<string> {
  // `import.meta.resolve` of an npm package gives the file of its export in Deno's npm cache.
  const resolved = specifier === "uplot"
    ? import.meta.resolve("uplot/dist/uPlot.min.css")
    : import.meta.resolve(specifier);
  let dir = dirname(fromFileUrl(resolved));
  for (;;) {
    try {
      const pkg = JSON.parse(await Deno.readTextFile(join(dir, "package.json")));
      if (typeof pkg.name === "string" && typeof pkg.version === "string") return dir;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`No package.json above the file of "${specifier}"`);
    dir = up;
  }
}

function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) {
    throw new Error(`Expected "${from}" exactly once in the package's file`);
  }
  return text.slice(0, at) + to + text.slice(at + from.length);
}

if (import.meta.main) {
  await Deno.mkdir(VENDOR_DIR, { recursive: true });
  for (const [name, text] of await vendoredFiles()) {
    await Deno.writeTextFile(join(VENDOR_DIR, name), text);
    console.log(`src/web/vendor/${name}: ${text.length} characters`);
  }
}
