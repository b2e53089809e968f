import assert from "node:assert/strict";
import {
  JsonSliceError,
  MAX_NESTING,
  MAX_TOKEN_BYTES,
  parseJsonSliced,
  SlicedJsonParser,
  STEP_BYTES,
} from "./json_slices.ts";
import { seededRandom } from "../_seeded_random.ts";

const encoder = new TextEncoder();

/** What `JSON.parse` of the decoded text says: the value as order-keeping JSON text, or an error. */
function reference(bytes: Uint8Array, fatal: boolean): { ok: true; text: string } | { ok: false } {
  try {
    const value = JSON.parse(new TextDecoder("utf-8", { fatal }).decode(bytes));
    return { ok: true, text: JSON.stringify(value) };
  } catch {
    return { ok: false };
  }
}

/** The parser's outcome, run `budget` bytes a step. */
function sliced(
  bytes: Uint8Array,
  budget: number,
  fatal: boolean,
): { ok: true; text: string; value: unknown; largest: number } | { ok: false; error: unknown } {
  const parser = new SlicedJsonParser(bytes, { fatal });
  try {
    while (!parser.step(budget));
  } catch (error) {
    return { ok: false, error };
  }
  const value = parser.result();
  return { ok: true, text: JSON.stringify(value), value, largest: parser.largestParse };
}

function assertSame(bytes: Uint8Array, budgets: number[], fatal = false): void {
  const want = reference(bytes, fatal);
  for (const budget of budgets) {
    const got = sliced(bytes, budget, fatal);
    const shown = new TextDecoder().decode(bytes.subarray(0, 200));
    if (want.ok) {
      assert.ok(got.ok, `budget ${budget} refused ${shown}: ${!got.ok && got.error}`);
      assert.equal(got.text, want.text, `budget ${budget}: ${shown}`);
    } else {
      assert.ok(!got.ok, `budget ${budget} accepted invalid ${shown}`);
      assert.ok(got.error instanceof JsonSliceError, String(got.error));
    }
  }
}

const PIECES = [
  "a",
  "xyz",
  "\\n",
  '\\"',
  "\\\\",
  "\\/",
  "\\u00e9",
  "\\ud83d\\ude00",
  "\\ud83d",
  "é",
  "日本",
  "😀",
  " ",
  "\\t",
];
const NUMBERS = ["0", "-1", "12.5", "1e3", "-0.25E-2", "123456789012345678901234567890", "7"];
const KEYS = ["a", "b", "__proto__", "1", "10", "0", "constructor", "k\\u0065y", "é", "a"];

/** JSON text of a random value, with random whitespace. */
function jsonText(next: () => number, depth: number): string {
  const pick = <T>(list: T[]) => list[Math.floor(next() * list.length)];
  const ws = () => pick(["", "", "", " ", "\n", "\t ", "\r\n  "]);
  const r = next();
  if (depth > 5 || r < 0.35) {
    const kind = next();
    if (kind < 0.5) {
      let s = "";
      const n = Math.floor(next() * 12);
      for (let i = 0; i < n; i++) s += pick(PIECES);
      return `"${s}"`;
    }
    if (kind < 0.8) return pick(NUMBERS);
    return pick(["true", "false", "null"]);
  }
  const n = Math.floor(next() * 5);
  const parts: string[] = [];
  if (r < 0.65) {
    for (let i = 0; i < n; i++) parts.push(ws() + jsonText(next, depth + 1) + ws());
    return "[" + parts.join(",") + ws() + "]";
  }
  for (let i = 0; i < n; i++) {
    parts.push(ws() + `"${pick(KEYS)}"` + ws() + ":" + ws() + jsonText(next, depth + 1) + ws());
  }
  return "{" + parts.join(",") + ws() + "}";
}

Deno.test("SlicedJsonParser: random valid documents give JSON.parse's value at every step size", () => {
  const next = seededRandom(1);
  for (let i = 0; i < 600; i++) {
    const text = " " + jsonText(next, 0) + "\n";
    assertSame(encoder.encode(text), [1, 2, 3, 5, 8, 13, 64]);
  }
});

