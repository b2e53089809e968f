/**
 * The machine's name, read only when permission for it is granted, so no command ever prompts or
 * fails for it.
 *
 * @module
 */

/** The machine's name when `--allow-sys=hostname` is granted, else `localhost`. */
export function hostName(): string {
  if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state !== "granted") {
    return "localhost";
  }
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}
