/**
 * The modules of `src/` a module imports, directly or not: for tests that keep layers pointing one
 * way (a library importing nothing above it, a client command no server module).
 *
 * @module
 */

import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The `src/` folder. */
export const SRC: string = dirname(fileURLToPath(import.meta.url));

/**
 * Every module of `src/` that `entry` (a path under `src/`) imports, directly or not, itself
 * included, as paths under `src/` (static imports and re-exports only).
 *
 * @example
 * ```ts
 * importsOf("files/file_input.ts"); // Set { "files/file_input.ts", "_util.ts", ... }
 * ```
 */
export function importsOf(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (path: string) => {
    const name = relative(SRC, path);
    if (seen.has(name)) return;
    seen.add(name);
    const text = Deno.readTextFileSync(path);
    for (const match of text.matchAll(/^(?:import|export)[^"';]*?["'](\.{1,2}\/[^"']+)["']/gm)) {
      visit(join(dirname(path), match[1]));
    }
  };
  visit(join(SRC, entry));
  return seen;
}
