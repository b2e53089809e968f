/**
 * The `-logFile` template: `logs/{source}/{host}-{date}.log` names one file per value. Values come
 * from the network, so they are sanitized until they can only ever name something inside the
 * folders the template itself spells out.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";
import { type Fields, type FieldValue, type Level, levelOfCode } from "../pipeline/record.ts";

/**
 * A placeholder a template may hold: `source`, `host`, `date`, the name of a label an input
 * puts on its batches (`app`, `facility`, `severity` from syslog), `level`, or a line's field
 * as `fields.NAME` (`fields.service`, `fields.http.status`).
 */
export type Placeholder = string;

/** The labels inputs put on batches today (syslog's), allowed in templates by default. */
export const DEFAULT_LABELS: readonly string[] = ["app", "facility", "severity"];

/** The values a template is rendered with; only those the template uses are read. */
export interface TemplateValues {
  /** The batch's source. Default: empty, which renders as `_`. */
  source?: string;
  /** The batch's host. Default: empty, which renders as `_`. */
  host?: string;
  /** The time whose UTC day fills `{date}`, as a `Date` or milliseconds since the epoch. */
  date?: Date | number;
  /** The batch's labels, for the other placeholders; a missing label renders as `_`. */
  labels?: Readonly<Record<string, string>>;
  /** The line's level, for `{level}`; none renders as `_`. */
  level?: Level;
  /** The line's fields, for `{fields.NAME}`; a missing field renders as `_`. */
  fields?: Readonly<Fields>;
}

/** Options of {@linkcode PathTemplate}. */
export interface PathTemplateOptions {
  /**
   * Longest rendering of one value, in UTF-8 bytes. A longer value keeps its start and ends with
   * `~` and a hash of the whole, so two long values that differ only at their ends still get two
   * files. Where one path segment holds several values (`{source}-{host}.log`), they share what
   * the usual 255-byte name limit leaves after the literal text, down to 16 bytes each. At least
   * 16. Default 128.
   */
  maxValueBytes?: number;
  /**
   * How many rendered paths are remembered. Sources and hosts come from the network, so the cache
   * is bounded; when full, the oldest entry goes. Default 1024.
   */
  cacheSize?: number;
  /**
   * The label names allowed as placeholders besides `source`, `host` and `date`, each a letter
   * followed by letters, digits or `_`. Default {@linkcode DEFAULT_LABELS}.
   */
  labels?: readonly string[];
}

const FIXED: ReadonlySet<string> = new Set(["source", "host", "date", "level"]);
/** What a field placeholder starts with: `{fields.service}`. */
const FIELD_PREFIX = "fields.";
const LABEL_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const DAY_MS = 24 * 60 * 60 * 1000;
/** NAME_MAX on Linux, macOS and Windows alike. */
const MAX_NAME_BYTES = 255;
const MIN_VALUE_BYTES = 16;
const SEPARATOR = Deno.build.os === "windows" ? /[/\\]/ : /\//;
/** Separators and control characters; on Windows also `:` (drive names, streams) and the rest. */
const UNSAFE = Deno.build.os === "windows" ? /[\p{Cc}/\\:<>"|?*]/gu : /[\p{Cc}/\\]/gu;
/** The time in a rotated file's name (see `rotation.ts`), up to its `.`: values never hold one. */
const ROTATION_TIME = /(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2})\.(?=\d{3}Z)/g;
const encoder = new TextEncoder();

/**
 * Makes `value` safe as part of one file name: `/`, `\`, control characters (NUL included) and
 * every `..` become `_` (on Windows also `:<>"|?*`); an empty value or `.` becomes `_`; a value
 * that starts with `.` gets a `_` in front (`.env` → `_.env`); the `.` inside a rotation time
 * (`2026-11-22T00-00-00.000Z`) becomes `_`; a value longer than `maxBytes` is cut on a character
 * boundary and ends with `~` and an 8-digit hash of the whole value. The result never holds a
 * separator, never starts with `.` and holds no `..`, so however it is joined with the template's
 * text it cannot climb out of the template's folder, cannot name a hidden file (where logboom
 * keeps its own, such as `.logboom-probe`) and cannot name another output's rotated file.
 *
 * The mapping is not one-to-one: `a/b` and `a_b` share a file, as the price of readable names.
 *
 * @param value a source or host name, as received.
 * @param options `maxBytes`: the longest result in UTF-8 bytes, at least 16 (default 128).
 * @throws {RangeError} when `maxBytes` is not an integer of at least 16.
 *
 * @example
 * ```ts
 * sanitizeValue("../../etc/passwd"); // "____etc_passwd"
 * sanitizeValue(".."); // "_"
 * sanitizeValue(".logboom-streams.jsonl"); // "_.logboom-streams.jsonl"
 * ```
 */
