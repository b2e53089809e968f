import assert from "node:assert/strict";
import type { LiveEvent, LiveLine } from "./subscription.ts";
import {
  encodeSseComment,
  encodeSseDropped,
  encodeSseEvent,
  encodeSseLines,
  encodeSseMessage,
  encodeSseRaw,
  SseEncoderStream,
} from "./sse.ts";

interface Parsed {
  id: string;
  event: string;
  data: string;
}

/** The event-stream parser of the HTML standard (without retry), as a browser runs it. */
function parseSse(text: string): Parsed[] {
  const events: Parsed[] = [];
  let id = "";
  let event = "";
  let data: string[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === "") {
      if (data.length > 0) events.push({ id, event: event || "message", data: data.join("\n") });
      event = "";
      data = [];
      continue;
    }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return events;
}

const line = (id: number, text: string): LiveLine => ({
  id,
  source: "app",
  host: "10.0.0.1",
  ts: 1_700_000_000_000,
  line: text,
});

Deno.test("lines become one message each, with the line id as the cursor", () => {
  const text = encodeSseLines([line(41, "first"), line(42, "second")]);
  const events = parseSse(text);
  assert.deepEqual(events.map((e) => [e.id, e.event]), [["41", "message"], ["42", "message"]]);
  assert.deepEqual(JSON.parse(events[1].data), line(42, "second"));
  const withEpoch = parseSse(encodeSseLines([line(41, "first")], "mfz3k2a"));
  assert.equal(withEpoch[0].id, "mfz3k2a-41", "the cursor names the server's run");
  assert.deepEqual(JSON.parse(withEpoch[0].data), line(41, "first"), "the record keeps its id");
});

Deno.test("a line holding CR, LF or a fake event cannot break framing", () => {
  const evil = "a\r\nid: 999\n\nevent: dropped\rdata: {}\u2028end";
  const events = parseSse(encodeSseLines([line(7, evil)]));
  assert.equal(events.length, 1);
  assert.equal(events[0].id, "7");
  assert.equal(JSON.parse(events[0].data).line, evil);
});

Deno.test("dropped is a named event without an id, so the cursor stays put", () => {
  const text = encodeSseLines([line(5, "x")]) + encodeSseDropped(12);
  assert.equal(encodeSseDropped(12), 'event: dropped\ndata: {"count":12}\n\n');
  const [, dropped] = parseSse(text);
  assert.deepEqual(dropped, { id: "5", event: "dropped", data: '{"count":12}' });
  assert.throws(() => encodeSseDropped(-1), RangeError);
});

Deno.test("encodeSseEvent encodes both kinds of hub event", () => {
  const events: LiveEvent[] = [
    { type: "dropped", count: 3 },
    { type: "lines", lines: [line(9, "after the gap")] },
  ];
  const parsed = parseSse(events.map((event) => encodeSseEvent(event)).join(""));
  assert.deepEqual(parsed.map((e) => e.event), ["dropped", "message"]);
});

Deno.test("comments are heartbeats clients ignore, even with line breaks in them", () => {
  assert.equal(encodeSseComment(), ":\n\n");
  assert.equal(encodeSseComment("ping"), ": ping\n\n");
  const text = encodeSseComment("a\ndata: forged\r\nb") + encodeSseLines([line(1, "real")]);
  assert.deepEqual(parseSse(text).map((e) => e.id), ["1"]);
});

Deno.test("encodeSseMessage refuses fields that would break framing", () => {
  assert.equal(
    encodeSseMessage({ id: 3, event: "x", data: "{}" }),
    "id: 3\nevent: x\ndata: {}\n\n",
  );
  assert.equal(encodeSseMessage({ data: "plain" }), "data: plain\n\n");
  assert.throws(() => encodeSseMessage({ data: "a\nb" }), TypeError);
  assert.throws(() => encodeSseMessage({ event: "a\rb", data: "" }), TypeError);
  assert.throws(() => encodeSseMessage({ id: "1\n", data: "" }), TypeError);
  assert.throws(() => encodeSseMessage({ id: "1\0", data: "" }), TypeError);
});

Deno.test("SseEncoderStream turns events into UTF-8 bytes, one chunk per event", async () => {
  const events: LiveEvent[] = [
    { type: "lines", lines: [line(1, "héllo ✓"), line(2, "two")] },
    { type: "dropped", count: 4 },
  ];
  const chunks = await Array.fromAsync(
    ReadableStream.from(events).pipeThrough(new SseEncoderStream()),
  );
  assert.equal(chunks.length, 2);
  const text = chunks.map((chunk) => new TextDecoder().decode(chunk)).join("");
  const parsed = parseSse(text);
  assert.equal(JSON.parse(parsed[0].data).line, "héllo ✓");
  assert.deepEqual(parsed.map((e) => e.event), ["message", "message", "dropped"]);
});

