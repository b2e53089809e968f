import assert from "node:assert/strict";
import type { LiveLine } from "./subscription.ts";
import { encodeSseDropped, encodeSseLines, encodeSseMessage } from "./sse.ts";
import { SseDecoderStream, type SseEvent } from "./sse_decoder.ts";

async function decode(chunks: string[], lastEventId?: string): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const stream = ReadableStream.from(chunks).pipeThrough(new SseDecoderStream(lastEventId));
  for await (const event of stream) events.push(event);
  return events;
}

Deno.test("SseDecoderStream reads what the encoder writes, split at every byte", async () => {
  const line: LiveLine = { id: 7, source: "app", host: "h", ts: 1, line: "a\r\nb: c\u2028" };
  const text = "retry: 1000\n" + encodeSseMessage({ id: 6, event: "ready", data: "{}" }) +
    encodeSseLines([line]) + ": heartbeat\n\n" + encodeSseDropped(3);
  const expected: SseEvent[] = [
    { event: "ready", data: "{}", lastEventId: "6", retry: 1000 },
    { event: "message", data: JSON.stringify(line), lastEventId: "7" },
    { event: "dropped", data: '{"count":3}', lastEventId: "7" },
  ];
  assert.deepEqual(await decode([text]), expected);
  assert.deepEqual(await decode([...text]), expected);
});

Deno.test("SseDecoderStream handles CR, CRLF split across chunks, multi-line data and no space", async () => {
  const events = await decode(
    ["data:x\r", "\ndata: y\r\rid: 9\nevent:e\ndata\n\n", "data: cut"],
    "4",
  );
  assert.deepEqual(events, [
    { event: "message", data: "x\ny", lastEventId: "4" },
    { event: "e", data: "", lastEventId: "9" },
  ]);
});