Deno.test("SlicedJsonParser: random damage is refused exactly when JSON.parse refuses it", () => {
  const next = seededRandom(2);
  const damage = ['"', "\\", ",", ":", "[", "]", "{", "}", " ", "x", "1", "\u00ff", "\\u12"];
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    let text = jsonText(next, 0);
    const at = Math.floor(next() * (text.length + 1));
    const action = next();
    const bad = damage[Math.floor(next() * damage.length)];
    if (action < 0.3) text = text.slice(0, at) + text.slice(at + 1);
    else if (action < 0.6) text = text.slice(0, at) + bad + text.slice(at);
    else if (action < 0.9) text = text.slice(0, at) + bad + text.slice(at + 1);
    else text = text.slice(0, at);
    const bytes = encoder.encode(text);
    if (!reference(bytes, false).ok) refused++;
    assertSame(bytes, [1, 3, 7, 64]);
  }
  assert.ok(refused > 1000, `only ${refused} damaged documents were invalid`);
});

Deno.test("SlicedJsonParser: what JSON.parse refuses at the edges", () => {
  for (
    const text of [
      "",
      " ",
      "[1,]",
      '{"a":1,}',
      "[1 2]",
      '{"a" 1}',
      '{"a":}',
      "[",
      "]",
      '{"a":1}}',
      "[01]",
      '["\t"]',
      '"\\x"',
      '"abc',
      '"abc\\',
      "1 2",
      "[1],",
      "nul",
      "[tru]",
      "{1:2}",
      "[-]",
      "\u00a0[]",
    ]
  ) {
    assertSame(encoder.encode(text), [1, 2, 100]);
  }
});

Deno.test("SlicedJsonParser: a byte order mark is dropped as TextDecoder drops it, kept inside strings", () => {
  const bom = [0xef, 0xbb, 0xbf];
  const body = Uint8Array.from([...bom, ...encoder.encode('["'), ...bom, ...encoder.encode('x"]')]);
  assertSame(body, [1, 2, 4, 100]);
  const got = sliced(body, 1, false);
  assert.ok(got.ok);
  assert.deepEqual(got.value, ["\ufeffx"]);
});

Deno.test("SlicedJsonParser: long strings cut anywhere keep escapes, surrogate pairs and UTF-8 whole", () => {
  const next = seededRandom(3);
  for (let i = 0; i < 200; i++) {
    let s = "";
    const n = 20 + Math.floor(next() * 80);
    for (let k = 0; k < n; k++) s += PIECES[Math.floor(next() * PIECES.length)];
    const text = `{"k":["x","${s}",{"m":"${s}"}],"z":"${s}"}`;
    assertSame(encoder.encode(text), [1, 2, 3, 4, 5, 6, 7, 9, 16]);
  }
});

Deno.test("SlicedJsonParser: bytes that are not UTF-8 read as U+FFFD, or refused when fatal", () => {
  const cases = [
    [0x22, 0xe2, 0x82, 0x22], // a character cut short
    [0x22, 0x80, 0x80, 0x80, 0x80, 0x80, 0x41, 0x22], // lone continuation bytes
    [0x22, 0xf0, 0x9f, 0x98, 0x80, 0x80, 0x80, 0x22], // a whole character, then two strays
    [0x22, 0xed, 0xa0, 0x80, 0x22], // an encoded surrogate
    [0x22, 0xff, 0xc0, 0xaf, 0x22],
  ];
  for (const inner of cases) {
    const body = Uint8Array.from([
      ...encoder.encode('["a", '),
      ...inner,
      ...encoder.encode(", "),
      ...inner,
      ...inner.slice(0, -1),
      ...inner.slice(1),
      0x5d,
    ]);
    assertSame(body, [1, 2, 3, 4, 5, 100], false);
    assertSame(body, [1, 2, 3, 100], true);
  }
});

