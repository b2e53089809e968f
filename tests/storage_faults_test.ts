/**
 * End-to-end tests of storage under faults, with the real program: an output that cannot be
 * created, more busy outputs than `-maxOpenFiles`, client-chosen names that look like logboom's
 * own files or another output's rotations.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ingest, metric, until } from "./_http.ts";
import { CARD_PERMISSIONS, holdLock, startServer } from "./_server.ts";

const READ_WRITE = [...CARD_PERMISSIONS, "--allow-read"];

/** `/readyz`'s status and body. */
async function readyz(base: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${base}/readyz`);
  return { status: res.status, body: await res.text() };
}

Deno.test("an output that cannot be created holds up no other; /readyz says why until it writes", async () => {
  await using server = await startServer(
    ["-logFile", "logs/{source}/x.log", "-fsync", "batch"],
    { permissions: READ_WRITE },
  );
  // Its folder's name is taken by a file: "logs/a/x.log" cannot be made.
  await Deno.mkdir(join(server.dir, "logs"), { recursive: true });
  await Deno.writeTextFile(join(server.dir, "logs/a"), "a file, not a folder\n");
  const failingSince = Date.now();
  const forA = ingest(server.url, "for a\n", { query: "?source=a" });
  forA.catch(() => {}); // awaited below; a failure before then must not go unhandled
  await until(
    async () => (await readyz(server.url)).status === 503,
    () => "/readyz never reported the failing output",
  );
  const { body } = await readyz(server.url);
  assert.match(body, /cannot write "logs\/a\/x\.log" since \d{4}-.*Z: .*(directory|exists)/i);
  // Another output stores and acknowledges as before, also while the first keeps failing.
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${server.url}/api/v1/ingest?source=b`, {
      method: "POST",
      body: `for b ${i}\n`,
      signal: AbortSignal.timeout(10_000), // a guard: today it would wait for "a" forever
    });
    assert.deepEqual(await res.json(), { accepted: 1, duplicate: false });
  }
  assert.equal(
    await Deno.readTextFile(join(server.dir, "logs/b/x.log")),
    "for b 0\nfor b 1\nfor b 2\n",
  );
  assert.equal(await metric(server.url, 'logboom_sink_failing_outputs{sink="file"}'), 1);
  // The operator moves the file away: the held line is written, once, and acknowledged.
  await Deno.remove(join(server.dir, "logs/a"));
  assert.deepEqual((await forA).json, { accepted: 1, duplicate: false });
  const failingSeconds = (Date.now() - failingSince) / 1000;
  assert.equal(await Deno.readTextFile(join(server.dir, "logs/a/x.log")), "for a\n");
  assert.deepEqual(await readyz(server.url), { status: 200, body: "ready\n" });
  assert.equal((await server.stop()).code, 0);
  // Reported as a structured warning with the path and the error, not once per retry.
  const warnings = server.stderr().split("\n").filter((l) => l.includes("Cannot write to"));
  const most = 1 + Math.ceil(failingSeconds / 5); // at most one every 5 s
  assert.ok(warnings.length >= 1 && warnings.length <= most, warnings.join("\n"));
  assert.match(warnings[0], /Cannot write to "logs\/a\/x\.log": .+; retrying in \d+ ms/);
  assert.doesNotMatch(server.stderr(), /undefined/);
  assert.match(server.stderr(), /Writing to "logs\/a\/x\.log" again after \d+ failures/);
});

Deno.test("more busy outputs than -maxOpenFiles: lines wait for a place and are stored once", async () => {
  await using server = await startServer(
    ["-logFile", "logs/{source}.log", "-maxOpenFiles", "4", "-fsync", "batch"],
    { permissions: READ_WRITE },
  );
  // Another process holds the flock of four files: their writers are busy, the cap is reached.
  await Deno.mkdir(join(server.dir, "logs"), { recursive: true });
  const holders = [];
  for (let i = 0; i < 4; i++) {
    const path = join(server.dir, `logs/s${i}.log`);
    await Deno.writeTextFile(path, "");
    holders.push(await holdLock(path));
  }
  const records = Array.from(
    { length: 12 },
    (_, i) => JSON.stringify({ source: `s${i}`, line: `l${i}` }),
  );
  const answer = ingest(server.url, records.join("\n") + "\n", {
    headers: { "content-type": "application/x-ndjson" },
  });
  answer.catch(() => {}); // awaited below
  await until(
    async () => await metric(server.url, 'logboom_sink_queue_bytes{sink="file"}') > 0,
    () => "the body never reached the file sink",
  );
  const open = await metric(server.url, 'logboom_sink_open_files{sink="file"}');
  const waiting = await metric(server.url, 'logboom_sink_waiting_files{sink="file"}');
  for (const holder of holders) await holder.release();
  assert.deepEqual((await answer).json, { accepted: 12, duplicate: false });
  for (let i = 0; i < 12; i++) {
    assert.equal(await Deno.readTextFile(join(server.dir, `logs/s${i}.log`)), `l${i}\n`);
  }
  assert.deepEqual({ open, waiting }, { open: 4, waiting: 8 }, "while the locks were held");
  assert.equal((await server.stop()).code, 0);
  assert.doesNotMatch(server.stderr(), /is closed/);
});

