/**
 * What a transform step is: a key table (its typed config, `config/keys.ts`, so `logboom
 * validate` checks it and the reference page lists it) and a `compile()` that turns checked values
 * into a {@linkcode Step}, once, when the config is loaded. A step then runs per batch, on its
 * columns ({@linkcode Work}).
 *
 * @module
 */

import type { KeyTable, Values } from "../config/keys.ts";
import type { Work } from "./work.ts";

/**
 * The fields something reads: by name, or `"all"` of them. What the sinks, the live tails and the
 * steps after a step read is what that step must give (`parse: json` picks only those, see
 * `json_pick.ts`).
 */
export type FieldNeeds = ReadonlySet<string> | "all";

/** No field read. */
export const NO_FIELDS: FieldNeeds = new Set<string>();

/** `needs` with `names` too. */
export function needsWith(needs: FieldNeeds, names: Iterable<string>): FieldNeeds {
  if (needs === "all") return needs;
  const out = new Set(needs);
  for (const name of names) out.add(name);
  return out;
}

/** A compiled step: what it does to one batch. */
export interface Step {
  /** Runs on every line of `work` not dropped yet. */
  run(work: Work): void;
  /**
   * The fields read before this step, given `after`, those read after it: those it reads
   * itself, and those read after it that it does not make. Without it: all (a step that does not
   * say may read any).
   */
  needs?(after: FieldNeeds): FieldNeeds;
}

/** A step type: its keys and how to compile them. */
export interface StepComponent<T extends KeyTable = KeyTable> {
  /** The name a step's `type` gives, e.g. `parse`. */
  type: string;
  /** One line on what it does, for the reference page. */
  doc: string;
  /** Its keys. */
  keys: T;
  /**
   * Compiles checked values; throws {@linkcode StepKeyError} naming the key at fault (a pattern
   * that does not read, a key another key needs).
   */
  compile(values: Values<T>): Step;
}

/** Declares a step type with its values typed by its table. */
export function defineStep<T extends KeyTable>(component: StepComponent<T>): StepComponent {
  return component as unknown as StepComponent;
}

/** A step's values that do not compile, with the key at fault. */
export class StepKeyError extends Error {
  /** The key at fault, e.g. `pattern`. */
  readonly key: string;

  /**
   * @param key the key at fault.
   * @param message what is wrong with it.
   */
  constructor(key: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StepKeyError";
    this.key = key;
  }
}

/** Runs `compile`, turning a `SyntaxError` it throws into a {@linkcode StepKeyError} at `key`. */
export function atKey<T>(key: string, compile: () => T): T {
  try {
    return compile();
  } catch (err) {
    if (err instanceof SyntaxError || err instanceof RangeError) {
      throw new StepKeyError(key, err.message, { cause: err });
    }
    throw err;
  }
}

/** The field a line that did not parse gets, with `<format>: <why>` (`on_error: keep`). */
export const PARSE_ERROR_FIELD = "_parse_error";

/** The field `route` sets, which a file sink's path template reads as `{fields._route}`. */
export const ROUTE_FIELD = "_route";

/** The keys of a condition, shared by `filter` and `route` (see `condition.ts`). */
export const CONDITION_KEYS = {
  level: {
    type: "string",
    doc: 'The line\'s level compared with one: ">=warn", "<info", "error", "!=none" ("none": no ' +
      "level; a line without one passes only none)",
  },
  field: {
    type: "string",
    nonEmpty: true,
    doc: "The line has this field (with equals or matches: whose value, as text, is ...)",
  },
  equals: { type: "string", doc: "With field: the field's value, as text, is this" },
  matches: {
    type: "string",
    doc: "With field: the field's value, as text, matches this regex (linear-time engine)",
  },
  regex: {
    type: "string",
    doc: "The line's text matches this regex (linear-time engine; the first 8,192 characters)",
  },
} as const satisfies KeyTable;
