/**
 * The `level` step: each line's level, normalized to trace, debug, info, warn, error or fatal
 * (`protocols/fields.ts`, `normalizeLevel`: names such as `WARNING`, `err`, `crit`, syslog
 * severities 0-7, pino and bunyan numbers 10-60), from the first of the named fields a line has,
 * else guessed from its text (`level_guess.ts`). A line with none of these takes the level of the
 * line before it in the same stream (a TCP connection, a followed file, an HTTP batch), so the
 * lines of a stack trace stay with their error.
 *
 * @module
 */

import type { BatchMeta } from "../../pipeline/batch.ts";
import { levelCode } from "../../pipeline/record.ts";
import { normalizeLevel } from "../../protocols/fields.ts";
import { guessLevel } from "../level_guess.ts";
import { defineStep, type FieldNeeds, needsWith, type Step } from "../step.ts";
import type { Work } from "../work.ts";

/** The `level` step. */
export const levelStep = defineStep({
  type: "level",
  doc: "Each line's level (trace, debug, info, warn, error, fatal) from a field, else guessed " +
    "from the text; a line without one takes the previous line's in the same stream",
  keys: {
    fields: {
      type: "list",
      default: ["level", "lvl", "severity", "loglevel"],
      doc: "Fields that hold the level, the first a line has wins (names, syslog severities " +
        "0-7, pino numbers 10-60)",
    },
    guess: {
      type: "bool",
      default: true,
      doc: "Without such a field, the first level word among the first 160 characters of the " +
        "text (ERROR, [warn], level=debug, Error:)",
    },
    inherit: {
      type: "bool",
      default: true,
      doc: "A line with no level takes the previous line's, in the same stream (a TCP " +
        "connection, a file, an HTTP batch), so a stack trace stays with its error",
    },
    override: {
      type: "bool",
      default: false,
      doc: "Replace a level the input stated (syslog severity, OTLP, Loki, Elasticsearch) " +
        "with the one found here; by default it stays",
    },
  },
  compile(values) {
    return new LevelStep(values.fields, values.guess, values.inherit, values.override);
  },
});

class LevelStep implements Step {
  /** The last level of each stream, by the batches' shared origin (one per connection). */
  readonly #last = new WeakMap<BatchMeta, number>();
  /** Level codes of the strings seen in level fields (`INFO`, `warn`): a bounded memory. */
  readonly #codes = new Map<string, number>();

  constructor(
    readonly fields: readonly string[],
    readonly guess: boolean,
    readonly inherit: boolean,
    readonly override: boolean,
  ) {}

  needs(after: FieldNeeds): FieldNeeds {
    return needsWith(after, this.fields);
  }

  run(work: Work): void {
    const levels = work.writeLevels();
    const meta = work.input.meta;
    let last = this.inherit ? this.#last.get(meta) ?? 0 : 0;
    for (let i = 0; i < work.lines; i++) {
      if (!work.isLive(i)) continue;
      const stated = levels[i];
      let code = this.override ? 0 : stated;
      if (code === 0) code = this.#found(work, i);
      if (code === 0) code = stated;
      if (code === 0) code = last;
      levels[i] = code;
      last = code;
    }
    if (this.inherit) this.#last.set(meta, last);
  }

  /** The level a field of line `i` names, else the one its text names; 0 for none. */
  #found(work: Work, i: number): number {
    const fields = work.fields(i);
    if (fields !== undefined) {
      for (const name of this.fields) {
        if (!Object.hasOwn(fields, name)) continue;
        const code = this.#codeOf(fields[name]);
        if (code !== 0) return code;
      }
    }
    return this.guess ? levelCode(guessLevel(work.text(i))) : 0;
  }

  /** The code of a field's value; the few names a stream uses are remembered. */
  #codeOf(value: unknown): number {
    if (typeof value !== "string") return levelCode(normalizeLevel(value));
    let code = this.#codes.get(value);
    if (code === undefined) {
      code = levelCode(normalizeLevel(value));
      if (this.#codes.size >= 256) this.#codes.clear();
      this.#codes.set(value, code);
    }
    return code;
  }
}
