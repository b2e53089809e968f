import assert from "node:assert/strict";
import {
  type JsonField,
  type JsonRecord,
  JsonRecordError,
  JsonRecordParser,
  type JsonType,
  type KeyUse,
  LARGE_RECORD_BYTES,
  MAX_TEXT_BYTES,
  readJsonRecord,
  STEP_BYTES,
} from "./json_record.ts";
import type { Batch } from "../pipeline/batch.ts";
import { TestSink } from "../pipeline/_test_sink.ts";
import { HttpIngest } from "./http_ingest.ts";
import { seededRandom } from "../_seeded_random.ts";

const encoder = new TextEncoder();
const KEYS: ReadonlyMap<string, KeyUse> = new Map<string, KeyUse>([
  ["line", "utf8"],
  ["source", "text"],
  ["host", "text"],
  ["ts", "type"],
]);

/** What the parser must say: `TextDecoder` (fatal) and `JSON.parse`, as HTTP ingest did. */
type Outcome = JsonRecord | { error: "utf8" | "json" };

function reference(bytes: Uint8Array, keys = KEYS): Outcome {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return { error: "utf8" };
  }
  if (text.trim() === "") return { kind: "blank" };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: "json" };
  }
  if (typeOf(value) !== "object") return { kind: "other", type: typeOf(value) };
  const object = value as Record<string, unknown>;
  const fields = new Map<string, JsonField>();
  for (const [name, use] of keys) {
    if (!Object.hasOwn(object, name)) continue;
    const v = object[name];
    const field: JsonField = { type: typeOf(v) };
    if (typeof v === "string" && use === "text") field.text = v;
    if (typeof v === "string" && use === "utf8") field.utf8 = [encoder.encode(v)];
    fields.set(name, field);
  }
  return { kind: "object", fields };
}

function typeOf(value: unknown): JsonType {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value as JsonType;
}

/** Runs the parser to the end in steps of `budget` bytes, checking that no step does more. */
function parse(bytes: Uint8Array, budget: number, keys = KEYS): Outcome {
  const parser = new JsonRecordParser(bytes, keys);
  try {
    for (;;) {
      const before = parser.work;
      const done = parser.step(budget);
      const did = parser.work - before;
      assert.ok(did <= Math.max(budget, 4) + 5, `one step of ${budget} bytes did ${did}`);
      if (done) return parser.result();
    }
  } catch (err) {
    if (err instanceof JsonRecordError) return { error: err.reason };
    throw err;
  }
}

/** Comparable form: utf8 pieces joined, long texts as the reference gives them when allowed. */
function normal(outcome: Outcome, expected?: Outcome): unknown {
  if (!("kind" in outcome) || outcome.kind !== "object") return outcome;
  const fields: Record<string, unknown> = {};
  for (const [name, field] of outcome.fields) {
    const copy: Record<string, unknown> = { type: field.type };
    if (field.utf8 !== undefined) copy.utf8 = Array.from(concat(field.utf8));
    if (field.text !== undefined) copy.text = field.text;
    const wanted = expected && "kind" in expected && expected.kind === "object"
      ? expected.fields.get(name)
      : undefined;
    // A text may be left out only when its JSON form is longer than MAX_TEXT_BYTES.
    if (
      field.type === "string" && field.text === undefined && wanted?.text !== undefined &&
      wanted.text.length > MAX_TEXT_BYTES / 6
    ) copy.text = wanted.text;
    fields[name] = copy;
  }
  return { kind: "object", fields };
}

function concat(pieces: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

function check(bytes: Uint8Array, budget: number, keys = KEYS): void {
  const expected = reference(bytes, keys);
  const actual = parse(bytes, budget, keys);
  assert.deepEqual(
    normal(actual, expected),
    normal(expected),
    `record ${JSON.stringify(new TextDecoder().decode(bytes).slice(0, 300))} in steps of ${budget}`,
  );
}

/** A seeded generator (`seededRandom`) with the picks these cases use. */
function random(seed: number) {
  const next = seededRandom(seed);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)];
  return { next, int, pick };
}
type Random = ReturnType<typeof random>;

