/**
 * End-to-end tests of storage: templates, rotation, compression, retention, logrotate, crashes
 * and a full disk, with the real program. Rotation and retention need read permission on the
 * log folder, so these runs add `--allow-read`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CARD_PERMISSIONS,
  clientLines,
  send,
  startServer,
  verifyLines,
  waitForBytes,
  waitForSize,
  writeAll,
} from "./_server.ts";

const READ_WRITE = [...CARD_PERMISSIONS, "--allow-read"];
const ROTATED = /\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}Z(_\d+)?\.log(\.gz)?$/;

/** Every file in `dir`, by name. */
async function names(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) if (entry.isFile) found.push(entry.name);
  return found.sort();
}

/** The text of a file, gunzipped when its name ends with `.gz`. */
async function readLog(path: string): Promise<string> {
  if (!path.endsWith(".gz")) return await Deno.readTextFile(path);
  using file = await Deno.open(path);
  const stream = file.readable.pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

/** Polls `check` until it returns true, failing after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > deadline) assert.fail(`Timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Sends `clients` x `count` unique lines over concurrent connections. */
async function load(port: number, clients: number, count: number, first = 0): Promise<void> {
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await writeAll(conn, clientLines(first + c, count));
  }));
}

Deno.test("-logFile template makes one file per host and source and date", async () => {
  await using server = await startServer(["-logFile", "logs/{host}/{source}-{date}.log"]);
  await send(server.port, "templated\n");
  const date = new Date().toISOString().slice(0, 10);
  const path = join(server.dir, `logs/127.0.0.1/tcp-${date}.log`);
  assert.equal(await waitForSize(path, 10), "templated\n");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("rotation by size under concurrent load with compression: every line once, none torn", async () => {
  await using server = await startServer(
    ["-logFile", "out/app.log", "-rotateSize", "256KiB", "-compress"],
    { permissions: READ_WRITE },
  );
  const clients = 8;
  const count = 20_000;
  await load(server.port, clients, count);
  const dir = join(server.dir, "out");
  const total = clients * count * 60;
  let text = "";
  await until("every line is stored and every rotated file compressed", async () => {
    const files = await names(dir);
    if (files.some((n) => n.endsWith(".tmp") || (ROTATED.test(n) && !n.endsWith(".gz")))) {
      return false;
    }
    const parts = await Promise.all(files.map((n) => readLog(join(dir, n))));
    text = parts.join("");
    return text.length >= total;
  });
  assert.equal((await server.stop()).code, 0);
  const files = await names(dir);
  assert.ok(files.filter((n) => n.endsWith(".gz")).length >= 15, files.join(" "));
  for (const name of files.filter((n) => n.endsWith(".gz"))) {
    const plain = await readLog(join(dir, name));
    assert.ok(plain.length <= 256 * 1024, `${name} holds ${plain.length} bytes`);
    assert.ok(plain.endsWith("\n"), `${name} ends with a whole line`);
    const gzipTest = await new Deno.Command("gzip", { args: ["-t", join(dir, name)] }).output();
    assert.equal(gzipTest.code, 0, `gzip -t ${name}`);
  }
  assert.deepEqual(verifyLines(text, clients, count), {
    lines: clients * count,
    missing: 0,
    duplicated: 0,
    torn: 0,
  });
});

Deno.test("-keep 3 deletes all but the three newest rotations", async () => {
  await using server = await startServer(
    ["-logFile", "app.log", "-rotateSize", "64KiB", "-keep", "3"],
    { permissions: READ_WRITE },
  );
  await load(server.port, 2, 10_000);
  const rotated = async () => (await names(server.dir)).filter((n) => ROTATED.test(n));
  await waitForBytes(join(server.dir, "app.log"), 1);
  await until("three rotations remain", async () => (await rotated()).length === 3);
  assert.equal((await server.stop()).code, 0);
  const kept = await rotated();
  assert.equal(kept.length, 3);
  // The newest three: together with the live file they hold the last lines that were sent.
  const text = (await Promise.all([...kept, "app.log"].map((n) => readLog(join(server.dir, n)))))
    .join("");
  assert.ok(text.length <= 4 * 64 * 1024);
  assert.equal(verifyLines(text, 2, 10_000).torn, 0);
});

Deno.test("-maxAge deletes rotations older than the age at the next rotation", async () => {
  await using server = await startServer(
    ["-logFile", "app.log", "-rotateSize", "16KiB", "-maxAge", "1s"],
    { permissions: READ_WRITE },
  );
  await load(server.port, 1, 2000);
  const rotated = async () => (await names(server.dir)).filter((n) => ROTATED.test(n));
  await until("the first burst rotated", async () => (await rotated()).length >= 5);
  const old = await rotated();
  // Age is the subject here: let the first rotations grow older than a second.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await load(server.port, 1, 2000, 1);
  await until("the old rotations are gone", async () => {
    const now = await rotated();
    return now.length > 0 && old.every((n) => !now.includes(n));
  });
  assert.equal((await server.stop()).code, 0);
});

Deno.test("-rotateEvery rotates at the period's boundary", async () => {
  await using server = await startServer(["-logFile", "app.log", "-rotateEvery", "1s"], {
    permissions: READ_WRITE,
  });
  await send(server.port, "before the boundary\n");
  await waitForSize(join(server.dir, "app.log"), 20);
  const boundary = Math.ceil(Date.now() / 1000) * 1000;
  await new Promise((resolve) => setTimeout(resolve, boundary - Date.now() + 50));
  await send(server.port, "after the boundary\n");
  const rotatedNames = async () => (await names(server.dir)).filter((n) => ROTATED.test(n));
  await until("the file rotated", async () => (await rotatedNames()).length > 0);
  assert.equal(await waitForSize(join(server.dir, "app.log"), 19), "after the boundary\n");
  const rotated = await rotatedNames();
  assert.equal(rotated.length, 1);
  assert.equal(await readLog(join(server.dir, rotated[0])), "before the boundary\n");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("logrotate: a renamed file is noticed and the path reopened (with read permission)", async () => {
  await using server = await startServer(["-logFile", "app.log"], { permissions: READ_WRITE });
  const path = join(server.dir, "app.log");
  await send(server.port, "old file\n");
  await waitForSize(path, 9);
  await Deno.rename(path, path + ".1");
  await send(server.port, "new file\n");
  assert.equal(await waitForSize(path, 9), "new file\n");
  assert.equal(await Deno.readTextFile(path + ".1"), "old file\n");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("logrotate: SIGHUP reopens the file, even with write permission only", async () => {
  await using server = await startServer(["-logFile", "app.log"]);
  const path = join(server.dir, "app.log");
  await send(server.port, "old file\n");
  await waitForSize(path, 9);
  await Deno.rename(path, path + ".1");
  server.child.kill("SIGHUP");
  await until("SIGHUP was handled", () => Promise.resolve(server.stderr().includes("SIGHUP")));
  await send(server.port, "new file\n");
  assert.equal(await waitForSize(path, 9), "new file\n");
  assert.equal(await Deno.readTextFile(path + ".1"), "old file\n");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("kill -9 under load, then restart and more load: no line doubled, torn lines ended", async () => {
  await using first = await startServer(["-logFile", "app.log"], { permissions: READ_WRITE });
  const path = join(first.dir, "app.log");
  const sending = load(first.port, 4, 50_000).catch(() => {}); // reset by the crash
  await waitForBytes(path, 2 * 1024 * 1024);
  await first.stop("SIGKILL");
  await sending;
  await using second = await startServer(["-logFile", "app.log"], {
    dir: first.dir,
    permissions: READ_WRITE,
  });
  const before = (await Deno.stat(path)).size;
  await load(second.port, 4, 10_000, 4);
  const text = await waitForSize(path, before + 4 * 10_000 * 60);
  assert.equal((await second.stop()).code, 0);
  const lines = text.split("\n").filter((l) => l !== "");
  const torn = lines.filter((l) => !/^c\d+ \d+ x{40,}$/.test(l) || l.length !== 59);
  // The kernel may stop a large write between pages when the process is killed: at most the one
  // line being written is cut, and the restart ends it so nothing glues onto it.
  assert.ok(torn.length <= 1, `torn: ${torn.join(" | ")}`);
  for (const line of torn) {
    assert.match(line, /^c\d+ \d+ x*$/, "a torn line is a prefix of a real one");
  }
  if (torn.length > 0) assert.match(second.stderr(), /ended in the middle of a line/);
  const whole = lines.filter((l) => !torn.includes(l)).join("\n") + "\n";
  const verdict = verifyLines(whole, 8, 50_000);
  assert.equal(verdict.duplicated, 0);
  assert.equal(verdict.torn, 0);
  const afterRestart = lines.filter((l) => /^c[4-7] /.test(l));
  assert.equal(afterRestart.length, 40_000, "every line sent after the restart is stored");
  assert.equal(new Set(afterRestart).size, 40_000);
});

Deno.test("a torn last line from an earlier crash is ended before new lines are appended", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-e2e-" });
  try {
    await Deno.writeTextFile(join(dir, "app.log"), "whole\ntorn half");
    await using server = await startServer(["-logFile", "app.log"], {
      dir,
      permissions: READ_WRITE,
    });
    await send(server.port, "next\n");
    assert.equal(await waitForSize(join(dir, "app.log"), 21), "whole\ntorn half\nnext\n");
    assert.match(server.stderr(), /"app\.log" ended in the middle of a line/);
    assert.equal((await server.stop()).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("-format json stores each line with its time, source and host", async () => {
  await using server = await startServer(["-format", "json"]);
  await send(server.port, 'say "hi"\n');
  const path = join(server.dir, "aggregated_logs.txt");
  await waitForBytes(path, 60);
  assert.equal((await server.stop()).code, 0);
  const record = JSON.parse(await Deno.readTextFile(path));
  assert.equal(record.line, 'say "hi"');
  assert.equal(record.source, "tcp");
  assert.equal(record.host, "127.0.0.1");
  assert.ok(Math.abs(Date.parse(record.ts) - Date.now()) < 60_000);
});

Deno.test("rotation without read permission is refused at startup with the fix", async () => {
  await using server = await startServer(["-rotateSize", "1MiB"], { waitReady: false });
  const status = await server.exited();
  assert.equal(status.code, 1);
  assert.match(server.stderr(), /need read permission on "\."[^\n]*--allow-read=\./);
});

Deno.test({
  name:
    "disk full: one clear error, lines kept, pushback, and every line written once when space returns",
  ignore: Deno.uid() !== 0,
  async fn() {
    const mount = await Deno.makeTempDir({ prefix: "logboom-tmpfs-" });
    const mounted = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mount],
    }).output();
    assert.equal(mounted.code, 0, new TextDecoder().decode(mounted.stderr));
    try {
      // Leave about 200 KB free, then send 600 KB.
      await Deno.writeFile(join(mount, "filler"), new Uint8Array(2 * 1024 * 1024 - 200_000));
      await using server = await startServer(["-logFile", join(mount, "app.log")], {
        permissions: READ_WRITE,
      });
      await load(server.port, 1, 10_000);
      await until(
        "the full disk is reported",
        () => Promise.resolve(/No space left/.test(server.stderr())),
      );
      const errors = server.stderr().split("\n").filter((l) => /No space left/.test(l));
      assert.equal(errors.length, 1, "one error, not one per retry");
      await Deno.remove(join(mount, "filler"));
      const text = await waitForSize(join(mount, "app.log"), 10_000 * 60);
      assert.deepEqual(verifyLines(text, 1, 10_000), {
        lines: 10_000,
        missing: 0,
        duplicated: 0,
        torn: 0,
      });
      assert.match(server.stderr(), /again after \d+ failures/);
      assert.equal((await server.stop()).code, 0);
    } finally {
      await new Deno.Command("umount", { args: [mount] }).output();
      await Deno.remove(mount, { recursive: true });
    }
  },
});
