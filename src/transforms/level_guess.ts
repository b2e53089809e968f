/**
 * A line's level guessed from its text: the first word, among the first
 * {@linkcode GUESS_CHARS} characters, that names a level, whatever its case: `ERROR`, `[warn]`,
 * `level=debug`, `Error:`. Short and ambiguous names (`e`, `i`, `log`, `alert`) are not taken from
 * free text, only from fields.
 *
 * @module
 */

import type { Level } from "../pipeline/record.ts";

/** Characters of a line looked at. */
export const GUESS_CHARS = 160;

const WORDS: ReadonlyMap<string, Level> = new Map<string, Level>([
  ["trace", "trace"],
  ["trc", "trace"],
  ["verbose", "trace"],
  ["debug", "debug"],
  ["dbg", "debug"],
  ["info", "info"],
  ["inf", "info"],
  ["notice", "info"],
  ["warn", "warn"],
  ["warning", "warn"],
  ["wrn", "warn"],
  ["error", "error"],
  ["err", "error"],
  ["eror", "error"],
  ["severe", "error"],
  ["fatal", "fatal"],
  ["ftl", "fatal"],
  ["critical", "fatal"],
  ["crit", "fatal"],
  ["emerg", "fatal"],
  ["panic", "fatal"],
]);

/**
 * The level named by the first level word of `text`, or `undefined`.
 *
 * @example
 * ```ts
 * guessLevel("2026-11-22 10:00:01 ERROR [main] boom"); // "error"
 * guessLevel("    at Foo.bar (foo.js:10)"); // undefined
 * ```
 */
export function guessLevel(text: string): Level | undefined {
  const n = Math.min(text.length, GUESS_CHARS);
  let start = -1;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) | 0x20 : 0;
    const letter = c >= 0x61 && c <= 0x7a;
    if (letter) {
      if (start < 0) start = i;
      continue;
    }
    if (start >= 0) {
      const length = i - start;
      // A word that runs on past the end of the window is not read.
      if (length >= 3 && length <= 8 && !(i === n && n < text.length)) {
        const level = WORDS.get(text.slice(start, i).toLowerCase());
        if (level !== undefined) return level;
      }
      start = -1;
    }
  }
  return undefined;
}
