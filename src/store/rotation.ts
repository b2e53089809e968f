/**
 * Names of rotated files, how to recognise them again, which ones retention deletes, and when the
 * next time-based rotation falls. No file is touched here: the sink renames and deletes.
 *
 * A rotated file is its live file's name with a UTC time before the extension: `app.log` becomes
 * `app.2026-11-21T23-54-55.123Z.log`, and `app.2026-11-21T23-54-55.123Z.log.gz` once compressed.
 * The time is when the file stopped taking lines: the rotation's own time, or for a time-based
 * rotation the period boundary that ended the file (`app.2026-11-22T00-00-00.000Z.log` holds the
 * lines of 2026-11-21 under `-rotateEvery 24h`). It has a fixed width, so names sort in the order
 * the files were written. A final `.gz` is never taken for the extension (`app.gz` becomes
 * `app.gz.<time>`), so each rotated name belongs to exactly one live file.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/** A rotated sibling of a live file, as {@linkcode parseRotated} recognised it. */
export interface RotatedFile {
  /** The directory entry's name, e.g. `app.2026-11-21T23-54-55.123Z.log.gz`. */
  name: string;
  /** The entry's path: `name` in the live file's folder. */
  path: string;
  /** When it was rotated, in milliseconds since the epoch. */
  time: number;
  /** 0, or which repeat within the same millisecond (`_001` is 1). */
  sequence: number;
  /** Whether the name ends with `.gz`. */
  compressed: boolean;
}

/** Options of {@linkcode rotatedName}. */
export interface RotatedNameOptions {
  /**
   * Whether a path is already used. Both the candidate and the candidate with `.gz` are asked
   * about, so a compressed earlier rotation is not overwritten either. Default: nothing is taken.
   */
  taken?: (path: string) => boolean;
}

/** Options of {@linkcode selectExpired}; with neither `keep` nor `maxAgeMs`, nothing expires. */
export interface RetentionOptions {
  /** How many of the newest rotations to keep, at least 0. Default: no limit by count. */
  keep?: number;
  /** Rotations older than this many milliseconds expire. Default: no limit by age. */
  maxAgeMs?: number;
  /** The current time in milliseconds since the epoch. Default `Date.now()`. */
  now?: number;
}

/** `2026-11-21T23-54-55.123Z`: an ISO time with `-` for `:`, which Windows forbids in names. */
const STAMP = String.raw`(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}Z)(?:_(\d{3,}))?`;

/**
 * The path `path` is renamed to when rotated at `date`: the time goes before the extension, so
 * tools still see a `.log` file. When that name (or its `.gz`) is `taken`, a sequence `_001`,
 * `_002`… follows the time; it sorts after the plain name, keeping names in rotation order.
 *
 * @param path the live file, e.g. `logs/app.log`.
 * @param date the time of the rotation.
 * @throws {RangeError} when `date` is invalid or outside the years 0000–9999.
 *
 * @example
 * ```ts
 * rotatedName("logs/app.log", Date.parse("2026-11-21T23:54:55.123Z"));
 * // "logs/app.2026-11-21T23-54-55.123Z.log"
 * rotatedName("logs/app", Date.parse("2026-11-21T23:54:55.123Z"));
 * // "logs/app.2026-11-21T23-54-55.123Z"
 * ```
 */
export function rotatedName(
  path: string,
  date: Date | number,
  options: RotatedNameOptions = {},
): string {
  const { taken = () => false } = options;
  const ms = typeof date === "number" ? date : date.getTime();
  const iso = Number.isFinite(ms) ? new Date(ms).toISOString() : "";
  if (iso.length !== 24) throw new RangeError(`Cannot name a rotation at time ${String(date)}`);
  const stamp = iso.replaceAll(":", "-");
  const { dir, stem, ext } = split(path);
  for (let sequence = 0;; sequence++) {
    const suffix = sequence === 0 ? "" : "_" + String(sequence).padStart(3, "0");
    const candidate = join(dir, `${stem}.${stamp}${suffix}${ext}`);
    if (!taken(candidate) && !taken(candidate + ".gz")) return candidate;
  }
}

/**
 * Recognises `name`, an entry of the folder that holds `path`, as a rotation of `path` (made by
 * {@linkcode rotatedName}, compressed or not). Anything else, including the live file itself and
 * the `.gz.tmp` of an unfinished compression, gives `undefined`.
 *
 * @param path the live file, e.g. `logs/app.log`.
 * @param name a directory entry's name; of a path, only the last part counts.
 *
 * @example
 * ```ts
 * parseRotated("logs/app.log", "app.2026-11-21T23-54-55.123Z.log.gz");
 * // { name: "app.2026-11-21T23-54-55.123Z.log.gz",
 * //   path: "logs/app.2026-11-21T23-54-55.123Z.log.gz",
 * //   time: 1795305295123, sequence: 0, compressed: true }
 * parseRotated("logs/app.log", "app.log"); // undefined
 * ```
 */
