/**
 * Regular expressions from clients and configs, on a linear-time engine: RE2's algorithm, ported
 * to JavaScript by `re2js`. JavaScript's own `RegExp` backtracks: `(a+)+$` against thirty `a`s and
 * a `!` runs for minutes and freezes the whole process (ingestion, `/healthz`, SIGTERM). RE2 never
 * backtracks, so its time grows with the text, never exponentially.
 *
 * Linear is not cheap, though: a pattern whose automaton keeps growing (such as `(a|b)*a.{30}b$`)
 * costs several microseconds per character. So a pattern also has bounds on what it may cost:
 * its compiled program is at most {@linkcode MAX_PROGRAM_SIZE} instructions, its automaton's
 * memory is capped, and it looks at most at the first {@linkcode LinearRegexOptions.maxChars}
 * characters of a line. The caller bounds the number of lines (see `filter_budget.ts`).
 *
 * @module
 */

import { RE2JS } from "re2js";
import { describe } from "../_util.ts";

/**
 * The largest compiled program accepted, in instructions. RE2 caps a repetition at 1,000; this
 * stops a pattern made of many of them. `a{1000}` is 1,002 instructions.
 */
export const MAX_PROGRAM_SIZE = 2000;

/** Default of {@linkcode LinearRegexOptions.maxChars}. */
export const DEFAULT_MAX_CHARS = 8192;

/**
 * Memory of a pattern's lazily built automaton, in re2js's own units (about bytes). re2js allows
 * 8 MiB per pattern, and each tail holds one; past this, it clears the cache and, if that does
 * not help, falls back to its NFA. Measured on 100-byte log lines, 256 KiB costs simple patterns
 * nothing.
 */
const DFA_MEMORY = 256 * 1024;

/** Options of {@linkcode compileLinearRegex}. */
export interface LinearRegexOptions {
  /**
   * Characters of a line the pattern looks at: the rest of a longer line is not searched. A
   * pathological pattern costs up to about 20 microseconds per character on this engine, so this
   * bounds what one line can cost (8,192 characters: about 160 ms at worst, well under 1 ms for
   * ordinary patterns). Default {@linkcode DEFAULT_MAX_CHARS}.
   */
  maxChars?: number;
}

/** A compiled pattern: `test` runs in time linear in the (bounded) line length. */
export interface LinearRegex {
  /** The pattern as given (a `RegExp` as its `/source/flags`). */
  readonly source: string;
  /** Size of the compiled program, in instructions. */
  readonly programSize: number;
  /** Characters of a line the pattern looks at. */
  readonly maxChars: number;
  /** Whether the pattern matches somewhere in the first `maxChars` characters of `line`. */
  test(line: string): boolean;
}

/**
 * Compiles a pattern written in JavaScript's syntax (as far as RE2 has it: no lookahead, no
 * backreferences) or a `RegExp` (its `i`, `m`, `s` flags are kept; `g`, `y` and `u` mean nothing
 * for a test). Throws `SyntaxError` with `Invalid regex "<pattern>": <reason>` for a pattern it
 * cannot run, including one too large.
 *
 * @example
 * ```ts
 * const re = compileLinearRegex("(a+)+$");
 * re.test("a".repeat(30) + "!"); // false, at once
 * ```
 */
export function compileLinearRegex(
  pattern: string | RegExp,
  options: LinearRegexOptions = {},
): LinearRegex {
  const { maxChars = DEFAULT_MAX_CHARS } = options;
  if (!Number.isSafeInteger(maxChars) || maxChars < 1) {
    throw new RangeError(`Characters a regex looks at must be at least 1, got "${maxChars}"`);
  }
  const source = typeof pattern === "string" ? pattern : String(pattern);
  let re: RE2JS;
  try {
    re = RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (err) {
    throw new SyntaxError(`Invalid regex "${source}": ${reason(err)}`, { cause: err });
  }
  const programSize = re.programSize();
  if (programSize > MAX_PROGRAM_SIZE) {
    throw new SyntaxError(
      `Invalid regex "${source}": too large (${programSize} instructions, at most ${MAX_PROGRAM_SIZE})`,
    );
  }
  capAutomaton(re);
  return {
    source,
    programSize,
    maxChars,
    test: (line) => re.test(line.length > maxChars ? line.slice(0, maxChars) : line),
  };
}

/** re2js's message without its prefix: `error parsing regexp: missing closing ): ...`. */
function reason(err: unknown): string {
  return describe(err).replace(/^error parsing regexp: /, "");
}

/**
 * Lowers the memory budget of the pattern's lazy DFA (re2js 2.10 keeps it in `memBudget` and
 * `stateBudget`, the latter restoring the former when the cache is cleared). Not a public API:
 * `linear_regex_test.ts` checks it still exists, so an upgrade that moves it is noticed.
 */
function capAutomaton(re: RE2JS): void {
  // deno-lint-ignore no-explicit-any
  const dfa = (re as any).re2Input?.dfa;
  if (dfa && typeof dfa.memBudget === "number" && typeof dfa.stateBudget === "number") {
    dfa.memBudget = Math.min(dfa.memBudget, DFA_MEMORY);
    dfa.stateBudget = Math.min(dfa.stateBudget, DFA_MEMORY);
  }
}

/** For tests: the memory budget of the pattern's automaton, `undefined` if it cannot be read. */
export function automatonBudget(pattern: string): number | undefined {
  const re = RE2JS.compile(pattern);
  capAutomaton(re);
  // deno-lint-ignore no-explicit-any
  return (re as any).re2Input?.dfa?.stateBudget;
}
