import { compileLinearRegex } from "../text/linear_regex.ts";
import assert from "node:assert/strict";
import type { MultilineConfig } from "./multiline.ts";
import { MultilineFramer } from "./multiline.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CONFIG: MultilineConfig = {
  start: compileLinearRegex("^\\d{4}-\\d{2}-\\d{2} "),
  join: "\\n",
  maxLines: 500,
  maxBytes: 1 << 20,
  timeoutMs: 1000,
};

function feed(framer: MultilineFramer, text: string): string[] {
  const bytes = encoder.encode(text);
  let out = "";
  for (let at = 0; at < bytes.length;) {
    const room = framer.buffer;
    const n = Math.min(room.length, bytes.length - at, 7); // small reads: events span reads
    room.set(bytes.subarray(at, at + n));
    at += n;
    const framed = framer.commit(n);
    if (framed) out += decoder.decode(framed.data);
  }
  return out.split("\n").filter((l) => l !== "");
}

Deno.test("multiline joins continuation lines to the event they follow", () => {
  const framer = new MultilineFramer(CONFIG);
  const text = "2024-01-01 ERROR boom\r\njava.lang.Exception: x\n\tat a.b(C.java:1)\n\n" +
    "2024-01-01 INFO ok\n2024-01-02 WARN half";
  const events = feed(framer, text);
  assert.deepEqual(events, [
    "2024-01-01 ERROR boom\\njava.lang.Exception: x\\n\tat a.b(C.java:1)",
  ]);
  // The pending event and the partial line are what the checkpoint must not pass.
  const pending = "2024-01-01 INFO ok\n2024-01-02 WARN half";
  assert.equal(framer.pending, encoder.encode(pending).length);
  assert.deepEqual(decoder.decode(framer.flushEvent()!.data), "2024-01-01 INFO ok\n");
  assert.equal(framer.pending, "2024-01-02 WARN half".length);
  assert.deepEqual(decoder.decode(framer.end()!.data), "2024-01-02 WARN half\n");
  assert.equal(framer.pending, 0);
});

Deno.test("multiline cuts an event at max_lines and keeps orphan lines", () => {
  const framer = new MultilineFramer({ ...CONFIG, maxLines: 2 });
  const events = feed(framer, "orphan\n2024-01-01 a\nb\nc\nd\n2024-01-01 e\n");
  assert.deepEqual(events, ["orphan", "2024-01-01 a\\nb", "c\\nd"]);
});
