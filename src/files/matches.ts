/**
 * What an input's globs match now: its regular files by path and by identity. Matches that
 * cannot be followed are told to {@linkcode Problems}.
 *
 * @module
 */

import { expandGlob, type Glob, isExcluded } from "./glob.ts";
import { keyOf } from "./identity.ts";
import type { Problems } from "./problems.ts";

/** What a scan found at the globs' paths. */
export interface Matches {
  /** Regular files by path. */
  files: Map<string, Deno.FileInfo>;
  /** The first matched path of each `dev:ino`. */
  byKey: Map<string, string>;
}

/** What is matched, and where problems go. */
export interface MatchRules {
  /** Globs of the files to follow. */
  globs: readonly Glob[];
  /** Globs of files to leave out. */
  excludes: readonly Glob[];
  /** Files the process writes itself: never followed. */
  ownFiles?: (path: string) => boolean;
  /** Told what matches and cannot be followed. */
  problems: Problems;
}

/**
 * Lists the globs' regular files (symlinks followed), leaving out excluded and own files.
 *
 * @example
 * ```ts
 * const { files, byKey } = await listMatches({ globs, excludes: [], problems });
 * ```
 */
export async function listMatches(rules: MatchRules): Promise<Matches> {
  const { globs, excludes, problems } = rules;
  const files = new Map<string, Deno.FileInfo>();
  const others: string[] = [];
  const report = {
    onOther: (path: string) => others.push(path),
    onError: (folder: string, err: unknown) => problems.unlisted(folder, err),
  };
  const leftOut = (path: string) => isExcluded(path, excludes) || isOwn(path, rules);
  for (const glob of globs) {
    for (const path of await expandGlob(glob, report)) {
      if (files.has(path) || leftOut(path)) continue;
      const info = await statOrSay(path, problems);
      if (info === undefined) continue;
      if (info.isFile && info.ino !== null) files.set(path, info);
      else if (!info.isFile) problems.special(path, info);
    }
  }
  for (const path of others) {
    if (leftOut(path)) continue;
    const info = await statOrSay(path, problems);
    if (info !== undefined && !info.isFile) problems.special(path, info);
  }
  const byKey = new Map<string, string>();
  for (const [path, info] of files) {
    const key = keyOf(info);
    if (!byKey.has(key)) byKey.set(key, path);
  }
  return { files, byKey };
}

/** Whether `path` is one of the process's own files (said once). */
function isOwn(path: string, rules: MatchRules): boolean {
  if (rules.ownFiles === undefined || !rules.ownFiles(path)) return false;
  rules.problems.own(path);
  return true;
}

/** `path`'s information (symlinks followed); `undefined` when it is gone or cannot be read. */
async function statOrSay(path: string, problems: Problems): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) problems.unreadable(path, err);
    return undefined;
  }
}
