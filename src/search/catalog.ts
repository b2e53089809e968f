/**
 * The stored files a search reads: every file an output's path template names, live or rotated
 * (plain or gzipped), with its source (from the template's `{source}`), its time bounds and its
 * time index, newest first.
 *
 * @module
 */

import { join, relative } from "node:path";
import {
  type FileIndexData,
  type IndexLayout,
  indexLayout,
  logRoot,
  readIndex,
  sidecarOf,
} from "../store/file_index.ts";
import { parseRotated } from "../store/rotation.ts";

/** One stored file. */
export interface StoredFile {
  /** Its path, as the template's folder gives it. */
  path: string;
  /** Its path under the log folder: what answers name it by. */
  name: string;
  /** The source its path names (`{source}`), sanitized as in the name; unknown otherwise. */
  source: string | undefined;
  /** Whether it is gzipped. */
  compressed: boolean;
  /** Bytes on disk. */
  size: number;
  /** No line of it was received before this (ms; `-Infinity` when unknown). */
  lo: number;
  /** No line of it was received after this (ms). */
  hi: number;
  /** Its time index, when it has one. */
  index: FileIndexData | undefined;
}

/** Where the stored files are: each output's template, and the state folder of the indexes. */
export interface StoreLayout {
  /** The file sinks' paths or templates (`-logFile`). */
  outputs: readonly string[];
  /** The state folder (`<stateDir>/index` holds the indexes). */
  stateDir: string;
}

const STAMP = String.raw`\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}Z(?:_\d{3,})?`;
const ROTATION = new RegExp(`${STAMP}(?=(?:\\.[^.]*)?(?:\\.gz)?$)`);
const DAY_MS = 86_400_000;

/** A template as a pattern over paths under its log folder, with where `{source}` is caught. */
interface TemplatePattern {
  root: string;
  layout: IndexLayout;
  regex: RegExp;
  source: number;
  date: number;
  depth: number;
}

function compile(template: string, stateDir: string): TemplatePattern {
  const root = logRoot(template);
  const rel = relative(root, template);
  let pattern = "^";
  let source = -1;
  let date = -1;
  let group = 0;
  let last = 0;
  for (const match of rel.matchAll(/\{([^{}]*)\}/g)) {
    pattern += escape(rel.slice(last, match.index));
    group++;
    if (match[1] === "source") source = group;
    if (match[1] === "date") date = group;
    pattern += match[1] === "date" ? String.raw`(\d{4}-\d{2}-\d{2})` : "([^/]*)";
    last = match.index + match[0].length;
  }
  pattern += escape(rel.slice(last)) + "$";
  return {
    root,
    layout: indexLayout(template, stateDir),
    regex: new RegExp(pattern),
    source,
    date,
    depth: rel.split("/").length,
  };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Lists the stored files of every output, newest first (by the time of their last line).
 * Hidden entries (the state folder) are never listed.
 */
export async function listStoredFiles(layout: StoreLayout): Promise<StoredFile[]> {
  const found = new Map<string, StoredFile>();
  for (const template of layout.outputs) {
    const pattern = compile(template, layout.stateDir);
    const byLive = new Map<string, { file: StoredFile; stamp: number; seq: number }[]>();
    for await (const rel of walk(pattern.root, pattern.depth)) {
      const path = join(pattern.root, rel);
      if (found.has(path)) continue;
      const base = rel.slice(rel.lastIndexOf("/") + 1);
      const liveBase = base.replace(ROTATION, "").replace(/\.gz$/, "");
      const liveRel = rel.slice(0, rel.length - base.length) + liveBase;
      const rotated = liveBase === base
        ? undefined
        : parseRotated(join(pattern.root, liveRel), base);
      if (liveBase !== base && rotated === undefined) continue;
      const match = pattern.regex.exec(liveRel);
      if (match === null) continue;
      const file = await describeFile(path, rel, pattern, match, rotated?.time);
      if (file === undefined) continue;
      found.set(path, file);
      const list = byLive.get(liveRel) ?? [];
      list.push({ file, stamp: rotated?.time ?? Infinity, seq: rotated?.sequence ?? 0 });
      byLive.set(liveRel, list);
    }
    // A file's lines came after the rotation before it.
    for (const list of byLive.values()) {
      list.sort((a, b) => a.stamp - b.stamp || a.seq - b.seq);
      for (let i = 1; i < list.length; i++) {
        const before = list[i - 1].stamp;
        if (Number.isFinite(before)) list[i].file.lo = Math.max(list[i].file.lo, before);
      }
    }
  }
  return [...found.values()].sort((a, b) => b.hi - a.hi || (a.name < b.name ? -1 : 1));
}

async function describeFile(
  path: string,
  rel: string,
  pattern: TemplatePattern,
  match: RegExpExecArray,
  stamp: number | undefined,
): Promise<StoredFile | undefined> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch {
    return undefined;
  }
  const sidecar = sidecarOf(pattern.layout, path);
  const index = sidecar === undefined ? undefined : await readIndex(sidecar);
  let lo = -Infinity;
  let hi = stamp ?? Math.max(stat.mtime?.getTime() ?? Date.now(), index?.end?.time ?? -Infinity);
  if (pattern.date > 0) {
    const day = Date.parse(match[pattern.date] + "T00:00:00Z");
    if (!Number.isNaN(day)) {
      lo = day;
      hi = Math.min(hi, day + DAY_MS);
    }
  }
  const first = index?.marks[0];
  if (first !== undefined && first.offset === 0) lo = Math.max(lo, first.time);
  if (index?.end !== undefined) hi = Math.min(hi, Math.max(index.end.time, lo));
  return {
    path,
    name: relative(".", join(pattern.root, rel)) === path ? rel : rel,
    source: pattern.source > 0 ? match[pattern.source] : undefined,
    compressed: path.endsWith(".gz"),
    size: stat.size,
    lo,
    hi: Math.max(hi, lo),
    index,
  };
}

/** Paths of regular files under `root`, relative to it, at most `depth` levels down. */
async function* walk(root: string, depth: number, prefix = ""): AsyncGenerator<string> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(prefix === "" ? root : join(root, prefix)));
  } catch {
    return;
  }
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isFile && depth === 1) yield rel;
    else if (entry.isDirectory && depth > 1) yield* walk(root, depth - 1, rel);
  }
}