Deno.test("names a client chooses reach neither hidden files nor another output's rotations", async () => {
  await using server = await startServer(
    ["-logFile", "logs/{source}.log", "-rotateSize", "64", "-keep", "1"],
    { permissions: READ_WRITE },
  );
  const dir = join(server.dir, "logs");
  const send = async (source: string, text: string) => {
    const answer = await ingest(server.url, text, {
      query: `?source=${encodeURIComponent(source)}`,
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
  };
  await send(".logboom-probe", "hidden?\n");
  await send("app.2026-11-22T00-00-00.000Z", "looks like a rotation of app\n");
  for (let i = 0; i < 6; i++) await send("app", `app line ${i} ${"x".repeat(40)}\n`);
  await until(
    async () => {
      const rotations = [];
      for await (const e of Deno.readDir(dir)) {
        if (/^app\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.log$/.test(e.name)) rotations.push(e);
      }
      return rotations.length === 1;
    },
    () =>
      `retention never left one rotation of app: ${[...Deno.readDirSync(dir)].map((e) => e.name)}`,
  );
  assert.equal((await server.stop()).code, 0);
  const names = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  // Hidden names are logboom's own (its state folder), never a client's.
  assert.ok(!names.includes(".logboom-probe.log"), names.join(" "));
  assert.equal(await Deno.readTextFile(join(dir, "_.logboom-probe.log")), "hidden?\n");
  assert.equal(
    await Deno.readTextFile(join(dir, "app.2026-11-22T00-00-00_000Z.log")),
    "looks like a rotation of app\n",
  );
});

Deno.test("a failing output holds back only the input that feeds it: another file goes on being read", async () => {
  await using server = await startServer(
    ["-logFile", "logs/{source}/x.log", "-queueBytes", "8MiB", "-watch", "in/*.txt"],
    { permissions: READ_WRITE },
  );
  await Deno.mkdir(join(server.dir, "in"));
  await Deno.mkdir(join(server.dir, "logs"), { recursive: true });
  // "a" cannot be written: its folder's name is taken by a file.
  await Deno.writeTextFile(join(server.dir, "logs/a"), "a file, not a folder\n");
  const b = join(server.dir, "in/b.txt");
  const stored = (text: string) => async () =>
    (await Deno.readTextFile(join(server.dir, "logs/b/x.log")).catch(() => "")).includes(text);
  await Deno.writeTextFile(b, "b 1\n");
  await until(stored("b 1\n"), () => "b's first line was never stored");
  // 12 MB for "a": past its share of the queue (a quarter), and past the whole queue's bound.
  const line = "a".repeat(99) + "\n";
  await Deno.writeTextFile(join(server.dir, "in/a.txt"), line.repeat(120_000));
  // The watch input holds a file's batch in flight until it is stored, and one more batch
  // written: two batches of at most 1 MiB of "a" wait in the queue.
  await until(
    async () => await metric(server.url, 'logboom_sink_queue_bytes{sink="file"}') >= 1024 * 1024,
    () => "a's lines never queued",
  );
  // "b" keeps flowing: each new line is read and stored, not held behind "a".
  for (let i = 2; i <= 4; i++) {
    await Deno.writeTextFile(b, `b ${i}\n`, { append: true });
    await until(stored(`b ${i}\n`), () => `b's line ${i} was held behind the failing output`);
  }
  assert.ok(
    await metric(server.url, 'logboom_sink_queue_bytes{sink="file"}') < 8 * 1024 * 1024,
    "the failing output took more than its share of the queue",
  );
  await Deno.remove(join(server.dir, "logs/a"));
  await until(
    async () =>
      (await Deno.readTextFile(join(server.dir, "logs/a/x.log")).catch(() => "")).length ===
        line.length * 120_000,
    () => "a's lines were not all stored once it could write",
  );
  assert.equal((await server.stop()).code, 0);
});

Deno.test("HTTP ingest for a failing output answers 503 once it holds its share; other sources keep their acknowledgements", async () => {
  await using server = await startServer(
    ["-logFile", "logs/{source}/x.log", "-queueBytes", "1MiB"],
    { permissions: READ_WRITE },
  );
  await Deno.mkdir(join(server.dir, "logs"), { recursive: true });
  await Deno.writeTextFile(join(server.dir, "logs/a"), "a file, not a folder\n");
  const body = ("a".repeat(99) + "\n").repeat(2000); // 200 kB
  const held: Promise<Response>[] = [];
  const statuses: number[] = [];
  // Eight bodies for "a", 1.6 MB in all: more than the whole queue's bound. Each is either
  // answered at once or taken into the queue (where it waits for "a" to be written).
  const queued = () => metric(server.url, 'logboom_sink_queue_bytes{sink="file"}');
  for (let i = 0; i < 8; i++) {
    let status: number | undefined;
    const res = fetch(`${server.url}/api/v1/ingest?source=a`, { method: "POST", body });
    res.then(async (r) => {
      await r.body?.cancel();
      status = r.status;
    }, () => {});
    const before = held.length;
    await until(
      async () => status !== undefined || await queued() >= body.length * (before + 1),
      () => `body ${i} was neither answered nor queued`,
    );
    if (status === undefined) held.push(res);
    else statuses.push(status);
  }
  assert.ok(statuses.length >= 5 && statuses.every((s) => s === 503), `statuses ${statuses}`);
  // "b" is still taken and acknowledged: "a" did not fill the queue for everyone.
  const res = await fetch(`${server.url}/api/v1/ingest?source=b`, {
    method: "POST",
    body: "for b\n",
    signal: AbortSignal.timeout(10_000),
  });
  assert.deepEqual(await res.json(), { accepted: 1, duplicate: false });
  // Once "a" can be written, what it took is stored once and answered.
  await Deno.remove(join(server.dir, "logs/a"));
  for (const r of held) {
    assert.equal((await r).status, 200);
  }
  const stored = await Deno.readTextFile(join(server.dir, "logs/a/x.log"));
  assert.equal(stored.length, body.length * held.length);
  assert.equal((await server.stop()).code, 0);
});
