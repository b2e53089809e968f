/**
 * The `parse` step: fields out of each line's text (or out of a field), as JSON, logfmt, a regex
 * with named groups, a dissect pattern, or syslog. A line that does not parse is kept with the
 * field `_parse_error` (`on_error: keep`, the default) or dropped (`drop`); either way it counts
 * as an error of the step.
 *
 * @module
 */

import { type Fields, levelCode } from "../../pipeline/record.ts";
import { DepthError, flattenJson, normalizeLevel, setField } from "../../protocols/fields.ts";
import { facilityName, type ParsedSyslog, severityName, SyslogParser } from "../../syslog/parse.ts";
import { compileCapture } from "../capture.ts";
import { compileDissect } from "../dissect.ts";
import { parseLogfmt } from "../logfmt.ts";
import { nextBackslash, pickJson, RecentStrings } from "../json_pick.ts";
import {
  atKey,
  defineStep,
  type FieldNeeds,
  needsWith,
  PARSE_ERROR_FIELD,
  type Step,
  StepKeyError,
} from "../step.ts";
import type { Work } from "../work.ts";

const FORMATS = ["json", "logfmt", "regex", "dissect", "syslog"] as const;
const encoder = new TextEncoder();

/** Reads one text into fields; returns why it does not parse, or `undefined`. */
type Reader = (text: string, fields: Fields) => string | undefined;

/** The `parse` step. */
export const parseStep = defineStep({
  type: "parse",
  doc: "Fields out of each line (or out of a field): json (nested keys flattened as a.b), " +
    "logfmt, regex (named groups), dissect (%{key} between literal text) or syslog (RFC 5424 " +
    "and 3164: facility, severity, host, app, procid, msgid, message, sd.<id>.<name>; also the " +
    "line's level and time)",
  keys: {
    format: {
      type: "choice",
      choices: FORMATS,
      required: true,
      doc: "json, logfmt, regex, dissect or syslog",
    },
    pattern: {
      type: "string",
      nonEmpty: true,
      doc: 'regex: a regex with named groups, "(?<status>\\\\d{3})"; dissect: a pattern such as ' +
        '"%{ip} [%{ts}] \\"%{method} %{path}\\""',
    },
    field: {
      type: "string",
      nonEmpty: true,
      doc: "Parse this field's value instead of the line's text (e.g. a JSON message inside " +
        "logfmt)",
    },
    on_error: {
      type: "choice",
      choices: ["keep", "drop"],
      default: "keep",
      doc: "A line that does not parse: keep it, with the field `_parse_error` (`<format>: " +
        "<why>`), or drop it",
    },
  },
  compile(values) {
    const { format, pattern, field } = values;
    const needsPattern = format === "regex" || format === "dissect";
    if (needsPattern && pattern === undefined) {
      throw new StepKeyError("pattern", `is required with format ${format}`);
    }
    if (!needsPattern && pattern !== undefined) {
      throw new StepKeyError("pattern", `is for format regex or dissect, not ${format}`);
    }
    const drop = values.on_error === "drop";
    if (format === "syslog") return new SyslogStep(field, drop);
    if (format === "json") return new JsonStep(field, drop);
    let read: Reader;
    switch (format) {
      case "logfmt":
        read = (text, fields) => parseLogfmt(text, fields) < 0 ? "not logfmt" : undefined;
        break;
      case "regex": {
        const capture = atKey("pattern", () => compileCapture(pattern!));
        read = (text, fields) => capture.apply(text, fields) ? undefined : "no match";
        break;
      }
      default: {
        const dissect = atKey("pattern", () => compileDissect(pattern!));
        read = (text, fields) => dissect.apply(text, fields) ? undefined : "no match";
      }
    }
    return new TextParseStep(format, read, field, drop);
  },
});

/**
 * `parse: json`. When only some fields are read after the step (by the steps after it, the sinks
 * and the live tails: `Work.wanted`), each line gives only those ({@linkcode pickJson}, 2-3 times
 * cheaper), unless the step drops lines that do not parse or something reads the parse-error
 * mark: then every line is parsed whole, so that only lines `JSON.parse` takes are kept. Else a
 * batch whose lines are all JSON is parsed by one `JSON.parse` of them as an
 * array (a third cheaper than one call per line, measured on 100-byte lines); when that fails or
 * does not give one value per line, each line is parsed alone. (Lines that are each valid JSON
 * give exactly one value each; a crafted batch of invalid lines that still parses with the right
 * count can only mislabel its own lines' fields: the bytes are never touched.) An object whose
 * values are all strings, numbers and booleans becomes the line's fields as it is; nested ones
 * are flattened into dotted keys.
 */
