import assert from "node:assert/strict";
import type { Batch } from "../pipeline/batch.ts";
import { TestSink } from "../pipeline/_test_sink.ts";
import { CompiledPipeline, Transforms } from "./pipeline.ts";
import { TransformStage } from "./stage.ts";
import { batchOf, linesOf, metaOf, pipelineOf } from "./_test_util.ts";

/** Keeps what it is given: written batches (as lines), flush arguments, and room. */
class Recorder extends TestSink {
  readonly name = "recorder";
  readonly written: Batch[] = [];
  readonly flushed: (readonly Batch[] | undefined)[] = [];
  readonly waited: (Batch | undefined)[] = [];
  room = true;
  write(batch: Batch): boolean {
    this.written.push(batch);
    return this.room;
  }
  override flush(batches?: readonly Batch[]): Promise<void> {
    this.flushed.push(batches);
    return Promise.resolve();
  }
  override writable(batch?: Batch): Promise<void> {
    this.waited.push(batch);
    return Promise.resolve();
  }
}

const DROP_DEBUG = [{ type: "level" }, { type: "filter", action: "exclude", level: "debug" }];

Deno.test("the stage writes what the steps made, and flush waits for exactly those batches", async () => {
  const router = new Recorder();
  const tap = new Recorder();
  const stage = new TransformStage(router, pipelineOf(DROP_DEBUG), { tap });
  const input = batchOf(["INFO a", "DEBUG b", "WARN c"]);
  assert.equal(stage.write(input), true);
  assert.deepEqual(router.written.map(linesOf), [["INFO a", "WARN c"]]);
  assert.deepEqual(tap.written, [input], "the tap counts lines as received");
  await stage.flush([input]);
  assert.deepEqual(router.flushed, [[router.written[0]]]);
  await stage.writable(input);
  assert.deepEqual(router.waited, [router.written[0]]);
  await stage.flush();
  assert.deepEqual(router.flushed.at(-1), undefined);
});

Deno.test("a batch whose lines are all dropped is acknowledged at once and writes nothing", async () => {
  const router = new Recorder();
  router.room = false;
  const stage = new TransformStage(router, pipelineOf(DROP_DEBUG));
  const input = batchOf(["DEBUG a", "DEBUG b"]);
  assert.equal(stage.write(input), true, "nothing was queued: no reason to wait");
  assert.deepEqual(router.written, []);
  await stage.flush([input]);
  assert.deepEqual(router.flushed, [[]]);
  await stage.writable(input);
  assert.deepEqual(router.waited, []);
});

Deno.test("backpressure: the router's answer for the batch made is the stage's", () => {
  const router = new Recorder();
  router.room = false;
  const stage = new TransformStage(router, pipelineOf(DROP_DEBUG));
  assert.equal(stage.write(batchOf(["INFO a"])), false);
  const untouched = new TransformStage(router, pipelineOf(DROP_DEBUG, ["other"]));
  const input = batchOf(["INFO a"]);
  assert.equal(untouched.write(input), false);
  assert.equal(router.written.at(-1), input, "a source no pipeline takes passes as it is");
});

Deno.test("a marked batch that lost lines still counts the input's lines in its mark", () => {
  const router = new Recorder();
  const stage = new TransformStage(router, pipelineOf(DROP_DEBUG));
  const mark = { stream: "s", offset: 10, part: 0, parts: 1, total: 7, skipped: 3 };
  stage.write(batchOf(["DEBUG a", "INFO b", "DEBUG c", "INFO d"], { mark }));
  const made = router.written[0];
  assert.equal(made.lines, 2);
  // The file writer journals skipped + lines: 3 + 4 input lines, whatever was dropped.
  assert.equal(made.mark!.skipped + made.lines, mark.skipped + 4);
  assert.equal(made.mark!.total, 7);
});

