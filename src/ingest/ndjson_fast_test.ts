import assert from "node:assert/strict";
import { NdjsonFastReader } from "./ndjson_fast.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** What the general way (TextDecoder, JSON.parse, the record's checks) makes of a record. */
function general(bytes: Uint8Array): { line: string; source?: string; host?: string } | "error" {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return "error";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "error";
  const { line, source, host, ts } = value as Record<string, unknown>;
  if (typeof line !== "string") return "error";
  if (source !== undefined && typeof source !== "string") return "error";
  if (host !== undefined && typeof host !== "string") return "error";
  if (ts !== undefined && typeof ts !== "string" && typeof ts !== "number") return "error";
  return { line, source: source as string | undefined, host: host as string | undefined };
}

/** The reader's result must be the general way's, or it must decline. */
function agree(reader: NdjsonFastReader, bytes: Uint8Array): boolean {
  const accepted = reader.read(bytes);
  const expected = general(bytes);
  const shown = JSON.stringify(new TextDecoder().decode(bytes).slice(0, 200));
  if (!accepted) return false;
  assert.notEqual(expected, "error", `accepted what JSON.parse refuses: ${shown}`);
  if (expected === "error") return false;
  assert.deepEqual([...reader.line], [...encoder.encode(expected.line)], `line of ${shown}`);
  assert.equal(reader.source, expected.source, `source of ${shown}`);
  assert.equal(reader.host, expected.host, `host of ${shown}`);
  return true;
}

Deno.test("NdjsonFastReader reads the common records the way JSON.parse does", () => {
  const reader = new NdjsonFastReader();
  const records = [
    '{"line":"GET /a 200"}',
    '  { "line" : "spaced" , "source":"web" ,"host":"h1"}  ',
    '{"date":1764496800.123456,"line":"fluent bit"}',
    '{"line":"GET \\/api\\/x \\"q\\" \\\\ tab\\t nl\\n cr\\r\\n"}',
    '{"line":"caf\\u00e9 \\ud83d\\ude00 lone \\ud800 end \\udc00"}',
    '{"line":"ünïcödé raw 😀","ts":"2026-11-30T10:00:00Z"}',
    '{"ts":-1.5e-3,"line":"","x":null,"y":true,"z":false}',
    '{"line":"first","line":"last wins"}',
    '{"__proto__":"x","line":"proto key"}',
    '{"source":"","line":"empty source"}',
    '{"k\u00e9y":"v","line":"non-ASCII key"}',
  ];
  for (const record of records) {
    assert.ok(agree(reader, encoder.encode(record)), `declined ${record}`);
  }
});

Deno.test("NdjsonFastReader declines what it does not read, and never accepts invalid JSON", () => {
  const reader = new NdjsonFastReader();
  const declined = [
    "",
    "   ",
    "{}",
    "[]",
    '"line"',
    '{"line":1}',
    '{"line":null}',
    '{"line":"x","source":3}',
    '{"line":"x","ts":true}',
    '{"line":"x","nested":{"a":1}}',
    '{"line":"x","list":[1]}',
    '{"line":"x","source":"esc\\"aped"}',
    '{"li\\u006ee":"escaped key"}',
    '{"line":"x"',
    '{"line":"x"} trailing',
    '{"line":"x",}',
    '{"line":"raw\ttab"}',
    '{"line":"bad \\x escape"}',
    '{"line":"bad \\u12 escape"}',
    '{"line":"x","n":01}',
    '{"line":"x","n":1.}',
    '{"line":"x","n":-}',
    '{"line":"x","n":+1}',
    '{"line":"x","n":.5}',
    '{"line":"x","n":1e}',
    '{"line":"x","b":tru}',
    '\ufeff{"line":"BOM"}',
  ];
  for (const record of declined) {
    assert.equal(reader.read(encoder.encode(record)), false, `accepted ${record}`);
  }
  // Invalid UTF-8 anywhere in the record.
  const bad = Uint8Array.from([...encoder.encode('{"line":"a'), 0xff, ...encoder.encode('"}')]);
  assert.equal(reader.read(bad), false);
  const badKey = Uint8Array.from([
    ...encoder.encode('{"line":"a","k'),
    0xc3,
    ...encoder.encode('":1}'),
  ]);
  assert.equal(reader.read(badKey), false);
});