const SPACES = [" ", "\t", "\r", "\n", "  "];
const CHARS = [
  "a",
  "Z",
  " ",
  "~",
  "\x7f",
  '"',
  "\\",
  "/",
  "\b",
  "\f",
  "\n",
  "\r",
  "\t",
  "\x00",
  "\x1f",
  "é",
  "\u00a0",
  "\u2028",
  "中",
  "\uffff",
  "😀",
  "\ud83d",
  "\ude00",
  "\ud800\udc00",
  "\udbff\udfff",
  "\udfff",
];

/** A JSON string, each character written raw or escaped in one of the ways JSON allows. */
function jsonString(r: Random, text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    const mustEscape = ch === '"' || ch === "\\" || code < 0x20 ||
      (code >= 0xd800 && code <= 0xdfff);
    const way = r.int(4);
    if (!mustEscape && way < 2) out += ch;
    else if (way === 2 && JSON.stringify(ch).length === 4) out += JSON.stringify(ch).slice(1, -1);
    else {
      for (let k = 0; k < ch.length; k++) {
        const hex = ch.charCodeAt(k).toString(16).padStart(4, "0");
        out += "\\u" + (r.int(2) ? hex : hex.toUpperCase());
      }
    }
  }
  return out + '"';
}

function text(r: Random, max: number): string {
  let out = "";
  const length = r.int(max);
  for (let i = 0; i < length; i++) {
    out += r.pick(CHARS);
  }
  return out;
}

function number(r: Random): string {
  let out = r.int(3) === 0 ? "-" : "";
  out += r.int(3) === 0 ? "0" : String(1 + r.int(9)) + "0123456789".slice(0, r.int(6));
  if (r.int(3) === 0) out += "." + String(r.int(100000));
  if (r.int(3) === 0) out += r.pick(["e", "E"]) + r.pick(["", "+", "-"]) + String(r.int(400));
  return out;
}

const KEY_NAMES = ["line", "source", "host", "ts", "other", "lin", "linee", "Line", "", "é"];

function value(r: Random, depth: number): string {
  const space = () => (r.int(3) === 0 ? r.pick(SPACES) : "");
  const kind = r.int(depth > 3 ? 4 : 6);
  switch (kind) {
    case 0:
      return jsonString(r, text(r, 12));
    case 1:
      return number(r);
    case 2:
      return r.pick(["true", "false", "null"]);
    case 3:
      return jsonString(r, r.pick(KEY_NAMES));
    case 4: {
      const items = Array.from({ length: r.int(4) }, () => space() + value(r, depth + 1) + space());
      return "[" + items.join(",") + (items.length === 0 ? space() : "") + "]";
    }
    default:
      return object(r, depth);
  }
}

function object(r: Random, depth: number): string {
  const space = () => (r.int(3) === 0 ? r.pick(SPACES) : "");
  const members = Array.from({ length: r.int(6) }, () => {
    const key = jsonString(r, r.pick(KEY_NAMES));
    return space() + key + space() + ":" + space() + value(r, depth + 1) + space();
  });
  return "{" + members.join(",") + (members.length === 0 ? space() : "") + "}";
}

/** A record of the shape HTTP ingest reads: its keys in any order, some twice, some escaped. */
function ingestRecord(r: Random): string {
  const members = [
    () => `"line":${jsonString(r, text(r, 20))}`,
    () => `"source":${jsonString(r, text(r, 6))}`,
    () => `"host":${r.int(4) === 0 ? value(r, 1) : jsonString(r, text(r, 6))}`,
    () => `"ts":${r.int(2) === 0 ? number(r) : value(r, 1)}`,
    () => `${jsonString(r, r.pick(KEY_NAMES))}:${value(r, 1)}`,
  ];
  const chosen = Array.from({ length: 1 + r.int(5) }, () => r.pick(members)());
  if (r.int(4) !== 0) chosen.splice(r.int(chosen.length + 1), 0, members[0]());
  const space = () => (r.int(3) === 0 ? r.pick(SPACES) : "");
  return "{" + chosen.map((m) => space() + m + space()).join(",") + "}";
}

