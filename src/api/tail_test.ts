import assert from "node:assert/strict";
import type { Batch } from "../pipeline/batch.ts";
import { LiveHub } from "../live/hub.ts";
import { type SseEvent, SseParser } from "../live/sse_decoder.ts";
import { TailRoute } from "./tail.ts";

const encoder = new TextEncoder();

/** A batch of `api` whose lines carry a level code and fields each. */
function records(lines: [text: string, level: number, fields?: Record<string, string>][]): Batch {
  return {
    data: encoder.encode(lines.map(([text]) => text + "\n").join("")),
    lines: lines.length,
    meta: { source: "api", host: "10.0.0.1", input: "test" },
    receivedAt: 1000,
    levels: new Uint8Array(lines.map(([, level]) => level)),
    fields: lines.map(([, , fields]) => fields),
  };
}

/** Reads SSE messages (lines) from `response` until `count` arrived; ends the stream. */
async function messages(response: Response, count: number): Promise<Record<string, unknown>[]> {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const reader = response.body!.getReader();
  const found: SseEvent[] = [];
  try {
    while (found.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      found.push(
        ...parser.push(decoder.decode(value, { stream: true })).filter((e) =>
          e.event === "message"
        ),
      );
    }
  } finally {
    await reader.cancel();
  }
  return found.map((event) => JSON.parse(event.data));
}

async function errorOf(response: Response): Promise<string> {
  return (await response.json()).error;
}

Deno.test("the tail route filters by level and fields on the server, and sends both", async () => {
  const hub = new LiveHub({ epoch: "e1" });
  const route = new TailRoute(hub, { heartbeatMs: 60_000 });
  const warn = route.handle(new Request("http://x/api/v1/tail?level=WARN&field.service=billing"));
  // `level>=warn` reads as the parameter `level>`: the same filter.
  const ge = route.handle(new Request("http://x/api/v1/tail?level>=error"));
  assert.equal(warn.status, 200);
  hub.write(records([
    ["info billing", 3, { service: "billing" }],
    ["warn auth", 4, { service: "auth" }],
    ["error billing", 5, { service: "billing", region: "eu" }],
    ["fatal, no fields", 6],
    ["no level", 0, { service: "billing" }],
  ]));
  assert.deepEqual(await messages(warn, 1), [
    {
      id: 3,
      source: "api",
      host: "10.0.0.1",
      ts: 1000,
      level: "error",
      line: "error billing",
      fields: { service: "billing", region: "eu" },
    },
  ]);
  assert.deepEqual((await messages(ge, 2)).map((m) => [m.line, m.level]), [
    ["error billing", "error"],
    ["fatal, no fields", "fatal"],
  ]);
  await route.close();
  await hub.close();
});

Deno.test("the tail route answers 400 for an unknown level or a field filter it cannot read", async () => {
  const hub = new LiveHub();
  const route = new TailRoute(hub);
  const cases: [query: string, error: RegExp][] = [
    ["level=warning", /Query "level" must be one of trace, debug, info, warn, error, fatal/],
    ["level=warn&level>=error", /given 2 times/],
    ["field.=x", /names no field: use field\.NAME=VALUE/],
    ["field.service=a&field.service=b", /"field\.service" is given twice/],
  ];
  for (const [query, error] of cases) {
    const response = route.handle(new Request(`http://x/api/v1/tail?${query}`));
    assert.equal(response.status, 400, query);
    assert.match(await errorOf(response), error);
  }
  assert.equal(hub.stats.subscribers, 0, "no subscription was opened");
  await route.close();
  await hub.close();
});