class JsonStep implements Step {
  /** The names wanted last, as a list. */
  #wanted: { names: ReadonlySet<string>; list: string[] } | undefined;
  readonly #strings = new RecentStrings();

  constructor(readonly field: string | undefined, readonly drop: boolean) {}

  needs(after: FieldNeeds): FieldNeeds {
    return withSource(after, this.field);
  }

  run(work: Work): void {
    const wanted = work.wanted;
    if (
      wanted !== "all" && this.field === undefined && !this.drop && !work.hasFields &&
      !wanted.has(PARSE_ERROR_FIELD)
    ) {
      this.#pick(work, wanted);
      return;
    }
    if (this.field === undefined && work.live === work.lines) {
      const values = parseAll(work);
      if (values !== undefined) {
        // The common case: objects of plain values, lines without fields: the array is the
        // column.
        if (!work.hasFields && allFlatObjects(values)) {
          work.adoptFields(values as Fields[]);
          return;
        }
        for (let i = 0; i < work.lines; i++) this.#take(work, i, values[i]);
        return;
      }
    }
    for (let i = 0; i < work.lines; i++) {
      if (!work.isLive(i)) continue;
      const text = source(work, i, this.field);
      if (text === undefined) {
        failed(work, i, "json", `no field ${this.field}`, this.drop);
        continue;
      }
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        failed(work, i, "json", "not JSON", this.drop);
        continue;
      }
      this.#take(work, i, value);
    }
  }

  /** Gives each line, which had no fields, the fields of `names` it has. */
  #pick(work: Work, names: ReadonlySet<string>): void {
    if (this.#wanted?.names !== names) this.#wanted = { names, list: [...names] };
    const list = this.#wanted.list;
    const text = work.decoded();
    // With one character per byte (ASCII), the lines' byte ends are their text's, found once
    // for this step and the compaction after it.
    const ascii = text.length === work.data.length;
    let start = 0;
    // Used again after a line that had none of the names (left empty).
    let fields: Fields = {};
    let backslash = -1;
    for (let i = 0; i < work.lines; i++) {
      const end = ascii ? work.end(i) : text.indexOf("\n", start);
      if (work.isLive(i)) {
        if (backslash < start) backslash = nextBackslash(text, start);
        const picked = pickJson(text, start, end, list, fields, backslash, this.#strings);
        if (picked !== "none") {
          if (picked === "done") work.setFields(i, fields);
          fields = {};
        }
        if (picked === "whole") {
          let value: unknown;
          try {
            value = JSON.parse(text.slice(start, end));
          } catch {
            failed(work, i, "json", "not JSON", false);
            start = end + 1;
            continue;
          }
          this.#take(work, i, value);
        } else if (picked === "not-json") failed(work, i, "json", "not JSON", false);
      }
      start = end + 1;
    }
  }

  /** Makes `value`, parsed from line `i`, the line's fields (with those it had). */
  #take(work: Work, i: number, value: unknown): void {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      failed(work, i, "json", "not a JSON object", this.drop);
      return;
    }
    const had = work.fields(i) !== undefined;
    if (!had && isFlat(value)) {
      work.setFields(i, value as Fields);
      return;
    }
    const fields: Fields = {};
    try {
      flattenJson(fields, "", value);
    } catch (err) {
      if (!(err instanceof DepthError)) throw err;
      failed(work, i, "json", err.message, this.drop);
      return;
    }
    if (had) Object.assign(work.ownFields(i), fields);
    else work.setFields(i, fields);
  }
}

/** Every line of `work` parsed as one JSON array, or `undefined` when that does not work out. */
function parseAll(work: Work): unknown[] | undefined {
  const text = work.decoded();
  if (text.charCodeAt(0) !== 0x7b) return undefined; // not a JSON object: not worth a try
  let values: unknown;
  try {
    values = JSON.parse("[" + text.slice(0, -1).replaceAll("\n", ",") + "]");
  } catch {
    return undefined;
  }
  return Array.isArray(values) && values.length === work.lines ? values : undefined;
}

