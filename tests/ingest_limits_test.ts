/**
 * HTTP ingest against the store's limits: an answer is all or nothing, so a retry never stores a
 * line twice.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ingest } from "./_http.ts";
import { startServer } from "./_server.ts";

const ndjson = { "content-type": "application/x-ndjson" };

function body(prefix: string, sources: number, tail = ""): string {
  let text = "";
  for (let i = 0; i < sources; i++) {
    for (const n of [1, 2]) {
      text += JSON.stringify({ line: `${prefix}${i} line ${n}`, source: `${prefix}${i}` }) + "\n";
    }
  }
  return text + tail;
}

async function files(folder: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(folder)) if (entry.isFile) names.push(entry.name);
  return names.sort();
}

Deno.test("a body with 1,100 sources under -maxOpenFiles 1000 stores every line once, or nothing", async () => {
  await using server = await startServer([
    "-fsync",
    "batch",
    "-logFile",
    "logs/{source}.log",
    "-maxOpenFiles",
    "1000",
  ]);
  const logs = join(server.dir, "logs");
  const stream = { "x-stream-id": "many", "x-stream-offset": "1" };
  const first = await ingest(server.url, body("s", 1100), { headers: { ...ndjson, ...stream } });
  assert.deepEqual(first.json, { accepted: 2200, duplicate: false });
  // The retry a client makes when it missed the answer.
  const again = await ingest(server.url, body("s", 1100), { headers: { ...ndjson, ...stream } });
  assert.deepEqual(again.json, { accepted: 0, duplicate: true });
  const stored = await files(logs);
  assert.equal(stored.length, 1100);
  for (const i of [0, 999, 1000, 1099]) {
    assert.equal(await Deno.readTextFile(join(logs, `s${i}.log`)), `s${i} line 1\ns${i} line 2\n`);
  }
  // An error answers for the whole body: nothing of it is stored, so its retry cannot duplicate.
  const broken = await ingest(server.url, body("t", 1100, '{"line": "cut sh'), { headers: ndjson });
  assert.equal(broken.status, 400);
  assert.match(String(broken.json.error), /Record 2201 of the body is not JSON/);
  assert.deepEqual(await files(logs), stored);
  assert.equal((await server.stop()).code, 0, server.stderr());
});
