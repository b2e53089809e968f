/**
 * Writes `docs/config-reference.md` from the key tables (`deno task config-docs`), formatted by
 * `deno fmt` as the rest of `docs/`. With `--check`, writes nothing and exits 1 when the page is
 * stale.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { EXAMPLE_URL, renderReference } from "../src/config/reference.ts";

/** The page in the repository. */
export const PAGE_URL = new URL("../docs/config-reference.md", import.meta.url);

/** The page as it should be: rendered, then formatted by `deno fmt` with the repository's config. */
export async function expectedPage(): Promise<string> {
  const example = await Deno.readTextFile(EXAMPLE_URL);
  const fmt = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=md", "-"],
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = fmt.stdin.getWriter();
  await writer.write(new TextEncoder().encode(renderReference(example)));
  await writer.close();
  const { code, stdout, stderr } = await fmt.output();
  if (code !== 0) throw new Error(`deno fmt failed: ${new TextDecoder().decode(stderr)}`);
  return new TextDecoder().decode(stdout);
}

if (import.meta.main) {
  const page = await expectedPage();
  const current = await Deno.readTextFile(PAGE_URL).catch(() => "");
  if (Deno.args.includes("--check")) {
    if (current !== page) {
      console.error("docs/config-reference.md is stale: run deno task config-docs");
      Deno.exit(1);
    }
  } else if (current !== page) {
    await Deno.writeTextFile(PAGE_URL, page);
    console.log("Wrote docs/config-reference.md");
  }
}
