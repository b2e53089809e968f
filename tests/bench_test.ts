/** `deno task bench` from a plain clone: usage, and what runs without `../shared/bench`. */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const decoder = new TextDecoder();

async function bench(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "bench", ...args],
    cwd: ROOT,
    // As on a plain clone: no shared yardstick next to it.
    env: { LOGBOOM_BENCH_DIR: "/nonexistent/bench", NO_COLOR: "1" },
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("deno task bench -h prints the flags and scenarios; a bad flag is a usage error", async () => {
  const help = await bench("-h");
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: deno task bench /m);
  for (const scenario of ["tcp", "store", "rotate", "agent", "http", "sse", "latency"]) {
    assert.match(help.stdout, new RegExp(`^  ${scenario} +\\w`, "m"));
  }
  const bad = await bench("-scenario", "nope");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Unknown scenario "nope"[^]*Usage:/);
});

Deno.test("deno task bench runs without ../shared/bench: tcp alone, yardstick scenarios skipped", async () => {
  const run = await bench("-scenario", "tcp,rotate", "-rounds", "1", "-c", "2", "-n", "2000");
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /logboom alone/);
  assert.match(run.stdout, /missing=0 duplicated=0 torn=0/);
  assert.match(run.stdout, /Skipped rotate: it needs the shared yardstick, and .* not found/);
});
