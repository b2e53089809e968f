import assert from "node:assert/strict";
import {
  LONG_MESSAGE_CHARS,
  longMessageLine,
  messageLine,
  RecordGroups,
  writeRecordBatches,
} from "./record_batches.ts";

const AT = Date.parse("2026-11-30T10:00:00.123Z");
const encoder = new TextEncoder();
const never = { due: () => false, pause: () => Promise.resolve() };

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Long messages with what a slice must not cut: CRLFs, surrogate pairs, line breaks at the end. */
function longMessages(): string[] {
  const n = LONG_MESSAGE_CHARS;
  const filler = (k: number) => "x".repeat(k);
  return [
    filler(n - 1) + "\r\n" + filler(n) + "\n\r\n",
    filler(n - 1) + "\u{1F600}" + filler(n - 1) + "\u{1F600}tail",
    filler(n - 1) + "\ud83d" + "lone" + "\ude00".repeat(3),
    " ".repeat(n + 5) + "\r\n",
    " ".repeat(n) + "\n" + " ".repeat(n),
    "\u00a0".repeat(2 * n + 3),
    "é".repeat(n) + "\nline two\n" + filler(3 * n),
  ];
}

Deno.test("longMessageLine: a long message makes the line messageLine makes, a slice at a time", async () => {
  for (const message of longMessages()) {
    let pauses = 0;
    const chunks = await longMessageLine(message, {
      due: () => true,
      pause: () => Promise.resolve(void pauses++),
    });
    assert.deepEqual(concat(chunks), encoder.encode(messageLine(message)));
    assert.ok(pauses >= Math.floor(message.length / LONG_MESSAGE_CHARS), `${pauses} pauses`);
  }
});

Deno.test("writeRecordBatches: long messages are stored as short ones are, in maxLine pieces with their columns", async () => {
  const messages = ["before", ...longMessages(), "after"];
  const groups = new RecordGroups("test");
  messages.forEach((message, i) =>
    groups.add("s", "h", { timeMs: AT + i, level: "warn", message, fields: { i } })
  );
  const maxLine = 100_000;
  const data: Uint8Array[] = [];
  const times: number[] = [];
  const { lines } = await writeRecordBatches(groups, (batch) => {
    data.push(batch.data.slice());
    times.push(...batch.times!);
  }, { maxLine, receivedAt: AT, turns: never });
  // What storing each line in pieces of maxLine bytes gives.
  const want: number[] = [];
  const wantTimes: number[] = [];
  messages.forEach((message, i) => {
    const bytes = encoder.encode(messageLine(message));
    for (let from = 0; from === 0 || from < bytes.length; from += maxLine) {
      want.push(...bytes.subarray(from, from + maxLine), 10);
      wantTimes.push(AT + i);
    }
  });
  assert.deepEqual(concat(data), Uint8Array.from(want));
  assert.deepEqual(times, wantTimes);
  assert.equal(lines, wantTimes.length);
});