/** Bytes that tend to break JSON or UTF-8 when put somewhere. */
const MUTATIONS = [
  ...'{}[]:,"\\ 0123456789.eE+-tfnuxa/',
  "\x00",
  "\x1f",
  "\x7f",
  "\xff",
  "\xc3",
  "\xed",
  "\x80",
  "\xe2\x80",
].map((s) => Uint8Array.from(s, (c) => c.charCodeAt(0)));

function mutate(r: Random, bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = Array.from(bytes);
  const times = 1 + r.int(3);
  for (let t = 0; t < times; t++) {
    const at = r.int(out.length + 1);
    const op = r.int(4);
    if (op === 0) out.splice(at, 1 + r.int(3));
    else if (op === 1) out.splice(at, 0, ...r.pick(MUTATIONS));
    else if (op === 2) out.splice(at, 1, ...r.pick(MUTATIONS));
    else out.length = Math.min(out.length, at);
  }
  return Uint8Array.from(out);
}

Deno.test("JsonRecordParser reads generated records as TextDecoder and JSON.parse do", () => {
  const r = random(20261130);
  for (let i = 0; i < 8000; i++) {
    const kind = r.int(4);
    const record = kind === 0 ? value(r, 0) : kind === 1 ? object(r, 0) : ingestRecord(r);
    const bytes = encoder.encode(r.pick(["", " ", "\t"]) + record + r.pick(["", " ", "\r"]));
    const budget = r.pick([1, 2, 3, 7, 16, 64, STEP_BYTES]);
    check(bytes, budget);
    check(mutate(r, bytes), budget);
  }
});

Deno.test("JsonRecordParser finds blank records as String.prototype.trim does", () => {
  const r = random(7);
  const spaces = [
    " ",
    "\t",
    "\v",
    "\f",
    "\r",
    "\n",
    "\u00a0",
    "\u1680",
    "\u2000",
    "\u200a",
    "\u2028",
    "\u2029",
    "\u202f",
    "\u205f",
    "\u3000",
    "\ufeff",
  ];
  // Not whitespace, though close to it.
  const others = ["\u0085", "\u180e", "\u200b", "\u2060", "\u00a1", "\u2030", "x", "{}", "1"];
  for (let i = 0; i < 3000; i++) {
    let record = Array.from({ length: r.int(8) }, () => r.pick(spaces)).join("");
    if (r.int(2) === 0) {
      const at = r.int(record.length + 1);
      record = record.slice(0, at) + r.pick(others) + record.slice(at);
    }
    check(encoder.encode(record), r.pick([1, 3, 64]));
  }
});

Deno.test("JsonRecordParser keeps the last of duplicate keys and reads escaped key names", () => {
  const bytes = encoder.encode(
    '{"line": "first", "source": {"line": "nested"}, "\\u006cine": "sec\\u006fnd", "source": "s",' +
      ' "ts": [1], "host": "h", "ts": 12.5e3, "h\\u006fst": null}',
  );
  const record = parse(bytes, 5);
  assert.deepEqual(normal(record), {
    kind: "object",
    fields: {
      line: { type: "string", utf8: Array.from(encoder.encode("second")) },
      source: { type: "string", text: "s" },
      ts: { type: "number" },
      host: { type: "null" },
    },
  });
});

Deno.test("JsonRecordParser gives escapes the bytes TextEncoder gives their string", () => {
  for (
    const [escaped, text] of [
      ["\\ud83d\\ude00", "😀"],
      ["\\uD83D\\uDE00x", "😀x"],
      ["\\ud83d", "\ufffd"],
      ["\\ude00\\ud83d", "\ufffd\ufffd"],
      ["\\ud83d\\ud83d\\ude00", "\ufffd😀"],
      ["\\ud83d😀", "\ufffd😀"],
      ["\\ud83dx", "\ufffdx"],
      ["\\u0000\\u001f\\u007f\\u0080\\u07ff\\u0800\\uffff", "\x00\x1f\x7f\x80\u07ff\u0800\uffff"],
      ['\\"\\\\\\/\\b\\f\\n\\r\\t', '"\\/\b\f\n\r\t'],
    ]
  ) {
    const record = parse(encoder.encode(`{"line": "${escaped}"}`), 3);
    assert.deepEqual(normal(record), {
      kind: "object",
      fields: { line: { type: "string", utf8: Array.from(encoder.encode(text)) } },
    }, escaped);
  }
});