/** Whether every value is an object whose values are all plain (see {@linkcode isFlat}). */
function allFlatObjects(values: unknown[]): boolean {
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value !== "object" || value === null || Array.isArray(value) || !isFlat(value)) {
      return false;
    }
  }
  return true;
}

/** Whether every value of `object` is a string, number or boolean: fields as they are. */
function isFlat(object: object): boolean {
  for (const key in object) {
    const type = typeof (object as Record<string, unknown>)[key];
    if (type !== "string" && type !== "number" && type !== "boolean") return false;
  }
  return true;
}

/** What a parse reads before it: what is read after it, and the field it parses, if any. */
function withSource(after: FieldNeeds, field: string | undefined): FieldNeeds {
  return field === undefined ? after : needsWith(after, [field]);
}

/** The text a parse reads on line `i`: the line's, or a field's value (`undefined`: none). */
function source(work: Work, i: number, field: string | undefined): string | undefined {
  if (field === undefined) return work.text(i);
  const fields = work.fields(i);
  if (fields === undefined || !Object.hasOwn(fields, field)) return undefined;
  return String(fields[field]);
}

/** A line that does not parse: marked or dropped, and counted. */
function failed(work: Work, i: number, format: string, why: string, drop: boolean): void {
  work.errors++;
  if (drop) work.drop(i);
  else work.ownFields(i)[PARSE_ERROR_FIELD] = `${format}: ${why}`;
}

class TextParseStep implements Step {
  constructor(
    readonly format: string,
    readonly read: Reader,
    readonly field: string | undefined,
    readonly drop: boolean,
  ) {}

  needs(after: FieldNeeds): FieldNeeds {
    return withSource(after, this.field);
  }

  run(work: Work): void {
    const { format, read, field, drop } = this;
    for (let i = 0; i < work.lines; i++) {
      if (!work.isLive(i)) continue;
      const text = source(work, i, field);
      if (text === undefined) {
        failed(work, i, format, `no field ${field}`, drop);
        continue;
      }
      if (work.fields(i) === undefined) {
        // The common case, a line without fields: one new object, no copy.
        const fields: Fields = {};
        const why = read(text, fields);
        if (why === undefined) work.setFields(i, fields);
        else failed(work, i, format, why, drop);
        continue;
      }
      const fields: Fields = {};
      const why = read(text, fields);
      if (why !== undefined) failed(work, i, format, why, drop);
      else Object.assign(work.ownFields(i), fields);
    }
  }
}

class SyslogStep implements Step {
  readonly #parser = new SyslogParser();

  constructor(readonly field: string | undefined, readonly drop: boolean) {}

  needs(after: FieldNeeds): FieldNeeds {
    return withSource(after, this.field);
  }

  run(work: Work): void {
    const now = work.input.receivedAt;
    for (let i = 0; i < work.lines; i++) {
      if (!work.isLive(i)) continue;
      let msg: ParsedSyslog;
      if (this.field === undefined) {
        msg = this.#parser.parse(work.data, work.start(i), work.end(i), now);
      } else {
        const text = source(work, i, this.field);
        if (text === undefined) {
          failed(work, i, "syslog", `no field ${this.field}`, this.drop);
          continue;
        }
        const bytes = encoder.encode(text);
        msg = this.#parser.parse(bytes, 0, bytes.length, now);
      }
      if (msg.format === "unparsed") {
        failed(work, i, "syslog", "not RFC 5424 nor RFC 3164", this.drop);
        continue;
      }
      syslogFields(work.ownFields(i), msg);
      const levels = work.writeLevels();
      if (levels[i] === 0) levels[i] = levelCode(normalizeLevel(msg.severity));
      if (msg.time !== undefined) {
        const times = work.writeTimes();
        if (Number.isNaN(times[i])) times[i] = msg.time;
      }
    }
  }
}

function syslogFields(fields: Fields, msg: ParsedSyslog): void {
  fields.facility = facilityName(msg.facility);
  fields.severity = severityName(msg.severity);
  if (msg.host !== undefined) fields.host = msg.host;
  if (msg.app !== undefined) fields.app = msg.app;
  if (msg.procid !== undefined) fields.procid = msg.procid;
  if (msg.msgid !== undefined) fields.msgid = msg.msgid;
  for (const element of msg.structuredData) {
    for (const [name, value] of element.params) setField(fields, `sd.${element.id}.${name}`, value);
  }
  fields.message = msg.message;
}
