import assert from "node:assert/strict";
import { levelOfCode } from "../pipeline/record.ts";
import { batchOf, linesOf, pipelineOf } from "./_test_util.ts";
import { type FieldNeeds, NO_FIELDS } from "./step.ts";

const LINES = [
  '{"level":"info","msg":"up","user":"bob"}',
  '{"level":"debug","msg":"tick"}',
  '{"level":"error","msg":"boom","n":01}',
  "    at Db.open (db.js:10)",
  '{"lvl":"warn","msg":"slow","http":{"status":503}}',
];

const STEPS = [
  { type: "parse", format: "json" },
  { type: "level" },
  { type: "filter", action: "exclude", level: "debug" },
];

function run(steps: unknown[], after: FieldNeeds) {
  const applied = pipelineOf(steps).apply(batchOf(LINES), undefined, after);
  const batch = applied.batch!;
  return {
    lines: linesOf(batch),
    levels: Array.from(batch.levels ?? [], (code) => levelOfCode(code) ?? null),
    fields: batch.fields?.map((f) => f ?? null),
  };
}

Deno.test("parse json gives only the fields read after it; lines and levels are the same", () => {
  const all = run(STEPS, "all");
  const none = run(STEPS, NO_FIELDS);
  assert.deepEqual(none.lines, all.lines);
  assert.deepEqual(none.levels, ["info", "error", "error", "warn"]);
  // Nobody reads fields after the stage: the level step's names alone were picked, and the
  // batch goes on without them.
  assert.equal(none.fields, undefined);
  assert.deepEqual(run(STEPS, new Set(["msg"])).fields, [
    { level: "info", msg: "up" },
    { level: "error", msg: "boom" },
    { _parse_error: "json: not JSON" },
    { lvl: "warn", msg: "slow" },
  ]);
  // Read whole: the line with 01 does not parse (its level is guessed from the text).
  assert.deepEqual(all.fields?.[0], { level: "info", msg: "up", user: "bob" });
  assert.deepEqual(all.fields?.[1], { _parse_error: "json: not JSON" });
  assert.deepEqual(all.fields?.[3], { lvl: "warn", msg: "slow", "http.status": 503 });
  // A sink's template reads `user` and `http.status` (nested: that line is parsed whole).
  const some = run(STEPS, new Set(["user", "http.status"]));
  assert.deepEqual(some.fields?.[0], { level: "info", user: "bob" });
  assert.deepEqual(some.fields?.[3], { lvl: "warn", msg: "slow", "http.status": 503 });
});

Deno.test("parse json reads lines whole when it drops what does not parse, or when the error mark is read", () => {
  const drop = [{ type: "parse", format: "json", on_error: "drop" }, ...STEPS.slice(1)];
  assert.deepEqual(run(drop, NO_FIELDS).lines, [LINES[0], LINES[4]]);
  const marked = run(STEPS, new Set(["_parse_error"]));
  assert.deepEqual(marked.fields?.[1], { _parse_error: "json: not JSON" });
});

Deno.test("each step asks for what it reads: level names, conditions, rename's source, route's mark", () => {
  const [pipeline] = pipelineOf([
    { type: "parse", format: "json" },
    { type: "timestamp", fields: ["ts"] },
    { type: "rename", from: "svc", to: "service" },
    { type: "filter", field: "env", equals: "prod" },
    { type: "route", to: "x", field: "team", equals: "a" },
    { type: "set", field: "k", value: "v" },
    { type: "delete", fields: ["msg"] },
  ]).pipelines;
  const before = pipeline.needsBefore(new Set(["service"]));
  assert.deepEqual([...before as Set<string>].sort(), [
    "_route",
    "env",
    "service",
    "svc",
    "team",
    "ts",
  ]);
  // The same plan for the same object.
  const after = new Set(["service"]);
  assert.equal(pipeline.needsBefore(after), pipeline.needsBefore(after));
  assert.equal(pipeline.needsBefore("all"), "all");
});

Deno.test("a JSON _route field wins over a route step when the sink reads _route", () => {
  const steps = [{ type: "parse", format: "json" }, { type: "route", to: "main" }];
  const applied = pipelineOf(steps).apply(
    batchOf(['{"_route":"audit","msg":"a"}', '{"msg":"b"}']),
    undefined,
    new Set(["_route"]),
  );
  assert.deepEqual(applied.batch!.fields, [{ _route: "audit" }, { _route: "main" }]);
});
