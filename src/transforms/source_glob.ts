/**
 * Globs over source names (`app-*`, `nginx?`, `*`), for the `sources` of a transform pipeline:
 * `*` is any run of characters, `?` one character, everything else itself. Matched by hand in
 * O(name x pattern) at worst, never by a backtracking regex, as source names come from clients.
 *
 * @module
 */

/** A compiled source glob. */
export interface SourceGlob {
  /** The pattern as written. */
  readonly pattern: string;
  /** Whether `source` matches the whole pattern. */
  test(source: string): boolean;
}

/**
 * Compiles a source glob.
 *
 * @example
 * ```ts
 * compileSourceGlob("app-*").test("app-billing"); // true
 * compileSourceGlob("app-*").test("nginx"); // false
 * ```
 */
export function compileSourceGlob(pattern: string): SourceGlob {
  if (pattern === "*") return { pattern, test: () => true };
  if (!/[*?]/.test(pattern)) return { pattern, test: (source) => source === pattern };
  return { pattern, test: (source) => globMatch(pattern, source) };
}

/**
 * Whether `text` matches `pattern` whole: the classic two-pointer wildcard match, which on a
 * mismatch goes back to the last `*` only (no exponential backtracking).
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    const c = pattern.charCodeAt(p);
    if (p < pattern.length && (c === 0x3f || c === text.charCodeAt(t))) {
      p++;
      t++;
    } else if (p < pattern.length && c === 0x2a) {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern.charCodeAt(p) === 0x2a) p++;
  return p === pattern.length;
}
