/** `deno task bench` from a plain clone: usage, and what runs without `../shared/bench`. */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { hasTool } from "./_tools.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const decoder = new TextDecoder();

async function bench(...args: string[]) {
  return await benchWith({}, ...args);
}

async function benchWith(env: Record<string, string>, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "bench", ...args],
    cwd: ROOT,
    // As on a plain clone: no shared yardstick next to it.
    env: { LOGBOOM_BENCH_DIR: "/nonexistent/bench", NO_COLOR: "1", ...env },
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("deno task bench -h prints the flags and scenarios; a bad flag is a usage error", async () => {
  const help = await bench("-h");
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: deno task bench /m);
  const scenarios = ["tcp", "store", "rotate", "agent", "http", "sse", "latency", "cost"];
  for (const scenario of [...scenarios, "syslog", "udp"]) {
    assert.match(help.stdout, new RegExp(`^  ${scenario} +\\w`, "m"));
  }
  assert.match(help.stdout, /^ {2}syslog +.*rsyslog imptcp.*\[needs Go and rsyslog\]$/m);
  assert.match(help.stdout, /^ {2}udp +.*rsyslog imudp.*\[needs Go and rsyslog\]$/m);
  assert.match(help.stdout, /^ {2}-rate N$/m);
  const bad = await bench("-scenario", "nope");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Unknown scenario "nope"[^]*Usage:/);
  // Syslog messages have a 71-byte header: lines shorter than 100 bytes cannot carry one.
  const short = await bench("-scenario", "syslog", "-s", "60");
  assert.equal(short.code, 2);
  assert.match(short.stderr, /-s must be at least 100 for syslog and udp/);
});

Deno.test("deno task bench without rsyslog skips syslog and udp, saying what is missing", async () => {
  const run = await benchWith(
    { RSYSLOGD: "/nonexistent/rsyslogd" },
    ...["-scenario", "syslog,udp", "-rounds", "1"],
  );
  assert.equal(run.code, 0, run.stdout + run.stderr);
  for (const scenario of ["syslog", "udp"]) {
    assert.match(
      run.stdout,
      new RegExp(
        `^Skipped ${scenario}: it needs .*rsyslog \\(RSYSLOGD=/nonexistent/rsyslogd does not run\\)`,
        "m",
      ),
    );
  }
});

const syslogBenchReady = await hasTool("go") && await hasTool("rsyslogd");

Deno.test({
  name: "deno task bench -scenario syslog: logboom and rsyslog store every message once",
  ignore: !syslogBenchReady,
  async fn() {
    const run = await bench("-scenario", "syslog", "-rounds", "1", "-c", "2", "-n", "2000");
    // Rates of a tiny run say nothing: only the 2x bar may be missed, never a lost line.
    assert.ok(run.code === 0 || run.code === 1, run.stdout + run.stderr);
    if (run.code === 1) {
      assert.match(run.stdout, /^Bar missed: syslog: logboom [\d.]+x rsyslog's lines\/s < 2x$/m);
    }
    for (const receiver of ["logboom", "rsyslog", "logboom-parsed"]) {
      assert.match(
        run.stdout,
        new RegExp(
          `^  ${receiver} +[\\d.]+ M lines/s, .*\\| ok .*\\| lines=4000 missing=0 duplicated=0 torn=0`,
          "m",
        ),
      );
    }
    assert.match(run.stdout, /^logboom\/rsyslog: [\d.]+x the lines\/s, rsyslog used [\d.]+x/m);
  },
});

Deno.test("deno task bench runs without ../shared/bench: tcp alone, yardstick scenarios skipped", async () => {
  const run = await bench("-scenario", "tcp,rotate", "-rounds", "1", "-c", "2", "-n", "2000");
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /logboom alone/);
  assert.match(run.stdout, /missing=0 duplicated=0 torn=0/);
  assert.match(run.stdout, /Skipped rotate: it needs the shared yardstick, and .* not found/);
});
