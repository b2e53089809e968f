import assert from "node:assert/strict";
import { DeliveryBudget } from "./delivery_budget.ts";
import { LiveHub } from "./hub.ts";
import { sseBody } from "./sse_body.ts";
import { SseParser } from "./sse_decoder.ts";

const encoder = new TextEncoder();

Deno.test("sseBody sends what the share allows per write, every line once and in order", async () => {
  let now = 0;
  // 10 lines per ms; the reader below lets 3.33 ms pass per write, so the share is never whole.
  const budget = new DeliveryBudget(10_000, { now: () => now });
  const hub = new LiveHub({ maxEventLines: 10_000 });
  const sub = hub.subscribe();
  const texts = Array.from({ length: 1000 }, (_, i) => `line ${i}`);
  hub.write({
    data: encoder.encode(texts.map((t) => t + "\n").join("")),
    lines: texts.length,
    meta: { source: "app", host: "h", input: "test" },
    receivedAt: 0,
  });
  const reader = sseBody(sub, { share: budget.join() }).pipeThrough(new TextDecoderStream())
    .getReader();
  const parser = new SseParser();
  const received: string[] = [];
  const perWrite: number[] = [];
  while (received.length < texts.length) {
    now += 10 / 3;
    const { done, value } = await reader.read();
    assert.equal(done, false, `ended after ${received.length} lines`);
    const lines = parser.push(value!).map((event) => JSON.parse(event.data).line as string);
    perWrite.push(lines.length);
    received.push(...lines);
  }
  await reader.cancel();
  assert.deepEqual(received, texts);
  assert.ok(Math.max(...perWrite) <= 34, `lines per write: ${perWrite.join(" ")}`);
  assert.equal(budget.members, 0, "the share is given back");
  assert.equal(sub.closed, true);
  await hub.close();
});
