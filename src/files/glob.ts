/**
 * File globs for the agent's `paths` and `exclude`: `*` and `?` within one path segment,
 * `[abc]` and `[!abc]` classes, and `**` for any number of folders. Expanding a glob lists only the
 * folders its pattern can reach, so `/var/log/nginx/*.log` reads one folder, never a tree.
 *
 * @module
 */

import { basename, isAbsolute, join, resolve, sep as SEPARATOR } from "node:path";

/** A compiled glob. */
export interface Glob {
  /** The pattern as written. */
  readonly pattern: string;
  /** The folder the pattern starts in: its longest prefix without wildcards. */
  readonly root: string;
  /** The segments after the root, each `**` or a pattern for one name. */
  readonly segments: readonly Segment[];
  /** The whole pattern as one expression over absolute paths. */
  readonly regex: RegExp;
}

/** One path segment of a glob: `**`, or a name pattern (with its literal name when it has no wildcards). */
export type Segment = "**" | { readonly regex: RegExp; readonly literal?: string };

/** Folders below a `**` are walked at most this deep, so a symlink loop or a huge tree is bounded. */
const MAX_DEPTH = 16;

/** Whether `text` has glob syntax. */
export function hasWildcards(text: string): boolean {
  return /[*?[]/.test(text);
}

/**
 * Compiles `pattern`, relative to `cwd` when it is not absolute.
 *
 * @throws {TypeError} when the pattern is empty or a class is not closed.
 *
 * @example
 * ```ts
 * const glob = compileGlob("/var/log/nginx/*.log");
 * glob.root; // "/var/log/nginx"
 * glob.regex.test("/var/log/nginx/access.log"); // true
 * ```
 */
export function compileGlob(pattern: string, cwd = "."): Glob {
  if (typeof pattern !== "string" || pattern.trim() === "") {
    throw new TypeError("A glob pattern must be a non-empty string");
  }
  const absolute = isAbsolute(pattern) ? pattern : join(resolve(cwd), pattern);
  const parts = absolute.split(SEPARATOR).filter((p) => p !== "" && p !== ".");
  let fixed = 0;
  while (fixed < parts.length - 1 && !hasWildcards(parts[fixed])) fixed++;
  const root = SEPARATOR + parts.slice(0, fixed).join(SEPARATOR);
  const segments = parts.slice(fixed).map((p): Segment =>
    p === "**" ? "**" : { regex: segmentRegex(p), literal: hasWildcards(p) ? undefined : p }
  );
  let source = "^" + escape(root === SEPARATOR ? "" : root);
  for (const part of parts.slice(fixed)) {
    source += part === "**" ? "(?:/[^/]+)*" : "/" + segmentSource(part);
  }
  return { pattern, root, segments, regex: new RegExp(source + "$") };
}

/**
 * Whether `path` (absolute) matches an exclude pattern: one without `/` is matched against the
 * file name (`*.gz`), one with `/` against the whole path.
 */
export function isExcluded(path: string, excludes: readonly Glob[]): boolean {
  const name = basename(path);
  for (const glob of excludes) {
    if (glob.pattern.includes("/") ? glob.regex.test(path) : glob.regex.test(name)) return true;
  }
  return false;
}

/** Compiles an exclude pattern: a bare name pattern stays a name pattern. */
export function compileExclude(pattern: string, cwd = "."): Glob {
  if (typeof pattern !== "string" || pattern.trim() === "") {
    throw new TypeError("An exclude pattern must be a non-empty string");
  }
  if (pattern.includes("/")) return compileGlob(pattern, cwd);
  const regex = segmentRegex(pattern);
  return { pattern, root: "", segments: [{ regex }], regex };
}

/** What {@linkcode expandGlob} tells besides the files it lists. */
export interface ExpandReport {
  /** A match that is not a regular file nor a symlink (a folder, FIFO, device or socket). */
  onOther?: (path: string) => void;
  /** A folder the glob reaches that cannot be listed (other than not being there). */
  onError?: (folder: string, err: unknown) => void;
}

/**
 * Lists the files that match `glob`, as absolute paths. Folders that do not exist are skipped, as
 * files appear and disappear under a live glob; matches that are not files, and folders that
 * cannot be listed, are told to `report`.
 */
export async function expandGlob(glob: Glob, report: ExpandReport = {}): Promise<string[]> {
  const out: string[] = [];
  await walk(glob.root, glob.segments, 0, 0, out, report);
  return out;
}

async function walk(
  dir: string,
  segments: readonly Segment[],
  index: number,
  depth: number,
  out: string[],
  report: ExpandReport,
): Promise<void> {
  if (index >= segments.length) return;
  const segment = segments[index];
  const last = index === segments.length - 1;
  if (segment !== "**" && segment.literal !== undefined) {
    // A plain name: one stat instead of listing a folder that may hold thousands of files.
    const path = join(dir, segment.literal);
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (err) {
      // Not there (yet): a live glob sees files come and go.
      if (!(err instanceof Deno.errors.NotFound)) report.onError?.(path, err);
      return;
    }
    if (last) {
      if (info.isFile) out.push(path);
      else report.onOther?.(path);
    } else if (info.isDirectory) {
      await walk(path, segments, index + 1, depth, out, report);
    }
    return;
  }
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound) && !(err instanceof Deno.errors.NotADirectory)) {
      report.onError?.(dir, err);
    }
    return;
  }
  if (segment === "**") {
    if (last) return;
    // `**` matches no folder at all, or any folder below, each matched against the rest.
    await walk(dir, segments, index + 1, depth, out, report);
    if (depth >= MAX_DEPTH) return;
    for (const entry of entries) {
      // Symlinked folders are not followed below `**`: a loop would never end.
      if (entry.isDirectory && !entry.name.startsWith(".")) {
        await walk(join(dir, entry.name), segments, index, depth + 1, out, report);
      }
    }
    return;
  }
  for (const entry of entries) {
    if (!segment.regex.test(entry.name)) continue;
    const path = join(dir, entry.name);
    if (last) {
      if (entry.isFile || entry.isSymlink) out.push(path);
      else report.onOther?.(path);
    } else if (entry.isDirectory || entry.isSymlink) {
      await walk(path, segments, index + 1, depth, out, report);
    }
  }
}

function segmentRegex(part: string): RegExp {
  return new RegExp("^" + segmentSource(part) + "$");
}

function segmentSource(part: string): string {
  let out = "";
  for (let i = 0; i < part.length; i++) {
    const c = part[i];
    if (c === "*") {
      // `*` and `?` never match a leading dot, as in a shell, so `*` skips `.hidden` files.
      out += i === 0 ? "(?!\\.)[^/]*" : "[^/]*";
    } else if (c === "?") {
      out += i === 0 ? "(?!\\.)[^/]" : "[^/]";
    } else if (c === "[") {
      const close = part.indexOf("]", i + 2);
      if (close === -1) throw new TypeError(`Glob class in "${part}" is not closed`);
      let body = part.slice(i + 1, close);
      const negate = body.startsWith("!") || body.startsWith("^");
      if (negate) body = body.slice(1);
      out += "[" + (negate ? "^/" : "") + body.replace(/[\\\]]/g, "\\$&") + "]";
      i = close;
    } else {
      out += escape(c);
    }
  }
  return out;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