export function sanitizeValue(value: string, options: { maxBytes?: number } = {}): string {
  const { maxBytes = 128 } = options;
  checkMaxBytes(maxBytes);
  // Well-formed first: the file system would turn each lone surrogate into U+FFFD anyway.
  let safe = value.toWellFormed().replace(UNSAFE, "_").replaceAll("..", "_")
    .replace(ROTATION_TIME, "$1_");
  if (safe === "" || safe === ".") return "_";
  if (safe.startsWith(".")) safe = "_" + safe;
  // A UTF-16 unit is at most 3 UTF-8 bytes, so short values skip the encoding.
  if (safe.length * 3 > maxBytes && encoder.encode(safe).length > maxBytes) {
    safe = truncate(safe, maxBytes - 9) + "~" + hash(value);
  }
  return safe;
}

/**
 * A parsed `-logFile` template. Rendering is cached by the values the template uses (for
 * `{date}`, by UTC day), because the sink renders once per batch.
 *
 * @example
 * ```ts
 * const template = new PathTemplate("logs/{source}/{date}.log");
 * template.render({ source: "web", date: Date.parse("2026-11-21T23:54:55Z") });
 * // "logs/web/2026-11-21.log"
 * template.render({ source: "../../etc/passwd", date: 0 });
 * // "logs/____etc_passwd/1970-01-01.log"
 * ```
 */
export class PathTemplate {
  /** The template as given. */
  readonly template: string;
  /** The placeholders the template uses; empty for a plain path. */
  readonly placeholders: ReadonlySet<Placeholder>;
  /** Literal text around the placeholders: `parts[i]` precedes `slots[i]`, the last one ends. */
  readonly #parts: string[];
  readonly #slots: Placeholder[];
  /** The labels the template uses, in the order of their first use. */
  readonly #labels: string[];
  /** The fields the template uses (names without `fields.`), in the order of their first use. */
  readonly #fields: string[];
  /** Whether the template uses `{level}`. */
  readonly #level: boolean;
  /** For each slot, the most UTF-8 bytes its value may render to. */
  readonly #budgets: number[];
  readonly #cacheSize: number;
  readonly #cache = new Map<string, string>();

  /**
   * Parses `template`. Placeholders are `{source}`, `{host}`, `{date}`, `{level}`, a line's
   * fields as `{fields.NAME}` and the labels of `options.labels` (by default syslog's `{app}`,
   * `{facility}` and `{severity}`); any other `{name}` is an error, so a typo does not silently
   * become part of a file name. A template without placeholders is a plain path.
   *
   * @throws {TypeError} naming the first unknown placeholder, or a label name that cannot be one.
   * @throws {RangeError} when an option is out of range.
   */
  constructor(template: string, options: PathTemplateOptions = {}) {
    const { maxValueBytes = 128, cacheSize = 1024, labels = DEFAULT_LABELS } = options;
    checkMaxBytes(maxValueBytes);
    if (!Number.isSafeInteger(cacheSize) || cacheSize < 1) {
      throw new RangeError(`Path cache size must be a positive integer, got ${cacheSize}`);
    }
    for (const label of labels) {
      if (!LABEL_NAME.test(label) || FIXED.has(label)) {
        throw new TypeError(`"${label}" cannot name a label placeholder`);
      }
    }
    const known = new Set([...FIXED, ...labels]);
    const parts: string[] = [];
    const slots: Placeholder[] = [];
    let last = 0;
    for (const match of template.matchAll(/\{([^{}]*)\}/g)) {
      const name = match[1];
      const field = name.startsWith(FIELD_PREFIX) && name.length > FIELD_PREFIX.length;
      if (!known.has(name) && !field) {
        const names = [...known].map((n) => `{${n}}`).join(", ");
        throw new TypeError(
          `Unknown placeholder "{${name}}" in "${template}"; use ${names} or {fields.NAME}`,
        );
      }
      parts.push(template.slice(last, match.index));
      slots.push(name as Placeholder);
      last = match.index + match[0].length;
    }
    parts.push(template.slice(last));
    this.template = template;
    this.placeholders = new Set(slots);
    this.#parts = parts;
    this.#slots = slots;
    const used = [...this.placeholders];
    this.#labels = used.filter((name) => !FIXED.has(name) && !name.startsWith(FIELD_PREFIX));
    this.#fields = used.filter((name) => name.startsWith(FIELD_PREFIX))
      .map((name) => name.slice(FIELD_PREFIX.length));
    this.#level = this.placeholders.has("level");
    this.#budgets = budgets(parts, { slots, maxValueBytes });
    this.#cacheSize = cacheSize;
  }

