import assert from "node:assert/strict";
import { type Fields, levelCode, levelOfCode } from "../pipeline/record.ts";
import { batchOf, linesOf, metaOf, pipelineOf } from "./_test_util.ts";

const levels = (codes: ArrayLike<number> | undefined) =>
  Array.from(codes ?? [], (code) => levelOfCode(code) ?? null);

Deno.test("parse json: fields flattened; a line that is not an object keeps its text with _parse_error", () => {
  const t = pipelineOf([{ type: "parse", format: "json" }]);
  const { batch } = t.apply(batchOf([
    '{"msg":"hi","http":{"status":200,"path":"/a"},"tags":["a","b"],"none":null}',
    "plain text",
    "[1,2]",
  ]));
  assert.deepEqual(linesOf(batch), [
    '{"msg":"hi","http":{"status":200,"path":"/a"},"tags":["a","b"],"none":null}',
    "plain text",
    "[1,2]",
  ]);
  assert.deepEqual(batch!.fields, [
    { msg: "hi", "http.status": 200, "http.path": "/a", tags: '["a","b"]' },
    { _parse_error: "json: not JSON" },
    { _parse_error: "json: not a JSON object" },
  ]);
  assert.equal(t.pipelines[0].steps[0].counters.errors, 2);
});

Deno.test("parse with on_error: drop drops what does not parse, and counts it", () => {
  const t = pipelineOf([{ type: "parse", format: "logfmt", on_error: "drop" }]);
  const { batch } = t.apply(batchOf(['a=1 b="two words"', 'broken="', "c"]));
  assert.deepEqual(linesOf(batch), ['a=1 b="two words"', "c"]);
  assert.deepEqual(batch!.fields, [{ a: "1", b: "two words" }, { c: true }]);
  const counters = t.pipelines[0].steps[0].counters;
  assert.deepEqual([counters.in, counters.out, counters.dropped, counters.errors], [3, 2, 1, 1]);
});

Deno.test("parse regex and dissect; parse a field's value; existing fields are kept", () => {
  const t = pipelineOf([
    { type: "parse", format: "regex", pattern: "^(?<verb>[A-Z]+) (?<path>\\S+)" },
    {
      type: "parse",
      format: "dissect",
      pattern: "%{?verb} %{?path} took %{ms}ms",
      on_error: "drop",
    },
    { type: "parse", format: "json", field: "path" },
  ]);
  const { batch } = t.apply(batchOf(['GET {"q":1} took 12ms', "GET /b took 3ms"], {
    fields: [{ trace: "t1" }, undefined],
  }));
  assert.deepEqual(batch!.fields, [
    { trace: "t1", verb: "GET", path: '{"q":1}', ms: "12", q: 1 },
    { verb: "GET", path: "/b", ms: "3", _parse_error: "json: not JSON" },
  ]);
});

Deno.test("parse syslog: header fields, structured data, and the line's level and time", () => {
  const t = pipelineOf([{ type: "parse", format: "syslog" }]);
  const { batch } = t.apply(batchOf([
    '<11>1 2026-11-22T10:00:00.123Z web1 nginx 42 ID7 [meta@1 zone="eu"] upstream timed out',
    "<190>Nov 22 10:00:01 db1 postgres[77]: checkpoint",
    "no syslog here",
  ]));
  assert.deepEqual(batch!.fields![0], {
    facility: "user",
    severity: "err",
    host: "web1",
    app: "nginx",
    procid: "42",
    msgid: "ID7",
    "sd.meta@1.zone": "eu",
    message: "upstream timed out",
  });
  assert.equal(batch!.fields![1]!.app, "postgres");
  assert.equal(batch!.fields![1]!.severity, "info");
  assert.deepEqual(batch!.fields![2], { _parse_error: "syslog: not RFC 5424 nor RFC 3164" });
  assert.deepEqual(levels(batch!.levels), ["error", "info", null]);
  assert.equal(batch!.times![0], Date.parse("2026-11-22T10:00:00.123Z"));
  assert.ok(Number.isNaN(batch!.times![2]));
});

Deno.test("level: from fields (names, pino numbers), else guessed; a line without one takes the previous line's", () => {
  const t = pipelineOf([
    { type: "parse", format: "json", on_error: "keep" },
    { type: "level" },
  ]);
  const { batch } = t.apply(batchOf([
    '{"level":30,"msg":"up"}',
    '{"severity":"WARNING","msg":"slow"}',
    "2026-11-22 ERROR Database connection failed",
    "java.lang.IllegalStateException: no connection",
    "    at Db.open(Db.java:10)",
    '{"lvl":"dbg"}',
  ]));
  assert.deepEqual(levels(batch!.levels), ["info", "warn", "error", "error", "error", "debug"]);
});

