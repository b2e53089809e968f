/**
 * Helpers of the transforms tests: pipelines compiled from step lists, batches from lines.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Problems } from "../config/keys.ts";
import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import { compiledTransforms, readTransforms } from "./config.ts";
import type { Transforms } from "./pipeline.ts";

/** One pipeline `p` of `steps` over `sources` (default every source), compiled. */
export function pipelineOf(steps: unknown[], sources?: string[]): Transforms {
  const problems = new Problems();
  const config = readTransforms({ p: { steps, ...(sources ? { sources } : {}) } }, problems);
  assert.deepEqual(problems.list, []);
  return compiledTransforms(config!);
}

/** A stream's origin. */
export function metaOf(source = "app", host = "10.0.0.1"): BatchMeta {
  return { source, host, input: "tcp" };
}

/** A batch of `lines` (each without its newline). */
export function batchOf(
  lines: readonly string[],
  extra: Partial<Batch> = {},
  meta: BatchMeta = metaOf(),
): Batch {
  return {
    data: new TextEncoder().encode(lines.map((line) => line + "\n").join("")),
    lines: lines.length,
    meta,
    receivedAt: Date.UTC(2026, 10, 22),
    ...extra,
  };
}

/** The lines of a batch, without their newlines. */
export function linesOf(batch: Batch | undefined): string[] {
  if (batch === undefined) return [];
  const lines = new TextDecoder().decode(batch.data).split("\n");
  assert.equal(lines.pop(), "", "a batch ends with a newline");
  assert.equal(lines.length, batch.lines);
  return lines;
}