  /** Whether the template has no placeholders, so every batch goes to the same file. */
  get isPlain(): boolean {
    return this.#slots.length === 0;
  }

  /** The labels the template uses (placeholders other than `source`, `host`, `date`, `level` and fields). */
  get labels(): readonly string[] {
    return this.#labels;
  }

  /** The fields the template uses, by name (`service` for `{fields.service}`). */
  get fields(): readonly string[] {
    return this.#fields;
  }

  /** Whether the template uses `{level}`. */
  get usesLevel(): boolean {
    return this.#level;
  }

  /**
   * Whether lines of one batch may go to different files: the template uses `{level}` or a
   * field. Only then does {@linkcode PathTemplate.linePaths} look at lines.
   */
  get perLine(): boolean {
    return this.#level || this.#fields.length > 0;
  }

  /**
   * The paths of a batch's lines: one string when every line renders the same path (always so
   * for a template that is not {@linkcode PathTemplate.perLine}, or a batch without the columns
   * it uses), else one path per line. A line is rendered only when its level or the fields the
   * template uses differ from the line before, so a batch of one service costs one rendering
   * and a comparison per line.
   */
  linePaths(batch: Batch): string | string[] {
    const { levels, fields } = batch;
    const byLevel = this.#level && levels !== undefined;
    const byFields = this.#fields.length > 0 && fields !== undefined;
    if (!byLevel && !byFields) return this.forBatch(batch);
    const values: TemplateValues = {
      source: batch.meta.source,
      host: batch.meta.host,
      labels: batch.meta.labels,
      date: batch.receivedAt,
    };
    const names = this.#fields;
    let paths: string[] | undefined;
    let previous = "";
    let previousLevel = -1;
    let previousFields: Readonly<Fields> | undefined;
    for (let i = 0; i < batch.lines; i++) {
      const code = byLevel ? levels[i] : 0;
      const own = byFields ? fields[i] : undefined;
      let path = previous;
      if (i === 0 || code !== previousLevel || !sameFields(own, previousFields, names)) {
        values.level = levelOfCode(code);
        values.fields = own;
        path = this.render(values);
        previousLevel = code;
        previousFields = own;
      }
      if (paths !== undefined) paths.push(path);
      else if (i > 0 && path !== previous) {
        paths = new Array<string>(i).fill(previous);
        paths.push(path);
      }
      previous = path;
    }
    return paths ?? previous;
  }

  /** The path of a batch's lines: its meta's values and labels, its receive time's day. */
  forBatch(origin: Pick<Batch, "meta" | "receivedAt">): string {
    const { meta, receivedAt } = origin;
    return this.render({
      source: meta.source,
      host: meta.host,
      labels: meta.labels,
      date: receivedAt,
    });
  }

