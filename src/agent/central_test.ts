import assert from "node:assert/strict";
import { type CentralConfig, pollCentralConfig } from "./central.ts";

/** A server of scripted answers; records each request's If-None-Match and the waits between. */
function script(answers: (() => Response)[]) {
  const seen: (string | null)[] = [];
  const waits: number[] = [];
  const applied: CentralConfig[] = [];
  const stop = new AbortController();
  let at = 0;
  const options = {
    server: "http://s",
    token: "t",
    id: "a1",
    host: "web-1",
    intervalMs: 1000,
    random: () => 1,
    apply: (update: CentralConfig) => {
      applied.push(update);
      return Promise.resolve();
    },
    fetch: (req: Request) => {
      assert.equal(req.url, "http://s/api/v1/agents/config?id=a1&host=web-1");
      assert.equal(req.headers.get("authorization"), "Bearer t");
      seen.push(req.headers.get("if-none-match"));
      const answer = answers[at++];
      if (at >= answers.length) stop.abort();
      return Promise.resolve(answer());
    },
    sleep: (ms: number) => {
      waits.push(ms);
      return Promise.resolve();
    },
  };
  return { options, seen, waits, applied, signal: stop.signal };
}

const config = (version: number) => () =>
  Response.json({ name: "web", version, config: { inputs: [] } }, {
    headers: { etag: `"${version}"` },
  });

Deno.test("central poll: sends the version it has, applies each new one once", async () => {
  const s = script([
    () => new Response("{}", { status: 404 }),
    config(1),
    () => new Response(null, { status: 304 }),
    config(2),
    () => new Response(null, { status: 304 }),
  ]);
  await pollCentralConfig(s.options, s.signal);
  assert.deepEqual(s.seen, [null, null, '"1"', '"1"', '"2"']);
  assert.deepEqual(s.applied.map((u) => u.version), [1, 2]);
  assert.deepEqual(s.waits, [1000, 1000, 1000, 1000, 1000]);
});

Deno.test("central poll: backs off while the server fails, honours Retry-After, says so once", async () => {
  const problems: string[] = [];
  const s = script([
    () => {
      throw new TypeError("connection refused");
    },
    () => new Response("down", { status: 503 }),
    () => new Response("down", { status: 503, headers: { "retry-after": "30" } }),
    () => new Response("down", { status: 503 }),
    config(1),
  ]);
  await pollCentralConfig({ ...s.options, onProblem: (m) => problems.push(m) }, s.signal);
  // Doubling from the interval (jitter drawn at its top), Retry-After when longer; then back.
  assert.deepEqual(s.waits, [1000, 2000, 30_000, 8000, 1000]);
  assert.deepEqual(problems, [
    "Cannot fetch the central config from http://s: connection refused",
    "Cannot fetch the central config from http://s: 503 : down",
  ]);
  assert.equal(s.applied.length, 1);
});