Deno.test("level inheritance carries across the batches of one stream, not into another stream", () => {
  const t = pipelineOf([{ type: "level" }]);
  const conn1 = metaOf("app", "10.0.0.1");
  const conn2 = metaOf("app", "10.0.0.2");
  t.apply(batchOf(["ERROR boom"], {}, conn1));
  assert.deepEqual(levels(t.apply(batchOf(["  at frame 1"], {}, conn1)).batch!.levels), [
    "error",
  ]);
  assert.deepEqual(levels(t.apply(batchOf(["  at frame 1"], {}, conn2)).batch!.levels), [null]);
});

Deno.test("level: a level the input stated stays unless override", () => {
  const stated = new Uint8Array([levelCode("fatal"), 0]);
  const keep = pipelineOf([{ type: "level" }]).apply(
    batchOf(["INFO a", "INFO b"], { levels: stated }),
  );
  assert.deepEqual(levels(keep.batch!.levels), ["fatal", "info"]);
  const override = pipelineOf([{ type: "level", override: true }]).apply(
    batchOf(["INFO a", "no word"], { levels: stated }),
  );
  assert.deepEqual(levels(override.batch!.levels), ["info", "info"]);
  assert.deepEqual([...stated], [levelCode("fatal"), 0], "the input's column is not written");
});

Deno.test("timestamp: the first time field a line has, in any of its forms", () => {
  const t = pipelineOf([{ type: "parse", format: "json" }, { type: "timestamp" }]);
  const { batch } = t.apply(batchOf([
    '{"time":"2026-11-22T10:00:00Z"}',
    '{"ts":1795341600.5}',
    '{"@timestamp":1795341600123}',
    '{"msg":"none"}',
  ]));
  assert.deepEqual(
    [...batch!.times!].map((t) => Number.isNaN(t) ? null : new Date(t).toISOString()),
    [
      "2026-11-22T10:00:00.000Z",
      "2026-11-22T10:00:00.500Z",
      "2026-11-22T10:00:00.123Z",
      null,
    ],
  );
});

Deno.test("filter: include and exclude by level, field and regex; the bytes of kept lines exactly", () => {
  const lines = [
    '{"level":"debug","service":"billing"}',
    '{"level":"error","service":"billing","msg":"card declined"}',
    '{"level":"info","service":"search"}',
    '{"level":"warn","service":"billing","msg":"timeout"}',
  ];
  const run = (steps: unknown[]) =>
    linesOf(
      pipelineOf([{ type: "parse", format: "json" }, { type: "level" }, ...steps]).apply(
        batchOf(lines),
      ).batch,
    ).map((line) => lines.indexOf(line));
  assert.deepEqual(run([{ type: "filter", level: ">=warn" }]), [1, 3]);
  assert.deepEqual(run([{ type: "filter", action: "exclude", level: "<info" }]), [1, 2, 3]);
  assert.deepEqual(run([{ type: "filter", field: "service", equals: "billing" }]), [0, 1, 3]);
  assert.deepEqual(run([{ type: "filter", field: "msg", matches: "^time" }]), [3]);
  assert.deepEqual(run([{ type: "filter", field: "msg" }]), [1, 3]);
  assert.deepEqual(run([{ type: "filter", action: "exclude", regex: "billing" }]), [2]);
  assert.deepEqual(
    run([{ type: "filter", level: "!=debug", field: "service", equals: "billing" }]),
    [1, 3],
  );
  assert.deepEqual(run([{ type: "filter", level: "fatal" }]), []);
});

Deno.test("route: the first route that matches wins; one without a condition takes the rest", () => {
  const t = pipelineOf([
    { type: "level" },
    { type: "route", to: "errors", level: ">=error" },
    { type: "route", to: "audit", regex: "AUDIT" },
    { type: "route", to: "main" },
  ]);
  const { batch } = t.apply(batchOf(["ERROR AUDIT denied", "INFO AUDIT login", "INFO hello"]));
  assert.deepEqual(batch!.fields!.map((f) => f?._route), ["errors", "audit", "main"]);
});