  /**
   * The path for `values`. `{date}` is the UTC day of `values.date`, which defaults to now.
   *
   * @throws {RangeError} when the template uses `{date}` and `values.date` is an invalid time.
   */
  render(values: TemplateValues = {}): string {
    if (this.#slots.length === 0) return this.template;
    const uses = this.placeholders;
    const source = uses.has("source") ? values.source ?? "" : "";
    const host = uses.has("host") ? values.host ?? "" : "";
    const day = uses.has("date") ? utcDay(values.date) : 0;
    // Length prefixes keep the key unambiguous whatever the values hold.
    let key = `${source.length}:${source}${host.length}:${host}${day}`;
    const labels = this.#labels;
    if (labels.length > 0) {
      for (const name of labels) {
        const value = labelOf(values.labels, name);
        key += `|${value.length}:${value}`;
      }
    }
    const level = this.#level ? values.level ?? "" : "";
    if (this.#level) key += `|${level}`;
    for (const name of this.#fields) {
      const value = fieldOf(values.fields, name);
      key += `|${value.length}:${value}`;
    }
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached;
    const path = this.#build({ source, host, day, labels: values.labels, level, values });
    if (this.#cache.size >= this.#cacheSize) {
      this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.set(key, path);
    return path;
  }

  #build(
    { source, host, day, labels, level, values }: {
      source: string;
      host: string;
      day: number;
      labels: Readonly<Record<string, string>> | undefined;
      level: string;
      values: TemplateValues;
    },
  ): string {
    let path = this.#parts[0];
    for (let i = 0; i < this.#slots.length; i++) {
      const slot = this.#slots[i];
      if (slot === "date") path += new Date(day * DAY_MS).toISOString().slice(0, 10);
      else {
        const value = slot === "source"
          ? source
          : slot === "host"
          ? host
          : slot === "level"
          ? level
          : slot.startsWith(FIELD_PREFIX)
          ? fieldOf(values.fields, slot.slice(FIELD_PREFIX.length))
          : labelOf(labels, slot);
        path += sanitizeValue(value, { maxBytes: this.#budgets[i] });
      }
      path += this.#parts[i + 1];
    }
    return path;
  }
}

/**
 * Shares each path segment's room among its values, so a rendered file or folder name stays
 * within {@linkcode MAX_NAME_BYTES} whenever the template's own text allows it.
 */
function budgets(
  parts: string[],
  { slots, maxValueBytes }: { slots: Placeholder[]; maxValueBytes: number },
): number[] {
  const segmentOf: number[] = [];
  const room: number[] = [MAX_NAME_BYTES];
  const values: number[] = [0];
  const spend = (text: string) => room[room.length - 1] -= encoder.encode(text).length;
  for (let i = 0; i <= slots.length; i++) {
    const pieces = parts[i].split(SEPARATOR);
    spend(pieces[0]);
    for (const piece of pieces.slice(1)) {
      room.push(MAX_NAME_BYTES);
      values.push(0);
      spend(piece);
    }
    if (i === slots.length) break;
    segmentOf.push(room.length - 1);
    if (slots[i] === "date") spend("YYYY-MM-DD");
    else values[room.length - 1]++;
  }
  return slots.map((_, i) => {
    const segment = segmentOf[i];
    const share = Math.floor(room[segment] / values[segment]);
    return Math.max(MIN_VALUE_BYTES, Math.min(maxValueBytes, share));
  });
}

/** A label's value; empty when the batch has no such label (own string property). */
function labelOf(labels: Readonly<Record<string, string>> | undefined, name: string): string {
  if (labels === undefined || !Object.hasOwn(labels, name)) return "";
  const value = labels[name];
  return typeof value === "string" ? value : "";
}

/** A field's value as text; empty when the line has no such field (own property). */
function fieldOf(fields: Readonly<Fields> | undefined, name: string): string {
  if (fields === undefined || !Object.hasOwn(fields, name)) return "";
  const value: FieldValue | undefined = fields[name];
  switch (typeof value) {
    case "string":
      return value;
    case "number":
    case "boolean":
      return String(value);
    default:
      return "";
  }
}

/** Whether two lines' fields hold the same values for `names` (the same object, at once). */
function sameFields(
  a: Readonly<Fields> | undefined,
  b: Readonly<Fields> | undefined,
  names: readonly string[],
): boolean {
  if (a === b) return true;
  for (const name of names) if (fieldOf(a, name) !== fieldOf(b, name)) return false;
  return true;
}

function utcDay(date: Date | number = Date.now()): number {
  const ms = typeof date === "number" ? date : date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError(`Cannot fill {date} from an invalid time`);
  return Math.floor(ms / DAY_MS);
}

function checkMaxBytes(maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < MIN_VALUE_BYTES) {
    throw new RangeError(`Longest value must be an integer of at least 16 bytes, got ${maxBytes}`);
  }
}

/** The longest start of `text` within `maxBytes` UTF-8 bytes, never splitting a character. */
function truncate(text: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const code = char.codePointAt(0)!;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return text.slice(0, end);
}

/** FNV-1a over UTF-16 code units, as 8 hex digits: short, stable, and enough to tell names apart. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}
