/**
 * Config keys in one place: a component declares a table with one row per key (its type,
 * default, bounds and one line of doc, Fluent Bit's `config_map`), and that table alone drives
 * reading a config file's section (every problem reported with its key path, unknown keys
 * included), the values' TypeScript type, and the generated reference page.
 *
 * ```ts
 * const KEYS = {
 *   address: { type: "address", default: "0.0.0.0:8080", doc: "Where to listen" },
 *   max_line: { type: "size", default: "1MiB", min: 1, doc: "Longer lines are split" },
 * } as const satisfies KeyTable;
 * const problems = new Problems();
 * const values = readKeys(KEYS, { max_line: "64KiB" }, "inputs.tcp", problems);
 * values.max_line; // 65536, a number: Values<typeof KEYS> says so
 * ```
 *
 * Durations are read in milliseconds and sizes in bytes, with the parsers of `units.ts`; a
 * duration or size default is written as people write it (`"1h"`, `"64MiB"`), so the reference
 * page shows it that way.
 *
 * @module
 */

import { isAbsolute, join } from "node:path";
import { type HostPort, parseDuration, parseHostPort, parseSize } from "../units.ts";

interface KeyBase {
  /** One line on what the key does, for the reference page. */
  doc: string;
  /** The `serve` flags that set it, without their dash, for the reference page and hints. */
  flag?: string | readonly string[];
  /** Whether a config must give it (a key with a default never needs to). */
  required?: boolean;
}

/** Text. `path` ones are taken from the config file's folder when relative. */
export interface StringKey extends KeyBase {
  type: "string";
  default?: string;
  /** A file or folder: relative ones are read from the config file's folder. */
  path?: boolean;
  /** Refuses the empty string. */
  nonEmpty?: boolean;
  /** What is wrong with a value, or `undefined`. */
  check?: (value: string) => string | undefined;
}

/** `true` or `false`. */
export interface BoolKey extends KeyBase {
  type: "bool";
  default?: boolean;
}

/** A whole number. */
export interface CountKey extends KeyBase {
  type: "count";
  default?: number;
  /** Least value. Default 0. */
  min?: number;
  /** Largest value. Default `Number.MAX_SAFE_INTEGER`. */
  max?: number;
}

/** A size in bytes, a number or a string with a binary unit (`"64MiB"`). */
export interface SizeKey extends KeyBase {
  type: "size";
  /** As written, e.g. `"1MiB"`. */
  default?: string;
  /** Least value in bytes. Default 1. */
  min?: number;
  /** Largest value in bytes. */
  max?: number;
}

/** A duration, written with units (`"30s"`, `"1h30m"`, `"7d"`), read in milliseconds. */
export interface DurationKey extends KeyBase {
  type: "duration";
  /** As written, e.g. `"10s"`. */
  default?: string;
  /** Least value in ms. Default 1 (a duration above zero). */
  min?: number;
}

/** One of a few words. */
export interface ChoiceKey extends KeyBase {
  type: "choice";
  choices: readonly string[];
  default?: string;
}

/** `host:port`, `[v6]:port` or `:port`; with `off`, the word `off` too (read as `undefined`). */
export interface AddressKey extends KeyBase {
  type: "address";
  /** As written, e.g. `"127.0.0.1:8081"` or `"off"`. */
  default?: string;
  /** Whether `off` is allowed: the component is then not run. */
  off?: boolean;
}

/** A list of strings. */
export interface ListKey extends KeyBase {
  type: "list";
  default?: readonly string[];
  /** Fewest items. Default 0. */
  minItems?: number;
  /** Items are files or globs: relative ones are read from the config file's folder. */
  path?: boolean;
  /** What is wrong with an item, or `undefined`. */
  check?: (item: string) => string | undefined;
}

/** One row of a key table. */
export type KeySpec =
  | StringKey
  | BoolKey
  | CountKey
  | SizeKey
  | DurationKey
  | ChoiceKey
  | AddressKey
  | ListKey;

/** A component's keys, by name as written in a config file (snake_case). */
export type KeyTable = Readonly<Record<string, KeySpec>>;

/** The value a key is read as. */
export type ValueOf<S extends KeySpec> = S extends { type: "string" } ? string
  : S extends { type: "bool" } ? boolean
  : S extends { type: "count" | "size" | "duration" } ? number
  : S extends { type: "choice"; choices: readonly (infer C)[] } ? C
  : S extends { type: "address"; off: true } ? HostPort | undefined
  : S extends { type: "address" } ? HostPort
  : S extends { type: "list" } ? string[]
  : never;

/** Any key's value. */
export type Value = ValueOf<KeySpec> | undefined;

/** The values of a table's keys: a key without a default or `required` may be `undefined`. */
export type Values<T extends KeyTable> = {
  -readonly [K in keyof T]: T[K] extends { default: unknown } | { required: true } ? ValueOf<T[K]>
    : ValueOf<T[K]> | undefined;
};