Deno.test("SlicedJsonParser: __proto__, duplicate and numeric keys come out as JSON.parse makes them", () => {
  const text = '{"b":1,"__proto__":{"x":1},"2":"two","a":[1],"b":2,"1":"one","a":{"y":[' +
    "1,".repeat(50) + '1]},"__proto__":"last"}';
  for (const budget of [1, 2, 3, 5, 17]) {
    const got = sliced(encoder.encode(text), budget, false);
    assert.ok(got.ok);
    const value = got.value as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.deepEqual(Object.keys(value), Object.keys(JSON.parse(text)));
    assert.equal(Object.getOwnPropertyDescriptor(value, "__proto__")?.value, "last");
    assert.equal(got.text, JSON.stringify(JSON.parse(text)));
  }
});

Deno.test("SlicedJsonParser: no JSON.parse gets much more than two steps' bytes, whatever the shape", () => {
  const budget = 256;
  const shapes: Record<string, string> = {
    "many small records": JSON.stringify({
      resourceLogs: [{
        scopeLogs: [{
          logRecords: Array.from({ length: 2000 }, (_, i) => ({ body: { stringValue: `m${i}` } })),
        }],
      }],
    }),
    "one long string": JSON.stringify({ a: "x".repeat(20000) }),
    "a long string of escapes": JSON.stringify(["\n\u00e9\ud83d\ude00".repeat(3000)]),
    "deep nesting": "[".repeat(MAX_NESTING) + "]".repeat(MAX_NESTING),
    "a big record among small ones": JSON.stringify([1, { big: Array(5000).fill("y") }, 2]),
    "long whitespace": "[1," + " ".repeat(20000) + "2]",
    "a long key": JSON.stringify({ ["k".repeat(4000)]: 1 }),
  };
  for (const [shape, text] of Object.entries(shapes)) {
    const got = sliced(encoder.encode(text), budget, false);
    assert.ok(got.ok, shape);
    assert.equal(got.text, JSON.stringify(JSON.parse(text)), shape);
    // A key or a number can be up to MAX_TOKEN_BYTES; the rest is bounded by the step.
    const bound = shape === "a long key" ? 4000 + 3 * budget : 3 * budget;
    assert.ok(got.largest <= bound, `${shape}: ${got.largest} bytes in one JSON.parse`);
  }
});

Deno.test("SlicedJsonParser: nesting, keys and numbers past the bounds are refused with the reason", () => {
  const deep = "[".repeat(MAX_NESTING + 1) + "]".repeat(MAX_NESTING + 1);
  const cases: [string, RegExp][] = [
    [deep, /Nested deeper than 512 levels/],
    [`{"${"k".repeat(MAX_TOKEN_BYTES)}":1}`, /A key longer than/],
    [`[${"1".repeat(MAX_TOKEN_BYTES + 1)}]`, /A number or other token longer than/],
  ];
  for (const [text, reason] of cases) {
    const got = sliced(encoder.encode(text), 4096, false);
    assert.ok(!got.ok);
    assert.match((got.error as Error).message, reason);
  }
  // Just within them: accepted.
  const within = "[".repeat(MAX_NESTING) + "]".repeat(MAX_NESTING);
  assert.ok(sliced(encoder.encode(within), 4096, false).ok);
});

Deno.test("parseJsonSliced: pauses between steps of a large body and parses a small one at once", async () => {
  const body = encoder.encode(JSON.stringify({ values: Array(40000).fill("line of text") }));
  assert.ok(body.length > 4 * STEP_BYTES);
  let pauses = 0;
  const turns = { due: () => true, pause: () => Promise.resolve(void pauses++) };
  const value = await parseJsonSliced(body, turns);
  assert.deepEqual(value, JSON.parse(new TextDecoder().decode(body)));
  assert.ok(pauses >= 4, `${pauses} pauses`);
  pauses = 0;
  assert.deepEqual(await parseJsonSliced(encoder.encode('{"a":1}'), turns), { a: 1 });
  assert.equal(pauses, 0);
  await assert.rejects(parseJsonSliced(encoder.encode('{"a":'), turns), JsonSliceError);
});
