import assert from "node:assert/strict";
import {
  DepthError,
  type Fields,
  flattenJson,
  levelOfSeverityNumber,
  nanosTextToMs,
  normalizeLevel,
  setField,
  timeMsOf,
  toBase64,
  toHex,
} from "./fields.ts";

Deno.test("levels: names in any case, OpenTelemetry's numbered names, pino and syslog numbers", () => {
  const cases: [unknown, string | undefined][] = [
    ["INFO", "info"],
    ["Warning", "warn"],
    ["WARN2", "warn"],
    ["err", "error"],
    ["CRITICAL", "fatal"],
    ["notice", "info"],
    ["dbg", "debug"],
    ["W", "warn"],
    [30, "info"],
    [35, "info"],
    [50, "error"],
    [60, "fatal"],
    [10, "trace"],
    ["40", "warn"],
    [3, "error"],
    [7, "debug"],
    [0, "fatal"],
    [8, undefined],
    [-1, undefined],
    ["", undefined],
    ["informational purposes", undefined],
    ["okay", undefined],
    ["INFO9", undefined],
    [null, undefined],
    [{}, undefined],
  ];
  for (const [input, want] of cases) assert.equal(normalizeLevel(input), want, String(input));
});

Deno.test("levels: OpenTelemetry severity number ranges", () => {
  const want = ["trace", "debug", "info", "warn", "error", "fatal"];
  for (let n = 1; n <= 24; n++) assert.equal(levelOfSeverityNumber(n), want[(n - 1) >> 2], `${n}`);
  assert.equal(levelOfSeverityNumber(0), undefined);
  assert.equal(levelOfSeverityNumber(25), undefined);
  assert.equal(levelOfSeverityNumber(1.5), "trace");
});

Deno.test("flattenJson: dotted keys, arrays as JSON, empty objects kept, null skipped", () => {
  const fields: Fields = {};
  flattenJson(fields, "", {
    a: { b: { c: 1 } },
    list: [1, { x: 2 }],
    empty: {},
    gone: null,
    t: true,
    "dotted.key": "v",
  });
  assert.deepEqual(fields, {
    "a.b.c": 1,
    list: '[1,{"x":2}]',
    empty: "{}",
    t: true,
    "dotted.key": "v",
  });
  let deep: unknown = 1;
  for (let i = 0; i < 40; i++) deep = { d: deep };
  assert.throws(() => flattenJson({}, "", deep), DepthError);
});

Deno.test("setField keeps a __proto__ key as data, prototype untouched", () => {
  const fields: Fields = {};
  setField(fields, "__proto__", "x");
  assert.equal(Object.getPrototypeOf(fields), Object.prototype);
  assert.deepEqual(Object.keys(fields), ["__proto__"]);
  assert.equal(JSON.stringify(fields), '{"__proto__":"x"}');
  const copy = { ...fields };
  assert.deepEqual(Object.keys(copy), ["__proto__"]);
});

Deno.test("times: seconds, ms, µs, ns by size; ISO text; nanosecond text exactly", () => {
  const ms = Date.parse("2026-11-30T10:00:00.123Z");
  assert.equal(timeMsOf(ms / 1000), ms);
  assert.equal(timeMsOf(ms), ms);
  assert.equal(timeMsOf(ms * 1000), ms);
  assert.equal(timeMsOf(String(ms) + "456789"), ms);
  assert.equal(timeMsOf("2026-11-30T10:00:00.123Z"), ms);
  assert.equal(timeMsOf("2026-11-30T11:00:00.123+01:00"), ms);
  assert.equal(timeMsOf("yesterday"), undefined);
  assert.equal(timeMsOf(""), undefined);
  assert.equal(timeMsOf(true), undefined);
  assert.equal(nanosTextToMs("1796054400123999999"), 1796054400123);
  assert.equal(nanosTextToMs("999"), 0);
  assert.equal(nanosTextToMs("12a"), undefined);
  assert.equal(nanosTextToMs(""), undefined);
});

Deno.test("hex and base64", () => {
  assert.equal(toHex(Uint8Array.of(0, 15, 255)), "000fff");
  assert.equal(toBase64(Uint8Array.of(1, 2, 3)), "AQID");
  const big = new Uint8Array(100_000).fill(65);
  assert.equal(atob(toBase64(big)).length, 100_000);
});