/** One thing wrong with a config, at a key path such as `inputs.tcp.max_line`. */
export interface Problem {
  /** The key at fault; `""` for the file as a whole. */
  readonly path: string;
  /** What is wrong, in a few words. */
  readonly message: string;
}

/** Collects every problem of a config, so all are reported at once. */
export class Problems {
  readonly #list: Problem[] = [];

  /** Records that the key at `path` is wrong. */
  add(path: string, message: string): void {
    this.#list.push({ path, message });
  }

  /** Whether nothing was recorded. */
  get empty(): boolean {
    return this.#list.length === 0;
  }

  /** Every problem, in the order found. */
  get list(): readonly Problem[] {
    return this.#list;
  }
}

/** `path: message`, or the message alone for the file as a whole. */
export function formatProblem(problem: Problem): string {
  return problem.path === "" ? problem.message : `${problem.path}: ${problem.message}`;
}

/** The path of `key` under `at`: `inputs.tcp` + `address` is `inputs.tcp.address`. */
export function keyPath(at: string, key: string): string {
  return at === "" ? key : `${at}.${key}`;
}

/** Options of {@linkcode readKeys}. */
export interface ReadOptions {
  /** Keys the caller reads itself (e.g. `type`): not reported as unknown. */
  ignore?: readonly string[];
  /** The config file's folder, for relative `path` keys. Default: left as written. */
  base?: string;
}

/**
 * Reads the section `doc` (found at key path `at`) against `table`: each value checked and
 * converted, defaults filled in, every problem (unknown keys included) added to `problems`. A key
 * with a problem is left at its default, or `undefined`, so the caller can go on checking; the
 * values are only to be used when `problems` stayed empty.
 */
export function readKeys<T extends KeyTable>(
  table: T,
  doc: Record<string, unknown>,
  at: string,
  problems: Problems,
  options: ReadOptions = {},
): Values<T> {
  const { ignore = [], base } = options;
  const values: Record<string, Value> = {};
  for (const name of Object.keys(doc)) {
    if (Object.hasOwn(table, name) || ignore.includes(name)) continue;
    const near = nearest(name, Object.keys(table));
    problems.add(
      keyPath(at, name),
      near === undefined
        ? `unknown key (known: ${Object.keys(table).join(", ")})`
        : `unknown key; did you mean "${near}"?`,
    );
  }
  for (const [name, spec] of Object.entries(table)) {
    const path = keyPath(at, name);
    const raw = Object.hasOwn(doc, name) ? doc[name] : undefined;
    if (raw === undefined || raw === null) {
      if (spec.required && spec.default === undefined) problems.add(path, "is required");
      values[name] = defaultValue(spec);
      continue;
    }
    const read = readValue(spec, raw);
    if (read instanceof Wrong) {
      problems.add(path, read.problem);
      values[name] = defaultValue(spec);
      continue;
    }
    values[name] = base === undefined ? read : inFolder(spec, read, base);
  }
  return values as Values<T>;
}

/** The values of `table` when a config says nothing: its defaults. */
export function defaultValues<T extends KeyTable>(table: T): Values<T> {
  const values: Record<string, Value> = {};
  for (const [name, spec] of Object.entries(table)) values[name] = defaultValue(spec);
  return values as Values<T>;
}

/** A key's default, read as a value would be; `undefined` when it has none. */
export function defaultValue(spec: KeySpec): Value {
  if (spec.default === undefined) return undefined;
  const read = readValue(spec, spec.default);
  if (read instanceof Wrong) {
    throw new TypeError(`A key table's default ${show(spec.default)} ${read.problem}`);
  }
  return read;
}

/** What is wrong with a value. */
class Wrong {
  constructor(readonly problem: string) {}
}

type Read = Value | Wrong;

/** Reads one value; a {@linkcode Wrong} when it is wrong. */
function readValue(spec: KeySpec, raw: unknown): Read {
  switch (spec.type) {
    case "string": {
      if (typeof raw !== "string") return new Wrong(`must be a string, got ${show(raw)}`);
      if (spec.nonEmpty && raw.trim() === "") return new Wrong("must not be empty");
      const wrong = spec.check?.(raw);
      return wrong === undefined ? raw : new Wrong(wrong);
    }
    case "bool":
      return typeof raw === "boolean" ? raw : new Wrong(`must be true or false, got ${show(raw)}`);
    case "count": {
      const { min = 0, max = Number.MAX_SAFE_INTEGER } = spec;
      const ok = typeof raw === "number" && Number.isSafeInteger(raw) && raw >= min && raw <= max;
      const range = max === Number.MAX_SAFE_INTEGER
        ? `of at least ${min}`
        : `from ${min} to ${max}`;
      return ok ? raw : new Wrong(`must be a whole number ${range}, got ${show(raw)}`);
    }
    case "size":
      return readSize(spec, raw);
    case "duration":
      return readDuration(spec, raw);
    case "choice":
      return typeof raw === "string" && spec.choices.includes(raw)
        ? raw
        : new Wrong(`must be one of ${spec.choices.join(", ")}, got ${show(raw)}`);
    case "address":
      return readAddress(spec, raw);
    case "list":
      return readList(spec, raw);
  }
}