export function parseRotated(path: string, name: string): RotatedFile | undefined {
  const entry = basename(name);
  const { dir, stem, ext } = split(path);
  const pattern = new RegExp(`^${escape(stem)}\\.${STAMP}${escape(ext)}(\\.gz)?$`);
  const match = pattern.exec(entry);
  if (match === null) return undefined;
  const [, stamp, sequence, gz] = match;
  const iso = stamp.replace(/T(\d{2})-(\d{2})-(\d{2})/, "T$1:$2:$3");
  const time = Date.parse(iso);
  // Date.parse forgives 2026-02-30; a name that does not round-trip was not made by rotatedName.
  if (Number.isNaN(time) || new Date(time).toISOString() !== iso) return undefined;
  return {
    name: entry,
    path: join(dir, entry),
    time,
    sequence: sequence === undefined ? 0 : Number(sequence),
    compressed: gz !== undefined,
  };
}

/**
 * Orders rotations oldest first, for `Array.prototype.sort`.
 *
 * @example
 * ```ts
 * rotations.sort(compareRotated); // oldest first
 * ```
 */
export function compareRotated(
  a: Pick<RotatedFile, "time" | "sequence">,
  b: Pick<RotatedFile, "time" | "sequence">,
): number {
  return a.time - b.time || a.sequence - b.sequence;
}

/**
 * The rotations retention deletes: all but the newest `keep`, and all older than `maxAgeMs`.
 * A rotation present both plain and compressed (a compression cut short after its rename) counts
 * once towards `keep`, and both of its files expire together.
 *
 * @param files rotations of one live file, in any order.
 * @param options the limits; see {@linkcode RetentionOptions}.
 * @returns the expired ones, oldest first.
 * @throws {RangeError} when `keep` is not a non-negative integer or `maxAgeMs` is negative.
 *
 * @example
 * ```ts
 * const expired = selectExpired(rotations, { keep: 7, maxAgeMs: parseDuration("30d") });
 * for (const file of expired) await Deno.remove(file.path);
 * ```
 */
export function selectExpired<T extends Pick<RotatedFile, "time" | "sequence">>(
  files: readonly T[],
  options: RetentionOptions = {},
): T[] {
  const { keep = Infinity, maxAgeMs = Infinity, now = Date.now() } = options;
  if (keep !== Infinity && (!Number.isSafeInteger(keep) || keep < 0)) {
    throw new RangeError(`Rotations to keep must be a non-negative integer, got ${keep}`);
  }
  if (Number.isNaN(maxAgeMs) || maxAgeMs < 0) {
    throw new RangeError(
      `Maximum age must be a non-negative number of milliseconds, got ${maxAgeMs}`,
    );
  }
  const newestFirst = [...files].sort((a, b) => compareRotated(b, a));
  const expired: T[] = [];
  let generations = 0;
  let previous: T | undefined;
  for (const file of newestFirst) {
    if (previous === undefined || compareRotated(previous, file) !== 0) generations++;
    previous = file;
    if (generations > keep || now - file.time > maxAgeMs) expired.push(file);
  }
  return expired.reverse();
}

/**
 * The first instant after `now` that is a whole multiple of `everyMs` since the Unix epoch, so
 * periods line up with UTC: `24h` rotates at each UTC midnight, `1h` on the hour. A period that
 * does not divide a day drifts against midnight, the epoch being the anchor; `7d` falls on
 * Thursdays, as 1970-01-01 was one.
 *
 * @param now milliseconds since the epoch.
 * @param everyMs the period in milliseconds, a positive integer.
 * @throws {RangeError} when `everyMs` is not a positive integer or `now` is not finite.
 *
 * @example
 * ```ts
 * const now = Date.parse("2026-11-21T23:54:55.123Z");
 * new Date(nextRotationTime(now, 24 * 3600_000)).toISOString(); // "2026-11-22T00:00:00.000Z"
 * ```
 */
export function nextRotationTime(now: number, everyMs: number): number {
  if (!Number.isSafeInteger(everyMs) || everyMs <= 0) {
    throw new RangeError(
      `Rotation period must be a positive number of milliseconds, got ${everyMs}`,
    );
  }
  if (!Number.isFinite(now)) throw new RangeError(`Time must be a finite number, got ${now}`);
  // Strictly after `now`: rotating exactly on a boundary must schedule the next one, not itself.
  return (Math.floor(now / everyMs) + 1) * everyMs;
}

/**
 * `logs/app.log` → `logs`, `app`, `.log`; a leading dot (`.env`) is part of the stem, and so is a
 * final `.gz`, which only ever marks compression: otherwise the compressed rotation of `app`
 * (`app.<time>.gz`) would be the plain rotation of `app.gz`, and each output's retention would
 * delete the other's files.
 */
function split(path: string): { dir: string; stem: string; ext: string } {
  const base = basename(path);
  const dot = base.lastIndexOf(".");
  const hasExt = dot > 0 && dot < base.length - 1 && base.slice(dot) !== ".gz";
  return {
    dir: dirname(path),
    stem: hasExt ? base.slice(0, dot) : base,
    ext: hasExt ? base.slice(dot) : "",
  };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