Deno.test("JsonRecordParser reads records of megabytes, nesting and escapes included", () => {
  const big = "abcdefghijklmnop".repeat(64 * 1024) + "\u00e9 \u4e2d 😀";
  const records = [
    JSON.stringify({ line: big, source: "big" }),
    JSON.stringify({ pad: big, line: "small", host: "x".repeat(MAX_TEXT_BYTES) }),
    JSON.stringify({ line: "\n\u0001\ud83d".repeat(100_000), ts: 1 }),
    `{"line": "x", "deep": ${"[".repeat(300_000)}${"]".repeat(300_000)}}`,
    `{"line": "x", "n": -1${"0".repeat(500_000)}.5e+${"9".repeat(1000)}}`,
    `{"line": "x", "a": [${"{},".repeat(100_000)}{}]}`,
    `{"line": "x"}${" ".repeat(500_000)}`,
    `{"line": "x", "deep": ${"[".repeat(300_000)}${"]".repeat(299_999)}}`,
    `{"line": "x", "n": -1${"0".repeat(500_000)}.}`,
  ];
  for (const record of records) {
    const bytes = encoder.encode(record);
    for (const budget of [4096, STEP_BYTES]) check(bytes, budget);
  }
});

Deno.test("JsonRecordParser keeps a long line as views of the record, not copies", () => {
  const bytes = encoder.encode(JSON.stringify({ line: "x".repeat(1024 * 1024) }));
  const record = parse(bytes, 1000);
  assert.ok("kind" in record && record.kind === "object");
  const pieces = record.fields.get("line")!.utf8!;
  assert.equal(pieces.length, 1);
  assert.equal(pieces[0].buffer, bytes.buffer);
});

Deno.test("readJsonRecord gives turns while it reads a 15 MiB record, one step of work at a time", async () => {
  const line = "0123456789abcdef".repeat(15 * 1024 * 1024 / 16);
  const bytes = encoder.encode(JSON.stringify({ line, source: "big" }));
  // An injected clock: every step counts as due, so each pause marks the end of one turn.
  let pauses = 0;
  const record = await readJsonRecord(bytes, KEYS, {
    due: () => true,
    pause: () => {
      pauses++;
      return Promise.resolve();
    },
  });
  assert.ok(record.kind === "object");
  assert.equal(record.fields.get("source")?.text, "big");
  assert.equal(concat(record.fields.get("line")!.utf8!).length, line.length);
  // One pass checks UTF-8 and one parses: each in steps of STEP_BYTES, with a pause between.
  const steps = Math.ceil(bytes.length / STEP_BYTES);
  assert.ok(pauses >= 2 * steps - 2, `${pauses} turns for ${2 * steps} steps`);
  // Without a due turn it never pauses.
  pauses = 0;
  const never = { due: () => false, pause: () => Promise.resolve(void pauses++) };
  await readJsonRecord(bytes, KEYS, never);
  assert.equal(pauses, 0);
});

Deno.test("JsonRecordParser says where a bad record went wrong, and UTF-8 before JSON", () => {
  const cases: [string | Uint8Array, RegExp][] = [
    ['{"line": "x",}', /Unexpected "\}" at byte 13/],
    ['{"line": "x"', /Unexpected end of JSON input at byte 12/],
    ['{"line": "x\u0001"}', /Bad control character in string at byte 11/],
    ['{"line": "\\x"}', /Bad escaped character in string at byte 10/],
    ['{"line": "\\u12g4"}', /Bad Unicode escape in string at byte 10/],
    ['{"line": 01}', /Unexpected "1" at byte 10/],
    ['{"line": "x"} x', /Unexpected non-whitespace character after JSON at byte 14/],
    [Uint8Array.from([0x7b, 0x7d, 0x20, 0xff]), /not valid UTF-8/],
    [Uint8Array.from([0x7d, 0x20, 0xed, 0xa0, 0x80]), /not valid UTF-8/],
  ];
  for (const [record, message] of cases) {
    const bytes = typeof record === "string" ? encoder.encode(record) : record;
    const parser = new JsonRecordParser(bytes, KEYS);
    assert.throws(() => {
      while (!parser.step(2));
    }, message);
  }
});