Deno.test("encodeSseLines writes exactly JSON.stringify of each record, across sources", () => {
  const records: LiveLine[] = [
    { id: 1, source: "a", host: "h", ts: 5, line: 'q"\\\u2028\ud800\x00' },
    { id: 2, source: "a", host: "h", ts: 5, line: "plain" },
    { id: 3, source: 'b"', host: "h", ts: 6, line: "" },
    { id: 4, source: 'b"', host: "h\n2", ts: 6, line: "x" },
  ];
  const expected = records.map(({ id, source, host, ts, line }) =>
    `id: ${id}\ndata: ${JSON.stringify({ id, source, host, ts, line })}\n\n`
  ).join("");
  assert.equal(encodeSseLines(records), expected);
});

Deno.test("raw lines encode byte for byte as their records would, escapes and bad UTF-8 included", () => {
  const texts = [
    "plain line 1",
    'quote " and back\\slash',
    "tab\there, cr\r, nul\u0000, del\u007f",
    "caf\u00e9 \u2028 \ud83d\ude00 emoji",
    "\ufeffstarts with a BOM",
    "",
    "id: 999",
  ];
  const encoder = new TextEncoder();
  const bytes = [
    ...texts.map((t) => encoder.encode(t + "\n")),
    new Uint8Array([0x61, 0xff, 0xc3, 0x0a]), // invalid UTF-8, then a truncated sequence
  ];
  const data = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
  bytes.reduce((at, b) => (data.set(b, at), at + b.length), 0);
  const raw = {
    type: "raw" as const,
    data,
    firstId: 41,
    count: bytes.length,
    source: 'we"ird',
    host: "10.0.0.1",
    ts: 1_700_000_000_000,
  };
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  const records = decoder.decode(data).split("\n").slice(0, -1).map((line, i) => ({
    id: 41 + i,
    source: 'we"ird',
    host: "10.0.0.1",
    ts: 1_700_000_000_000,
    line,
  }));
  for (const epoch of [undefined, "mfz3k2a"]) {
    assert.equal(
      new TextDecoder().decode(encodeSseRaw(raw, epoch)),
      encodeSseLines(records, epoch),
    );
  }
  assert.equal(parseSse(new TextDecoder().decode(encodeSseRaw(raw))).length, bytes.length);
});

Deno.test("a line's level and fields go in its message: level before line, fields after", () => {
  const records: LiveLine[] = [
    {
      id: 1,
      source: "api",
      host: "h",
      ts: 5,
      level: "error",
      line: "boom",
      fields: { "service.name": "billing", status: 500, retry: false },
    },
    { id: 2, source: "api", host: "h", ts: 5, line: "plain" },
    { id: 3, source: "api", host: "h", ts: 5, line: "no level", fields: { k: "v\n\r" } },
  ];
  const expected = records.map(({ id, source, host, ts, level, line, fields }) =>
    `id: ${id}\ndata: ${JSON.stringify({ id, source, host, ts, level, line, fields })}\n\n`
  ).join("");
  assert.equal(encodeSseLines(records), expected);
  assert.equal(parseSse(encodeSseLines(records)).length, 3, "a newline in a field breaks nothing");
  assert.ok(
    encodeSseLines(records).includes(
      '"ts":5,"level":"error","line":"boom","fields":{"service.name":"billing","status":500,"retry":false}}',
    ),
  );
});

Deno.test("raw lines with levels or fields encode as their records would", () => {
  const data = new TextEncoder().encode("first\nsecond\nthird\n");
  const raw = {
    type: "raw" as const,
    data,
    firstId: 10,
    count: 3,
    source: "api",
    host: "h",
    ts: 7,
    levels: new Uint8Array([4, 0, 6]),
    fields: [undefined, { a: 1 }, { b: "x" }] as (Record<string, string | number> | undefined)[],
  };
  const records: LiveLine[] = [
    { id: 10, source: "api", host: "h", ts: 7, level: "warn", line: "first" },
    { id: 11, source: "api", host: "h", ts: 7, line: "second", fields: { a: 1 } },
    { id: 12, source: "api", host: "h", ts: 7, level: "fatal", line: "third", fields: { b: "x" } },
  ];
  assert.equal(new TextDecoder().decode(encodeSseRaw(raw, "e1")), encodeSseLines(records, "e1"));
});
