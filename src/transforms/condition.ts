/**
 * The conditions `filter` and `route` steps test on a line: its level (`level: ">=warn"`), a
 * field (`field: service`, with `equals: billing` or `matches: "^bill"`, or neither for "has the
 * field"), and its text (`regex: "timeout"`). Every condition given must hold. Regexes run on the
 * linear-time engine.
 *
 * @module
 */

import { LEVELS } from "../pipeline/record.ts";
import { compileLinearRegex, type LinearRegex } from "../text/linear_regex.ts";
import type { Work } from "./work.ts";

/** A condition's keys as a step's config holds them. */
export interface ConditionValues {
  level?: string;
  field?: string;
  equals?: string;
  matches?: string;
  regex?: string;
}

/** A compiled condition. */
export type Condition = (work: Work, i: number) => boolean;

const LEVEL_TEST = /^\s*(>=|<=|!=|=|>|<)?\s*([a-z]+)\s*$/;
const NAMES = [...LEVELS, "none"];

/**
 * What is wrong with a level condition such as `>=warn`, `<info`, `error`, `!=none`, or
 * `undefined`.
 */
export function checkLevelTest(text: string): string | undefined {
  const match = LEVEL_TEST.exec(text.toLowerCase());
  if (match === null || !NAMES.includes(match[2])) {
    return `must be a level, optionally after >=, <=, >, <, = or != (levels: ${
      NAMES.join(", ")
    }), e.g. ">=warn", got "${text}"`;
  }
  if (match[2] === "none" && match[1] !== undefined && match[1] !== "=" && match[1] !== "!=") {
    return `none (no level) can only be compared with = or !=, got "${text}"`;
  }
  return undefined;
}

/**
 * A test on a level code (0 none, 1 trace ... 6 fatal) from a level condition. A line without a
 * level passes only `none`, `=none` and `!=` a level: `<info` means trace or debug.
 *
 * @throws {SyntaxError} when the condition does not read (see {@linkcode checkLevelTest}).
 *
 * @example
 * ```ts
 * compileLevelTest(">=warn")(5); // true: error
 * compileLevelTest(">=warn")(0); // false: no level
 * ```
 */
export function compileLevelTest(text: string): (code: number) => boolean {
  const wrong = checkLevelTest(text);
  if (wrong !== undefined) throw new SyntaxError(`Level condition ${wrong}`);
  const [, op = "=", name] = LEVEL_TEST.exec(text.toLowerCase())!;
  const n = name === "none" ? 0 : LEVELS.indexOf(name as typeof LEVELS[number]) + 1;
  switch (op) {
    case "=":
      return (code) => code === n;
    case "!=":
      return (code) => code !== n;
    case ">=":
      return (code) => code >= n;
    case ">":
      return (code) => code > n;
    case "<=":
      return (code) => code !== 0 && code <= n;
    default:
      return (code) => code !== 0 && code < n;
  }
}

/**
 * Compiles the conditions of `values`; `undefined` when it has none.
 *
 * @throws {SyntaxError} for a level condition or a regex that does not read.
 */
export function compileCondition(values: ConditionValues): Condition | undefined {
  const tests: Condition[] = [];
  if (values.level !== undefined) {
    const test = compileLevelTest(values.level);
    tests.push((work, i) => test(work.levels?.[i] ?? 0));
  }
  if (values.field !== undefined) tests.push(fieldTest(values.field, values));
  if (values.regex !== undefined) {
    const re = compileLinearRegex(values.regex);
    tests.push((work, i) => re.test(work.text(i)));
  }
  if (tests.length === 0) return undefined;
  if (tests.length === 1) return tests[0];
  return (work, i) => {
    for (const test of tests) if (!test(work, i)) return false;
    return true;
  };
}

function fieldTest(field: string, values: ConditionValues): Condition {
  const { equals, matches } = values;
  let re: LinearRegex | undefined;
  if (matches !== undefined) re = compileLinearRegex(matches);
  return (work, i) => {
    const fields = work.fields(i);
    if (fields === undefined || !Object.hasOwn(fields, field)) return false;
    const value = String(fields[field]);
    if (equals !== undefined && value !== equals) return false;
    return re === undefined || re.test(value);
  };
}