Deno.test("NdjsonFastReader agrees with JSON.parse on generated and mutated records", () => {
  const reader = new NdjsonFastReader();
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  const pieces = [
    "a",
    "Z",
    " ",
    "/",
    '"',
    "\\",
    "\n",
    "\t",
    "é",
    "😀",
    "\u0001",
    "\ud800",
    "{",
    "}",
    ":",
  ];
  const text = () => Array.from({ length: Math.floor(random() * 12) }, () => pick(pieces)).join("");
  const values = [
    () => text(),
    () => random() * 1e6 - 5e5,
    () => true,
    () => null,
    () => ({ a: 1 }),
  ];
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const record: Record<string, unknown> = {};
    if (random() < 0.9) record.line = random() < 0.9 ? text() : pick(values)();
    if (random() < 0.2) record.source = random() < 0.9 ? text() : 5;
    if (random() < 0.2) record.host = text();
    if (random() < 0.3) record.ts = pick(values)();
    if (random() < 0.3) record[text()] = pick(values)();
    const json = JSON.stringify(record);
    // Mutations: a byte changed, removed or added, to find what JSON.parse refuses.
    const bytes = [...encoder.encode(json)];
    if (random() < 0.3 && bytes.length > 0) {
      const at = Math.floor(random() * bytes.length);
      const op = random();
      if (op < 0.33) bytes[at] = pick([0x22, 0x5c, 0x7b, 0x7d, 0x2c, 0x3a, 0x30, 0x20, 0x80, 0xff]);
      else if (op < 0.66) bytes.splice(at, 1);
      else bytes.splice(at, 0, pick([0x22, 0x5c, 0x2c, 0x20, 0x2d, 0x65]));
    }
    if (agree(reader, Uint8Array.from(bytes))) accepted++;
  }
  assert.ok(accepted > 5_000, `only ${accepted} records read the fast way`);
});

Deno.test("HttpIngest stores fast and general NDJSON records alike: order, groups, framing, errors", async () => {
  const { HttpIngest } = await import("./http_ingest.ts");
  const { TestSink } = await import("../pipeline/_test_sink.ts");
  type Batch = import("../pipeline/batch.ts").Batch;
  class Sink extends TestSink {
    readonly name = "memory";
    readonly stored: string[] = [];
    write(batch: Batch): boolean {
      this.stored.push(`${batch.meta.source}|${new TextDecoder().decode(batch.data)}`);
      return true;
    }
  }
  const sink = new Sink();
  const ingest = new HttpIngest(sink, { maxLine: 8 });
  const post = (body: string) =>
    ingest.handle(
      new Request("http://localhost/api/v1/ingest?source=app", {
        method: "POST",
        body,
        headers: { "content-type": "application/x-ndjson" },
      }),
      { hostname: "10.0.0.1" },
    );
  const records = [
    '{"line":"a"}',
    '{"line":"b","nested":{"x":1}}',
    '{"line":"c","source":"web"}',
    '{"line":"d\\nsplit\\r\\n"}',
    '{"line":"   "}',
    '{"line":""}',
    "",
    `{"line":"${"x".repeat(20)}"}`,
    '{"line":"e","host":"10.0.0.1"}',
  ];
  const res = await post(records.join("\n"));
  assert.deepEqual([res.status, await res.json()], [200, { accepted: 9, duplicate: false }]);
  assert.deepEqual(sink.stored, ["app|a\nb\nd\nsplit\nxxxxxxxx\nxxxxxxxx\nxxxx\ne\n", "web|c\n"]);
  // A bad record after good ones: 400 naming it, nothing stored.
  sink.stored.length = 0;
  const bad = await post('{"line":"ok"}\n{"line":"ok"}\n{"line":1}\n{"line":"ok"}');
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /Record 3 of the body has no "line" string/);
  assert.deepEqual(sink.stored, []);
});
