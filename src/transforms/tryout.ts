/**
 * Rules tried on sample lines without a server: what `logboom rules test` prints and
 * `POST /api/v1/rules/test` answers. The lines go through the same compiled steps as in the
 * server, as one batch of one stream, and each line's fate is told: its level, time and fields,
 * or the step that dropped it, or the line whose event it joined.
 *
 * @module
 */

import type { BatchMeta } from "../pipeline/batch.ts";
import { type Fields, type Level, levelOfCode } from "../pipeline/record.ts";
import type { Transforms } from "./pipeline.ts";
import type { Trace } from "./work.ts";

/** What became of one sample line. */
export interface RuleResult {
  /** Its number in the sample, from 1 (blank lines count, though they are skipped). */
  line: number;
  /** The text stored: the line's, or for a line that starts a joined event, the event's. */
  text: string;
  /** The pipelines it went through, in order. */
  pipelines: string[];
  /** Whether a step dropped it. */
  dropped: boolean;
  /** The step that dropped it: `app.steps[2] (filter)`. */
  dropped_by?: string;
  /** For a line joined into an event: the line that starts it. */
  joined_into?: number;
  /** For a line that starts an event: the lines joined into it. */
  joined?: number[];
  /** Its level. */
  level?: Level;
  /** Its own time, ISO 8601 UTC. */
  time?: string;
  /** Its fields. */
  fields?: Fields;
}

/** Options of {@linkcode tryTransforms}. */
export interface TryOptions {
  /** The source the lines come from, which selects the pipelines. Default `tcp`. */
  source?: string;
  /** The host they come from. Default `127.0.0.1`. */
  host?: string;
  /** The input's name. Default `rules-test`. */
  input?: string;
  /** When they were received, in ms. Default now. */
  receivedAt?: number;
}

const encoder = new TextEncoder();

/**
 * Runs `transforms` on `sample` (text, one line per `\n`; a trailing `\r` is stripped and blank
 * lines are skipped, as every input frames lines) and tells what each line became.
 *
 * @example
 * ```ts
 * const results = tryTransforms(compiledTransforms(config), '{"level":"warn","msg":"x"}\n',
 *   { source: "app" });
 * results[0].level; // "warn"
 * ```
 */
export function tryTransforms(
  transforms: Transforms,
  sample: string,
  options: TryOptions = {},
): RuleResult[] {
  const meta: BatchMeta = {
    source: options.source ?? "tcp",
    host: options.host ?? "127.0.0.1",
    input: options.input ?? "rules-test",
  };
  const numbers: number[] = [];
  const texts: string[] = [];
  sample.split("\n").forEach((raw, k) => {
    const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (text.trim() === "") return;
    numbers.push(k + 1);
    texts.push(text);
  });
  if (texts.length === 0) return [];
  const data = encoder.encode(texts.join("\n") + "\n");
  const fates = new Map<number, { dropped?: string; into?: number }>();
  const trace: Trace = {
    dropped: (id, step) => fates.set(id, { dropped: step }),
    joined: (id, into) => fates.set(id, { into }),
  };
  const applied = transforms.apply({
    data,
    lines: texts.length,
    meta,
    receivedAt: options.receivedAt ?? Date.now(),
  }, trace);
  const pipelines = applied.pipelines.map((p) => p.name);
  const results: RuleResult[] = texts.map((text, id) => {
    const fate = fates.get(id);
    const result: RuleResult = { line: numbers[id], text, pipelines, dropped: false };
    if (fate?.dropped !== undefined) {
      result.dropped = true;
      result.dropped_by = fate.dropped;
    } else if (fate?.into !== undefined) result.joined_into = numbers[fate.into];
    return result;
  });
  const batch = applied.batch;
  if (batch === undefined || applied.work === undefined) return results;
  const work = applied.work;
  const stored = new TextDecoder().decode(batch.data).split("\n");
  for (let j = 0; j < batch.lines; j++) {
    const result = results[work.id(j)];
    result.text = stored[j];
    const level = levelOfCode(batch.levels?.[j] ?? 0);
    if (level !== undefined) result.level = level;
    const time = batch.times?.[j];
    if (time !== undefined && Math.abs(time) <= 8.64e15) result.time = new Date(time).toISOString();
    const fields = batch.fields?.[j];
    if (fields !== undefined) result.fields = { ...fields };
  }
  const byLine = new Map(results.map((r) => [r.line, r]));
  for (const result of results) {
    if (result.joined_into === undefined) continue;
    (byLine.get(result.joined_into)!.joined ??= []).push(result.line);
  }
  return results;
}