/** Keeps what it is given, as text. */
class MemorySink extends TestSink {
  readonly name = "memory";
  readonly stored: string[] = [];
  write(batch: Batch): boolean {
    const { source, host } = batch.meta;
    this.stored.push(`${source} ${host} ${batch.lines}: ${new TextDecoder().decode(batch.data)}`);
    return true;
  }
}

/** What HTTP ingest answers and stores for one NDJSON body. */
async function ingest(body: Uint8Array<ArrayBuffer>): Promise<unknown> {
  const sink = new MemorySink();
  const request = new Request("http://localhost/api/v1/ingest?source=q", {
    method: "POST",
    body,
    headers: { "content-type": "application/x-ndjson" },
  });
  const res = await new HttpIngest(sink, { maxLine: 50 }).handle(request, { hostname: "h0" });
  const { error, ...rest } = await res.json();
  // The wording of a JSON syntax error is the parser's own.
  const reason = typeof error === "string" ? error.replace(/(is not JSON): .*/s, "$1") : error;
  return { status: res.status, reason, ...rest, stored: sink.stored };
}

Deno.test("HttpIngest answers and stores a large record as it does the same record small", async () => {
  const r = random(99);
  // Leading whitespace changes nothing for JSON.parse, but sends the record to the sliced parser.
  const padding = encoder.encode(" ".repeat(LARGE_RECORD_BYTES + 1));
  const fixed = [
    `{"line": "x", "source": "${"s".repeat(256)}"}`,
    `{"line": "x", "source": "${"s".repeat(257)}"}`,
    `{"line": "x", "source": "${"s".repeat(5000)}"}`,
    `{"line": "x", "host": "${"\\u0041".repeat(1000)}"}`,
    `{"line": "x", "host": "${"h".repeat(5000)}", "ts": {}}`,
    `{"line": "", "source": "s"}`,
    `{"line": "a\\nb\\r\\n  \\n${"c".repeat(120)}\\r"}`,
    "\u00a0\ufeff\u3000",
    "\ufeff{}",
  ];
  for (let i = 0; i < 1500 + fixed.length; i++) {
    let record = encoder.encode(fixed[i] ?? (r.int(5) === 0 ? value(r, 0) : ingestRecord(r)));
    if (i >= fixed.length && r.int(3) === 0) record = mutate(r, record);
    record = record.filter((b) => b !== 10);
    const small = await ingest(record);
    const padded = new Uint8Array(padding.length + record.length);
    padded.set(padding);
    padded.set(record, padding.length);
    const large = await ingest(padded);
    assert.deepEqual(large, small, new TextDecoder().decode(record));
  }
});

Deno.test("HttpIngest never gives JSON.parse a large record in one piece", async () => {
  const parse = JSON.parse;
  let longest = 0;
  JSON.parse = (text: string, reviver?: Parameters<typeof parse>[1]) => {
    longest = Math.max(longest, text.length);
    return parse(text, reviver);
  };
  try {
    const line = "\u00e9\n\ud83d\ude00".repeat(1024 * 1024);
    const records = [{ line: "small" }, { line, source: "big" }, { line: "after" }];
    const body = encoder.encode(records.map((r) => JSON.stringify(r)).join("\n"));
    const result = await ingest(body) as { status: number; stored: string[] };
    assert.equal(result.status, 200);
    // Two groups: the big one in batches of about 1 MiB.
    assert.deepEqual([...new Set(result.stored.map((s) => s.split(" ", 1)[0]))], ["q", "big"]);
  } finally {
    JSON.parse = parse;
  }
  assert.ok(longest <= LARGE_RECORD_BYTES, `JSON.parse read ${longest} characters in one step`);
});
