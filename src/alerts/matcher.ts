/**
 * Which lines of a batch an alert counts: the live tail's filter (`live/filter.ts`) for level,
 * grep, regex and fields, so a rule means what the same tail filter shows, and a source glob as
 * the transforms' `sources` have. A batch is counted whole: lines are decoded only when a grep or
 * regex looks at them, and a batch without the level or fields column asked for is skipped at once.
 *
 * @module
 */

import { BatchLines } from "../live/batch_lines.ts";
import { columnsMatch, columnsMayMatch, compileFilter, type Filter } from "../live/filter.ts";
import type { Batch } from "../pipeline/batch.ts";
import { DEFAULT_MAX_CHARS } from "../text/linear_regex.ts";
import { compileSourceGlob, type SourceGlob } from "../transforms/source_glob.ts";
import type { AlertRule } from "./config.ts";

/** Matching lines a batch gives as samples, at most. */
export const SAMPLES_PER_BATCH = 5;
/** A sample longer than this many characters is cut, with `…` added. */
export const SAMPLE_CHARS = 1000;

// ignoreBOM: a line may start with U+FEFF, and a sample shows it as sent.
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** What one batch gave an alert. */
export interface Matched {
  /** Matching lines. */
  count: number;
  /** The first few of them ({@linkcode SAMPLES_PER_BATCH}), as text. */
  samples: string[];
}

const NONE: Matched = { count: 0, samples: [] };

/** An alert rule's filter, compiled once. */
export class AlertMatcher {
  readonly #source: SourceGlob | undefined;
  readonly #filter: Filter;

  /** @param rule a checked rule (`readAlerts`): its regex compiles. */
  constructor(rule: Pick<AlertRule, "source" | "level" | "grep" | "regex" | "fields">) {
    this.#source = rule.source === undefined ? undefined : compileSourceGlob(rule.source);
    this.#filter = compileFilter({
      grep: rule.grep,
      regex: rule.regex,
      level: rule.level,
      fields: rule.fields,
    }, DEFAULT_MAX_CHARS);
  }

  /** The lines of `batch` the rule matches: how many, and the first few. */
  match(batch: Batch): Matched {
    if (this.#source !== undefined && !this.#source.test(batch.meta.source)) return NONE;
    const filter = this.#filter;
    const { levels, fields } = batch;
    if (filter.columns && !columnsMayMatch(filter, levels, fields)) return NONE;
    const lines = new BatchLines(batch.data, batch.lines);
    if (filter.test === undefined && !filter.columns) {
      // Every line matches: counted without looking at one, the first few decoded as samples.
      const samples: string[] = [];
      for (let i = 0; i < Math.min(SAMPLES_PER_BATCH, lines.count); i++) {
        samples.push(sample(lines, i));
      }
      return { count: lines.count, samples };
    }
    const { needle, test, grepOnly } = filter;
    const next = (i: number) => needle === undefined ? i + 1 : lines.find(i + 1, needle);
    let count = 0;
    const samples: string[] = [];
    for (let i = next(-1); i < lines.count; i = next(i)) {
      if (filter.columns && !columnsMatch(filter, levels, fields, i)) continue;
      // A grep alone decided already: find() stops only at lines holding the text.
      if (!grepOnly && test !== undefined && !test(lines.text(i))) continue;
      count++;
      if (samples.length < SAMPLES_PER_BATCH) samples.push(sample(lines, i));
    }
    return count === 0 ? NONE : { count, samples };
  }
}

/** Line `i` as text, without its newline, cut at {@linkcode SAMPLE_CHARS}. */
function sample(lines: BatchLines, i: number): string {
  const bytes = lines.bytes(i, i + 1);
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 10 ? bytes.length - 1 : bytes.length;
  // 4 bytes per character at most: no more is decoded than the cut keeps.
  const text = decoder.decode(bytes.subarray(0, Math.min(end, SAMPLE_CHARS * 4)));
  return text.length > SAMPLE_CHARS ? text.slice(0, SAMPLE_CHARS) + "…" : text;
}