Deno.test("set, rename and delete change copies: the input's field objects stay as they were", () => {
  const input: Fields[] = [{ a: 1, b: "x" }, { c: true }];
  const t = pipelineOf([
    { type: "set", field: "env", value: "prod" },
    { type: "rename", from: "a", to: "alpha" },
    { type: "delete", fields: ["b", "c"] },
  ]);
  const { batch } = t.apply(batchOf(["one", "two"], { fields: input }));
  assert.deepEqual(batch!.fields, [{ env: "prod", alpha: 1 }, { env: "prod" }]);
  assert.deepEqual(input, [{ a: 1, b: "x" }, { c: true }]);
});

Deno.test("multiline: continuation lines join the line that starts an event; it keeps that line's columns", () => {
  const t = pipelineOf([
    { type: "multiline", start: "^\\d{4}-" },
    { type: "level" },
  ]);
  const times = new Float64Array([1, 2, 3, 4, 5]);
  const { batch } = t.apply(batchOf([
    "  orphan continuation",
    "2026-11-22 ERROR boom",
    "java.lang.RuntimeException: x",
    "\tat A.b(A.java:1)",
    "2026-11-22 INFO next",
  ], { times }));
  assert.deepEqual(linesOf(batch), [
    "  orphan continuation",
    "2026-11-22 ERROR boom\\njava.lang.RuntimeException: x\\n\tat A.b(A.java:1)",
    "2026-11-22 INFO next",
  ]);
  assert.deepEqual([...batch!.times!], [1, 2, 5]);
  assert.deepEqual(levels(batch!.levels), [null, "error", "info"]);
  const joins = t.pipelines[0].steps[0].counters;
  assert.deepEqual([joins.in, joins.out, joins.dropped], [5, 3, 0]);
});

Deno.test("multiline: an event is cut at max_lines", () => {
  const t = pipelineOf([{ type: "multiline", start: "^S", max_lines: 2, join: " | " }]);
  const { batch } = t.apply(batchOf(["S1", "a", "b", "c"]));
  assert.deepEqual(linesOf(batch), ["S1 | a", "b | c"]);
});

Deno.test("a batch no step changes is passed on as it is", () => {
  const t = pipelineOf([{ type: "filter", action: "exclude", regex: "never" }]);
  const input = batchOf(["a", "b"]);
  assert.equal(t.apply(input).batch, input);
});

Deno.test("only the pipelines whose sources match run, one after the other, in the config's order", () => {
  const t = pipelineOf([{ type: "set", field: "seen", value: "yes" }], ["web-*"]);
  const web = batchOf(["x"], {}, metaOf("web-1"));
  assert.deepEqual(t.apply(web).batch!.fields, [{ seen: "yes" }]);
  const other = batchOf(["x"], {}, metaOf("db"));
  assert.equal(t.apply(other).batch, other);
  assert.deepEqual(t.apply(other).pipelines, []);
});

Deno.test("parse json: a batch of JSON values that are not all flat objects is read line by line", () => {
  const t = pipelineOf([{ type: "parse", format: "json" }]);
  const { batch } = t.apply(batchOf(['{"a":1}', "[1]", '{"b":{"c":2}}', '"text"']));
  assert.deepEqual(batch!.fields, [
    { a: 1 },
    { _parse_error: "json: not a JSON object" },
    { "b.c": 2 },
    { _parse_error: "json: not a JSON object" },
  ]);
});

Deno.test("dropping lines keeps the exact bytes of the others, multi-byte text and invalid UTF-8 included", () => {
  const t = pipelineOf([
    { type: "parse", format: "json" },
    { type: "level" },
    { type: "filter", action: "exclude", level: "debug" },
  ]);
  const lines = [
    '{"level":"debug","msg":"é"}',
    '{"level":"info","msg":"naïve café ☕"}',
    '{"level":"debug","msg":"x"}',
    '{"level":"warn","msg":"𝄞"}',
  ];
  const { batch } = t.apply(batchOf(lines));
  assert.deepEqual(linesOf(batch), [lines[1], lines[3]]);
  // A byte that is not UTF-8 stays as it came.
  const raw = new Uint8Array([...new TextEncoder().encode("DEBUG a\nINFO "), 0xff, 10]);
  const made = pipelineOf([{ type: "level" }, { type: "filter", level: ">=info" }]).apply({
    ...batchOf([]),
    data: raw,
    lines: 2,
  }).batch!;
  assert.deepEqual([...made.data], [...new TextEncoder().encode("INFO "), 0xff, 10]);
});