function readSize(spec: SizeKey, raw: unknown): Read {
  const { min = 1, max = Number.MAX_SAFE_INTEGER } = spec;
  let bytes = NaN;
  if (typeof raw === "number") bytes = raw;
  else if (typeof raw === "string") {
    try {
      bytes = parseSize(raw);
    } catch {
      // Reported below.
    }
  }
  if (Number.isSafeInteger(bytes) && bytes >= min && bytes <= max) return bytes;
  const range = max !== Number.MAX_SAFE_INTEGER
    ? ` from ${min} to ${max} bytes`
    : min === 1
    ? " above zero"
    : ` of at least ${min} bytes`;
  return new Wrong(`must be a size${range} such as 1048576 or "1MiB", got ${show(raw)}`);
}

function readDuration(spec: DurationKey, raw: unknown): Read {
  const { min = 1 } = spec;
  let ms = NaN;
  if (typeof raw === "string") {
    try {
      ms = parseDuration(raw);
    } catch {
      // Reported below.
    }
  } else if (raw === 0) ms = 0;
  if (ms >= min) return ms;
  const least = min === 0 ? "" : min === 1 ? " above zero" : ` of at least ${min} ms`;
  return new Wrong(`must be a duration${least} such as "30s", "15m" or "7d", got ${show(raw)}`);
}

function readAddress(spec: AddressKey, raw: unknown): Read {
  if (spec.off && raw === "off") return undefined;
  const expected = `host:port such as "127.0.0.1:8081"${spec.off ? ", or off" : ""}`;
  if (typeof raw !== "string") return new Wrong(`must be ${expected}, got ${show(raw)}`);
  try {
    return parseHostPort(raw);
  } catch {
    return new Wrong(`must be ${expected} (port 1-65535), got ${show(raw)}`);
  }
}

function readList(spec: ListKey, raw: unknown): Read {
  if (!Array.isArray(raw)) return new Wrong(`must be a list, got ${show(raw)}`);
  const { minItems = 0 } = spec;
  if (raw.length < minItems) return new Wrong(`needs at least ${minItems} items`);
  const items: string[] = [];
  for (const [i, item] of raw.entries()) {
    if (typeof item !== "string" || item.trim() === "") {
      return new Wrong(`item ${i} must be a non-empty string, got ${show(item)}`);
    }
    const wrong = spec.check?.(item);
    if (wrong !== undefined) return new Wrong(`item ${i} ${wrong}`);
    items.push(item);
  }
  return items;
}

/** A relative `path` key's value, taken from `base`. */
function inFolder(spec: KeySpec, value: Value, base: string): Value {
  if (!("path" in spec) || !spec.path) return value;
  const place = (p: string) => isAbsolute(p) ? p : join(base, p);
  if (typeof value === "string") return place(value);
  if (Array.isArray(value)) return value.map(place);
  return value;
}

/** A value quoted for a message, cut at 60 characters. */
export function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? text.slice(0, 57) + "..." : text;
}

/** The known name `name` is most likely a typo of (at most two edits away), if any. */
export function nearest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      next.push(Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + cost));
    }
    row = next;
  }
  return row[b.length];
}

/** The flags that set a key, without their dash. */
export function flagsOf(spec: KeySpec): readonly string[] {
  return spec.flag === undefined ? [] : typeof spec.flag === "string" ? [spec.flag] : spec.flag;
}

/** The type of a key as the reference page names it. */
export function typeName(spec: KeySpec): string {
  switch (spec.type) {
    case "choice":
      return spec.choices.join(" \\| ");
    case "address":
      return spec.off ? "host:port \\| off" : "host:port";
    case "list":
      return "list of strings";
    case "count":
      return "whole number";
    default:
      return spec.type;
  }
}

/** A key's bounds as the reference page shows them, or `""`. */
export function boundsText(spec: KeySpec): string {
  switch (spec.type) {
    case "count": {
      const { min = 0, max } = spec;
      return max === undefined ? `>= ${min}` : `${min}-${max}`;
    }
    case "size":
      return spec.max === undefined ? `>= ${spec.min ?? 1} B` : `${spec.min ?? 1}-${spec.max} B`;
    case "duration":
      return (spec.min ?? 1) === 1 ? "> 0" : `>= ${spec.min} ms`;
    case "list":
      return spec.minItems ? `>= ${spec.minItems} items` : "";
    default:
      return "";
  }
}

/** A key's default as written in a config file, or `""` for none. */
export function defaultText(spec: KeySpec): string {
  if (spec.default === undefined) return spec.required ? "(required)" : "";
  if (Array.isArray(spec.default)) return JSON.stringify(spec.default);
  return typeof spec.default === "string" ? JSON.stringify(spec.default) : String(spec.default);
}