Deno.test("a step that throws loses nothing: the batch goes on as received, counted and logged", () => {
  const router = new Recorder();
  const broken = new CompiledPipeline("broken", ["*"], [{
    type: "bug",
    step: {
      run() {
        throw new Error("a bug");
      },
    },
  }]);
  const stage = new TransformStage(router, new Transforms([broken]));
  const input = batchOf(["x"]);
  assert.equal(stage.write(input), true);
  assert.equal(router.written[0], input);
  assert.match(stage.metrics(), /logboom_transform_failures_total 1\n/);
});

Deno.test("reload: an unchanged pipeline keeps running as it was; a changed one keeps its steps' counters", () => {
  const router = new Recorder();
  const first = pipelineOf([{ type: "level" }, { type: "filter", level: ">=info" }]);
  const stage = new TransformStage(router, first);
  const conn = metaOf("app");
  stage.write(batchOf(["ERROR boom"], {}, conn));
  // Same config, compiled anew: the running pipeline stays, with the stream's last level.
  stage.configure(
    pipelineOf([{ type: "level" }, { type: "filter", level: ">=info" }]),
    new Set(["p"]),
  );
  assert.equal(stage.transforms.pipelines[0], first.pipelines[0]);
  stage.write(batchOf(["  at frame"], {}, conn));
  assert.deepEqual(router.written.map(linesOf), [["ERROR boom"], ["  at frame"]]);
  // Changed: compiled anew; its level step (same type, same place) goes on counting.
  const next = pipelineOf([{ type: "level" }, { type: "filter", level: ">=error" }]);
  stage.configure(next, new Set());
  assert.equal(stage.transforms.pipelines[0], next.pipelines[0]);
  assert.equal(next.pipelines[0].steps[0].counters.in, 2);
  stage.write(batchOf(["WARN w", "ERROR e"], {}, conn));
  assert.deepEqual(linesOf(router.written.at(-1)), ["ERROR e"]);
  assert.equal(next.pipelines[0].steps[0].counters.in, 4);
});

Deno.test("metrics: per step, batches and lines in, out, dropped, in error, and seconds", () => {
  const stage = new TransformStage(
    new Recorder(),
    pipelineOf([{ type: "parse", format: "json" }, ...DROP_DEBUG]),
  );
  stage.write(batchOf(['{"level":"debug"}', '{"level":"info"}', "not json INFO"]));
  const text = stage.metrics();
  for (
    const sample of [
      'logboom_transform_batches_total{pipeline="p",step="0",type="parse"} 1',
      'logboom_transform_lines_in_total{pipeline="p",step="2",type="filter"} 3',
      'logboom_transform_lines_out_total{pipeline="p",step="2",type="filter"} 2',
      'logboom_transform_lines_dropped_total{pipeline="p",step="2",type="filter"} 1',
      'logboom_transform_errors_total{pipeline="p",step="0",type="parse"} 1',
    ]
  ) {
    assert.ok(text.includes(sample + "\n"), `${sample} in:\n${text}`);
  }
  assert.match(
    text,
    /logboom_transform_seconds_total\{pipeline="p",step="1",type="level"\} [\d.e-]+\n/,
  );
  assert.match(text, /# TYPE logboom_transform_seconds_total counter\n/);
});

Deno.test("a frozen batch (which cannot carry the note) is mapped all the same", async () => {
  const router = new Recorder();
  const stage = new TransformStage(router, pipelineOf(DROP_DEBUG));
  const input = Object.freeze(batchOf(["INFO a", "DEBUG b"]));
  stage.write(input);
  await stage.flush([input]);
  assert.deepEqual(router.flushed, [[router.written[0]]]);
  assert.deepEqual(linesOf(router.written[0]), ["INFO a"]);
  // The note is not enumerable: a copy of an input's batch does not carry it.
  const other = batchOf(["DEBUG x"]);
  stage.write(other);
  assert.deepEqual(Object.keys({ ...other }).sort(), ["data", "lines", "meta", "receivedAt"]);
  assert.deepEqual(Object.getOwnPropertySymbols({ ...other }), []);
});
