/**
 * The transform steps' part of `/metrics`: per step (labels `pipeline`, `step` its place from 0,
 * `type`) the batches, lines in, out, dropped and in error, and seconds spent, measured per batch.
 *
 * @module
 */

import { PrometheusWriter } from "../prometheus.ts";
import type { CompiledPipeline, StepCounters } from "./pipeline.ts";

/** The families, by counter: name and help. */
const FAMILIES: readonly [keyof StepCounters, string, string][] = [
  ["batches", "logboom_transform_batches_total", "Batches a transform step ran on."],
  ["in", "logboom_transform_lines_in_total", "Lines given to a transform step."],
  [
    "out",
    "logboom_transform_lines_out_total",
    "Lines a transform step passed on (fewer than in when it dropped or joined lines).",
  ],
  ["dropped", "logboom_transform_lines_dropped_total", "Lines a transform step dropped."],
  [
    "errors",
    "logboom_transform_errors_total",
    "Lines a transform step could not process (a parse that failed: kept with _parse_error, " +
    "or dropped with on_error: drop).",
  ],
  [
    "seconds",
    "logboom_transform_seconds_total",
    "Time a transform step spent, in seconds, measured per batch.",
  ],
];

/** The page part for `pipelines`, and the batches stored untransformed as a step threw. */
export function renderTransformMetrics(
  pipelines: readonly CompiledPipeline[],
  failures: number,
): string {
  const out = new PrometheusWriter();
  for (const [key, name, help] of FAMILIES) {
    out.family(name, "counter", help);
    for (const pipeline of pipelines) {
      pipeline.steps.forEach(({ type, counters }, k) => {
        out.sample({ pipeline: pipeline.name, step: k, type }, counters[key]);
      });
    }
  }
  out.family(
    "logboom_transform_failures_total",
    "counter",
    "Batches stored as received because a transform step failed (a bug: see the log).",
  );
  out.sample({}, failures);
  return out.text();
}
