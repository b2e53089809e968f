/**
 * A hand-written syslog parser for RFC 5424 and tolerant RFC 3164: a cursor over the bytes, no
 * regular expression, nothing decoded unless asked. {@linkcode SyslogParser.parse} fills one
 * reused {@linkcode ParsedSyslog} whose numbers (PRI, time, where MSG starts) are read eagerly and
 * whose strings (host, app, PROCID, MSGID, structured data, MSG) are decoded when first read; so a
 * caller that needs the host and the severity pays for those only. It never throws: what does
 * not parse has the format `unparsed`.
 *
 * RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`, where each header field
 * may be the NILVALUE `-` (then it is undefined), TIMESTAMP is RFC 3339 with optional fractional
 * seconds (kept to the millisecond) and a required offset (`Z` or `+hh:mm`), SD is `-` or one or
 * more `[ID name="value" ...]` elements whose values may hold `\"`, `\\` and `\]`, and a UTF-8 BOM
 * at the start of MSG is skipped. Field lengths are not enforced; a field is any run of bytes up
 * to a space.
 *
 * RFC 3164, as real senders write it: `<PRI>TIMESTAMP [HOST] [TAG[PID][:]] MSG`.
 *
 * - TIMESTAMP is `Mmm dd hh:mm:ss` (day space-padded `Nov  3`, or `Nov 3`, or `Nov 03`; an
 *   optional `.fraction` after the seconds; an optional year `Mmm dd yyyy hh:mm:ss`), or an RFC
 *   3339 time as rsyslog's `RSYSLOG_ForwardFormat` writes it (offset optional).
 * - A date without a year takes the year that puts it nearest to the receive time `now`: a Dec
 *   31 line received on Jan 1 is last year's, a Jan 1 line received on Dec 31 is next year's.
 * - A time without an offset is read in the parser's `timeZone`: UTC unless configured.
 * - HOST: the word after the time is the host when another word follows it and it neither ends
 *   with `:` nor contains `[` (those are tags). So `vm app: msg` has the host `vm`, `app: msg`
 *   and `app[12]: msg` have none. A message without a host whose tag has no colon
 *   (`app msg`) is read as host `app`: the bytes cannot tell.
 * - TAG: the word after the host up to `:`, `[` or a space, at most 64 bytes, when something
 *   follows it: `app:`, `app[pid]:`, `app[pid]` and `app` (rsyslog takes a tag without colon
 *   too). A lone last word is the message, not a tag. One space after the tag is skipped.
 *
 * Anything else (no PRI, PRI above 191, a bad time, a malformed 5424 header or SD) is
 * `unparsed`: facility and severity from the PRI when there is one (else user.notice, 1 and 5),
 * no time (the input uses the receive time), and MSG from after the PRI (or the whole line).
 *
 * @module
 */

/** Which syntax a message was read as. */
export type SyslogFormat = "rfc5424" | "rfc3164" | "unparsed";

/** One structured-data element of RFC 5424, values unescaped. */
export interface SdElement {
  /** The SD-ID, e.g. `timeQuality` or `meta@32473`. */
  id: string;
  /** Its parameters in order, as `[name, value]`. */
  params: [string, string][];
}

/** The parts of one syslog message. */
export interface SyslogMessage {
  /** Which syntax the message was read as. */
  format: SyslogFormat;
  /** 0-23 (see {@linkcode FACILITY_NAMES}); 1 (user) when there was no PRI. */
  facility: number;
  /** 0-7 (see {@linkcode SEVERITY_NAMES}); 5 (notice) when there was no PRI. */
  severity: number;
  /** When the message was written, in ms since the epoch; undefined when not given or unparsed. */
  time: number | undefined;
  /** The HOSTNAME; undefined when absent or `-`. */
  host: string | undefined;
  /** The APP-NAME (5424) or TAG (3164); undefined when absent or `-`. */
  app: string | undefined;
  /** The PROCID (5424) or the PID in `TAG[PID]` (3164); any text. */
  procid: string | undefined;
  /** The MSGID (5424 only). */
  msgid: string | undefined;
  /** The structured-data elements (5424 only); empty when none. */
  structuredData: SdElement[];
  /** Offset of MSG in the bytes parsed (after a BOM); the end when MSG is empty. */
  msgStart: number;
}

/** Options of {@linkcode SyslogParser}. */
export interface SyslogParserOptions {
  /**
   * The zone of times written without an offset (RFC 3164 dates): `"UTC"` (the default),
   * `"local"` (the zone of the logboom process), or a fixed offset in minutes east of UTC
   * (`60` for UTC+01:00).
   */
  timeZone?: "UTC" | "local" | number;
}

/** Severity names by number, as rsyslog's `syslogseverity-text` writes them. */
export const SEVERITY_NAMES: readonly string[] = Object.freeze([
  "emerg",
  "alert",
  "crit",
  "err",
  "warning",
  "notice",
  "info",
  "debug",
]);

/** Facility names by number, as rsyslog's `syslogfacility-text` writes them. */
export const FACILITY_NAMES: readonly string[] = Object.freeze([
  "kern",
  "user",
  "mail",
  "daemon",
  "auth",
  "syslog",
  "lpr",
  "news",
  "uucp",
  "cron",
  "authpriv",
  "ftp",
  "ntp",
  "audit",
  "alert",
  "clock",
  "local0",
  "local1",
  "local2",
  "local3",
  "local4",
  "local5",
  "local6",
  "local7",
]);

const SP = 32;
const LT = 0x3c;
const GT = 0x3e;
const COLON = 0x3a;
const DASH = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const EQUALS = 0x3d;
const ZERO = 0x30;
const MAX_TAG = 64;
const DAY_MS = 86_400_000;
/** Beyond this distance from now, the neighbouring years of a 3164 date are tried too. */
const YEAR_CHECK_MS = 150 * DAY_MS;

const YEAR_DELTAS = [0, -1, 1];
/** The month names, lower case, three bytes in one number. */
const MONTH_KEYS = "jan feb mar apr may jun jul aug sep oct nov dec".split(" ").map((m) =>
  (m.charCodeAt(0) << 16) | (m.charCodeAt(1) << 8) | m.charCodeAt(2)
);

/**
 * The parts of the last message a {@linkcode SyslogParser} parsed. Borrowed: the parser reuses
 * this object, and its string getters read the bytes given to `parse`, so read what you need
 * before the next parse or before those bytes change (or copy with {@linkcode toJSON}).
 */
export class ParsedSyslog implements SyslogMessage {
  format: SyslogFormat = "unparsed";
  facility = 1;
  severity = 5;
  time: number | undefined = undefined;
  msgStart = 0;
  /** End of the message in the bytes parsed (exclusive). */
  end = 0;
  /** Offsets of the fields, -1 when absent: host, app, procid, msgid, SD, each [start, end). */
  readonly ranges: Int32Array = new Int32Array(10).fill(-1);
  /** @internal */
  bytes: Uint8Array = new Uint8Array(0);
  readonly #interner: Interner;
  #sd: SdElement[] | undefined;

  /** @internal use {@linkcode SyslogParser}. */
  constructor(interner: Interner) {
    this.#interner = interner;
  }

  /** The HOSTNAME; undefined when absent or `-`. */
  get host(): string | undefined {
    return this.#field(0);
  }

  /** The APP-NAME or TAG; undefined when absent or `-`. */
  get app(): string | undefined {
    return this.#field(2);
  }

  /** The PROCID or PID. */
  get procid(): string | undefined {
    return this.#field(4);
  }

  /** The MSGID (5424 only). */
  get msgid(): string | undefined {
    return this.#field(6);
  }

  /** The structured-data elements (5424 only); empty when none. Decoded on first read. */
  get structuredData(): SdElement[] {
    if (this.#sd === undefined) {
      const from = this.ranges[8];
      this.#sd = from < 0 ? [] : decodeSd(this.bytes, from, this.ranges[9]);
    }
    return this.#sd;
  }

  /** MSG decoded as UTF-8 (invalid bytes become U+FFFD). */
  get message(): string {
    return utf8.decode(this.bytes.subarray(this.msgStart, this.end));
  }

  /** The facility's name, e.g. `local0`. */
  get facilityName(): string {
    return FACILITY_NAMES[this.facility];
  }

  /** The severity's name, e.g. `err`. */
  get severityName(): string {
    return SEVERITY_NAMES[this.severity];
  }

  /** A plain copy of the parts, which stays valid after the next parse. */
  toJSON(): SyslogMessage {
    return {
      format: this.format,
      facility: this.facility,
      severity: this.severity,
      time: this.time,
      host: this.host,
      app: this.app,
      procid: this.procid,
      msgid: this.msgid,
      structuredData: this.structuredData,
      msgStart: this.msgStart,
    };
  }

  /** @internal starts a new message. */
  reset(bytes: Uint8Array, start: number, end: number): void {
    this.bytes = bytes;
    this.end = end;
    this.format = "unparsed";
    this.facility = 1;
    this.severity = 5;
    this.time = undefined;
    this.msgStart = start;
    const ranges = this.ranges;
    for (let i = 0; i < 10; i++) ranges[i] = -1;
    this.#sd = undefined;
  }

  #field(i: number): string | undefined {
    const from = this.ranges[i];
    return from < 0 ? undefined : this.#interner.get(this.bytes, from, this.ranges[i + 1]);
  }
}

/**
 * Parses syslog messages into one reused {@linkcode ParsedSyslog}.
 *
 * @example Parsing the messages of a framed batch
 * ```ts
 * const parser = new SyslogParser();
 * let start = 0;
 * for (let i = 0; i < frames.lines; i++) {
 *   const msg = parser.parse(frames.data, start, frames.ends[i], receivedAt);
 *   if (msg.format === "unparsed") unparsed++;
 *   route(msg.host ?? peer, msg.severity);
 *   start = frames.ends[i] + 1;
 * }
 * ```
 */
export class SyslogParser {
  readonly #msg: ParsedSyslog;
  readonly #zone: "UTC" | "local" | number;
  /** The year of the last `now` seen, and the span of `now` it holds for. */
  #year = 0;
  #yearFrom = 1;
  #yearTo = 0;
  // Cursor state of one parse.
  #b: Uint8Array = new Uint8Array(0);
  #p = 0;
  #end = 0;

  /** @param options see {@linkcode SyslogParserOptions}. */
  constructor(options: SyslogParserOptions = {}) {
    const zone = options.timeZone ?? "UTC";
    if (typeof zone === "number" && !(Number.isInteger(zone) && Math.abs(zone) <= 18 * 60)) {
      throw new RangeError(`Time zone offset must be whole minutes within 18 hours, got "${zone}"`);
    }
    if (typeof zone !== "number" && zone !== "UTC" && zone !== "local") {
      throw new RangeError(
        `Time zone must be "UTC", "local" or minutes east of UTC, got "${zone}"`,
      );
    }
    this.#zone = zone;
    this.#msg = new ParsedSyslog(new Interner());
  }

  /**
   * Parses `bytes[start, end)`, one message without its newline. `now` is the receive time in
   * ms, which decides the year of RFC 3164 dates. Returns the parser's reused result object.
   */
  parse(
    bytes: Uint8Array,
    start = 0,
    end: number = bytes.length,
    now: number = Date.now(),
  ): ParsedSyslog {
    const msg = this.#msg;
    msg.reset(bytes, start, end);
    this.#b = bytes;
    this.#end = end;
    this.#p = start;
    const pri = this.#pri();
    if (pri < 0) return msg;
    msg.facility = pri >> 3;
    msg.severity = pri & 7;
    const afterPri = this.#p;
    msg.msgStart = afterPri;
    const p = afterPri;
    const ok = p + 1 < end && bytes[p] === ZERO + 1 && bytes[p + 1] === SP
      ? this.#rfc5424(p + 2)
      : this.#rfc3164(p, now);
    if (!ok) {
      msg.format = "unparsed";
      msg.time = undefined;
      msg.msgStart = afterPri;
      msg.ranges.fill(-1);
    }
    return msg;
  }

  /** Reads `<PRI>` at the cursor: 0-191, one to three digits. Returns -1 when there is none. */
  #pri(): number {
    const b = this.#b;
    let p = this.#p;
    const end = this.#end;
    if (p >= end || b[p] !== LT) return -1;
    p++;
    let pri = 0;
    const first = p;
    for (; p < end && p - first < 3; p++) {
      const d = b[p] - ZERO;
      if (d < 0 || d > 9) break;
      pri = pri * 10 + d;
    }
    if (p === first || p >= end || b[p] !== GT || pri > 191) return -1;
    this.#p = p + 1;
    return pri;
  }

  #rfc5424(p: number): boolean {
    const b = this.#b;
    const end = this.#end;
    const msg = this.#msg;
    msg.format = "rfc5424";
    if (p < end && b[p] === DASH && p + 1 < end && b[p + 1] === SP) {
      p += 2;
    } else {
      const time = this.#rfc3339(p, true);
      if (Number.isNaN(time)) return false;
      p = this.#p;
      if (p >= end || b[p] !== SP) return false;
      p++;
      msg.time = time;
    }
    const ranges = msg.ranges;
    for (let field = 0; field < 8; field += 2) {
      const from = p;
      while (p < end && b[p] !== SP) p++;
      if (p === from || p === end) return false;
      if (!(p - from === 1 && b[from] === DASH)) {
        ranges[field] = from;
        ranges[field + 1] = p;
      }
      p++;
    }
    if (p >= end) return false;
    if (b[p] === DASH) {
      p++;
      if (p < end && b[p] !== SP) return false;
    } else if (b[p] === LBRACKET) {
      const sdEnd = scanSd(b, p, end);
      if (sdEnd < 0) return false;
      ranges[8] = p;
      ranges[9] = sdEnd;
      p = sdEnd;
    } else {
      return false;
    }
    // MSG: after one space; a sender that glued it to the SD is forgiven.
    if (p < end && b[p] === SP) p++;
    if (p + 2 < end && b[p] === 0xef && b[p + 1] === 0xbb && b[p + 2] === 0xbf) p += 3;
    msg.msgStart = p;
    return true;
  }

  #rfc3164(p: number, now: number): boolean {
    const b = this.#b;
    const end = this.#end;
    const msg = this.#msg;
    msg.format = "rfc3164";
    if (p >= end) return false;
    const c = b[p];
    let time: number;
    if (c >= ZERO && c <= ZERO + 9) {
      time = this.#rfc3339(p, false);
    } else {
      time = this.#bsdTime(p, now);
    }
    if (Number.isNaN(time)) return false;
    msg.time = time;
    p = this.#p;
    if (p >= end) {
      msg.msgStart = end;
      return true;
    }
    if (b[p] !== SP) return false;
    while (p < end && b[p] === SP) p++;
    // HOST: a word followed by another, not ending with ':' and without '['.
    let q = p;
    let bracket = false;
    while (q < end && b[q] !== SP) {
      if (b[q] === LBRACKET) bracket = true;
      q++;
    }
    const ranges = msg.ranges;
    if (q < end && !bracket && b[q - 1] !== COLON) {
      ranges[0] = p;
      ranges[1] = q;
      p = q + 1;
    }
    msg.msgStart = this.#tag(p);
    return true;
  }

  /** Reads `TAG[PID]:` at `p` when there is one; returns where MSG starts. */
  #tag(p: number): number {
    const b = this.#b;
    const end = this.#end;
    const ranges = this.#msg.ranges;
    const limit = Math.min(end, p + MAX_TAG + 1);
    let i = p;
    for (; i < limit; i++) {
      const c = b[i];
      if (c === COLON || c === LBRACKET || c === SP) break;
    }
    if (i === p || i === limit) return p;
    const tagEnd = i;
    if (b[i] === LBRACKET) {
      let j = i + 1;
      while (j < end && b[j] !== RBRACKET && b[j] !== SP) j++;
      if (j >= end || b[j] !== RBRACKET) return p;
      if (j > i + 1) {
        ranges[4] = i + 1;
        ranges[5] = j;
      }
      i = j + 1;
      if (i < end && b[i] === COLON) i++;
    } else if (b[i] === COLON) {
      i++;
    } else if (i + 1 >= end) {
      // `app ` and nothing more: the word is the message.
      return p;
    }
    ranges[2] = p;
    ranges[3] = tagEnd;
    if (i < end && b[i] === SP) i++;
    return i;
  }

  /**
   * Reads an RFC 3339 time at `p`: `YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm)`. Without an
   * offset it is NaN when `needOffset`, else read in the parser's zone. Leaves the cursor after
   * it.
   */
  #rfc3339(p: number, needOffset: boolean): number {
    const b = this.#b;
    const end = this.#end;
    if (p + 19 > end) return NaN;
    const year = digits(b, p, 4);
    const month = digits(b, p + 5, 2);
    const day = digits(b, p + 8, 2);
    const hour = digits(b, p + 11, 2);
    const minute = digits(b, p + 14, 2);
    const second = digits(b, p + 17, 2);
    const t = b[p + 10] | 0x20;
    if (
      b[p + 4] !== DASH || b[p + 7] !== DASH || t !== 0x74 || b[p + 13] !== COLON ||
      b[p + 16] !== COLON || year < 0 || month < 1 || month > 12 || day < 1 ||
      day > daysInMonth(year, month) || hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
      second < 0 || second > 60
    ) {
      return NaN;
    }
    p += 19;
    const ms = this.#fraction(p);
    p = this.#p;
    const local = (daysFromCivil(year, month, day) * 24 + hour) * 3_600_000 + minute * 60_000 +
      second * 1000 + ms;
    if (p < end && (b[p] | 0x20) === 0x7a) {
      this.#p = p + 1;
      return local;
    }
    if (p < end && (b[p] === PLUS || b[p] === DASH)) {
      if (p + 6 > end || b[p + 3] !== COLON) return NaN;
      const oh = digits(b, p + 1, 2);
      const om = digits(b, p + 4, 2);
      if (oh < 0 || oh > 23 || om < 0 || om > 59) return NaN;
      const offset = (oh * 60 + om) * 60_000;
      this.#p = p + 6;
      return b[p] === PLUS ? local - offset : local + offset;
    }
    if (needOffset) return NaN;
    this.#p = p;
    return this.#fromZone(local);
  }

  /** Reads `.digits` at `p` as milliseconds (0 without); leaves the cursor after the digits. */
  #fraction(p: number): number {
    const b = this.#b;
    const end = this.#end;
    let ms = 0;
    if (p < end && b[p] === DOT) {
      let q = p + 1;
      let scale = 100;
      for (; q < end; q++) {
        const d = b[q] - ZERO;
        if (d < 0 || d > 9) break;
        ms += d * scale;
        scale /= 10;
      }
      if (q > p + 1) p = q;
    }
    this.#p = p;
    return Math.floor(ms);
  }

  /** Reads `Mmm dd [yyyy ]hh:mm:ss[.frac]` at `p`; NaN when it is not one. */
  #bsdTime(p: number, now: number): number {
    const b = this.#b;
    const end = this.#end;
    if (p + 14 > end || b[p + 3] !== SP) return NaN;
    const month = monthOf(b[p], b[p + 1], b[p + 2]);
    if (month === 0) return NaN;
    p += 4;
    let day: number;
    if (b[p] === SP) {
      day = digits(b, p + 1, 1);
      p += 2;
    } else if (b[p + 1] === SP) {
      day = digits(b, p, 1);
      p += 1;
    } else {
      day = digits(b, p, 2);
      p += 2;
    }
    if (day < 1 || day > 31 || p >= end || b[p] !== SP) return NaN;
    p++;
    let year = -1;
    if (p + 5 <= end && b[p + 4] === SP) {
      year = digits(b, p, 4);
      if (year < 0) return NaN;
      p += 5;
    }
    if (p + 8 > end || b[p + 2] !== COLON || b[p + 5] !== COLON) return NaN;
    const hour = digits(b, p, 2);
    const minute = digits(b, p + 3, 2);
    const second = digits(b, p + 6, 2);
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) {
      return NaN;
    }
    const ms = this.#fraction(p + 8);
    const within = ((hour * 60 + minute) * 60 + second) * 1000 + ms;
    if (year >= 0) {
      if (day > daysInMonth(year, month)) return NaN;
      return this.#fromZone(daysFromCivil(year, month, day) * DAY_MS + within);
    }
    return this.#nearestYear(month, day, within, now);
  }

  /** The time of `month day` plus `within` ms in the year that puts it nearest to `now`. */
  #nearestYear(month: number, day: number, within: number, now: number): number {
    if (now < this.#yearFrom || now >= this.#yearTo) {
      const year = new Date(now).getUTCFullYear();
      this.#year = year;
      this.#yearFrom = daysFromCivil(year, 1, 1) * DAY_MS;
      this.#yearTo = daysFromCivil(year + 1, 1, 1) * DAY_MS;
    }
    let best = NaN;
    let bestDistance = Infinity;
    for (const delta of YEAR_DELTAS) {
      const year = this.#year + delta;
      if (day > daysInMonth(year, month)) continue;
      const time = this.#fromZone(daysFromCivil(year, month, day) * DAY_MS + within);
      const distance = Math.abs(time - now);
      if (distance < bestDistance) {
        best = time;
        bestDistance = distance;
      }
      if (delta === 0 && distance < YEAR_CHECK_MS) break;
    }
    return best;
  }

  /** Converts a wall-clock time read as UTC into the instant it is in the parser's zone. */
  #fromZone(wall: number): number {
    const zone = this.#zone;
    if (zone === "UTC") return wall;
    if (typeof zone === "number") return wall - zone * 60_000;
    // The offset at the guess, then at the corrected guess (right also next to a DST change).
    let t = wall + new Date(wall).getTimezoneOffset() * 60_000;
    t = wall + new Date(t).getTimezoneOffset() * 60_000;
    return t;
  }
}

/**
 * Parses one message into a fresh plain object: for tests and occasional use; inputs use a
 * {@linkcode SyslogParser}. `now` defaults to the current time.
 */
export function parseSyslog(
  message: Uint8Array | string,
  options: SyslogParserOptions & { now?: number } = {},
): SyslogMessage {
  const bytes = typeof message === "string" ? new TextEncoder().encode(message) : message;
  return new SyslogParser(options).parse(bytes, 0, bytes.length, options.now ?? Date.now())
    .toJSON();
}

/** The name of facility `n` (`user` for 1), or its number as text when out of range. */
export function facilityName(n: number): string {
  return FACILITY_NAMES[n] ?? String(n);
}

/** The name of severity `n` (`err` for 3), or its number as text when out of range. */
export function severityName(n: number): string {
  return SEVERITY_NAMES[n] ?? String(n);
}

const utf8 = new TextDecoder();

/**
 * Strings for header fields, decoded once: senders repeat the same few hosts and apps, so a
 * small table keyed by a hash of the bytes returns the same string without decoding again.
 * @internal
 */
export class Interner {
  readonly #keys: (Uint8Array | undefined)[] = new Array(256).fill(undefined);
  readonly #values: string[] = new Array(256).fill("");

  /** `bytes[from, to)` as a string: ASCII as is, anything else as UTF-8. */
  get(bytes: Uint8Array, from: number, to: number): string {
    const n = to - from;
    if (n > 64 || n === 0) return decodeHeader(bytes, from, to);
    let h = 0x811c9dc5 ^ n;
    for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i], 16777619);
    const slot = (h ^ (h >>> 16)) & 255;
    const key = this.#keys[slot];
    if (key !== undefined && key.length === n) {
      let same = true;
      for (let i = 0; i < n && same; i++) same = key[i] === bytes[from + i];
      if (same) return this.#values[slot];
    }
    const value = decodeHeader(bytes, from, to);
    this.#keys[slot] = bytes.slice(from, to);
    this.#values[slot] = value;
    return value;
  }
}

function decodeHeader(bytes: Uint8Array, from: number, to: number): string {
  let ascii = true;
  for (let i = from; i < to && ascii; i++) ascii = bytes[i] < 0x80;
  const view = bytes.subarray(from, to);
  return ascii ? String.fromCharCode.apply(null, view as unknown as number[]) : utf8.decode(view);
}

/** The value of `n` decimal digits at `p`, or -1 when one is not a digit. */
function digits(b: Uint8Array, p: number, n: number): number {
  let v = 0;
  for (let i = p; i < p + n; i++) {
    const d = b[i] - ZERO;
    if (!(d >= 0 && d <= 9)) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** The month 1-12 of a three-letter English name (any case), or 0. */
function monthOf(a: number, b: number, c: number): number {
  const key = ((a | 0x20) << 16) | ((b | 0x20) << 8) | (c | 0x20);
  for (let i = 0; i < 12; i++) if (MONTH_KEYS[i] === key) return i + 1;
  return 0;
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeap(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days from 1970-01-01 to the date (proleptic Gregorian), without allocating a Date. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Where the structured data starting with `[` at `p` ends (after its last `]`), or -1 when it is
 * malformed: each element is `[ID *(SP NAME="VALUE")]`, VALUE with `\` escaping one byte.
 */
function scanSd(b: Uint8Array, p: number, end: number): number {
  while (p < end && b[p] === LBRACKET) {
    p++;
    const id = p;
    while (p < end && b[p] !== SP && b[p] !== RBRACKET && b[p] !== EQUALS && b[p] !== QUOTE) p++;
    if (p === id || p >= end) return -1;
    while (p < end && b[p] === SP) {
      p++;
      const name = p;
      while (p < end && b[p] !== EQUALS && b[p] !== SP && b[p] !== RBRACKET && b[p] !== QUOTE) {
        p++;
      }
      if (p === name || p + 1 >= end || b[p] !== EQUALS || b[p + 1] !== QUOTE) return -1;
      p += 2;
      while (p < end && b[p] !== QUOTE) p += b[p] === BACKSLASH ? 2 : 1;
      if (p >= end) return -1;
      p++;
      if (p >= end) return -1;
    }
    if (p >= end || b[p] !== RBRACKET) return -1;
    p++;
  }
  return p;
}

/** Decodes structured data already checked by {@linkcode scanSd}. */
function decodeSd(b: Uint8Array, p: number, end: number): SdElement[] {
  const elements: SdElement[] = [];
  while (p < end && b[p] === LBRACKET) {
    p++;
    const id = p;
    while (b[p] !== SP && b[p] !== RBRACKET) p++;
    const element: SdElement = { id: decodeHeader(b, id, p), params: [] };
    while (b[p] === SP) {
      p++;
      const name = p;
      while (b[p] !== EQUALS) p++;
      const key = decodeHeader(b, name, p);
      p += 2;
      const value = p;
      let escaped = false;
      while (b[p] !== QUOTE) {
        if (b[p] === BACKSLASH) {
          escaped = true;
          p++;
        }
        p++;
      }
      element.params.push([key, unescapeValue(b, value, p, escaped)]);
      p++;
    }
    elements.push(element);
    p++;
  }
  return elements;
}

/** A PARAM-VALUE as text: `\"`, `\\` and `\]` lose their backslash, other pairs keep it. */
function unescapeValue(b: Uint8Array, from: number, to: number, escaped: boolean): string {
  if (!escaped) return utf8.decode(b.subarray(from, to));
  const out = new Uint8Array(to - from);
  let w = 0;
  for (let i = from; i < to; i++) {
    const c = b[i];
    if (c === BACKSLASH && i + 1 < to) {
      const next = b[i + 1];
      if (next === QUOTE || next === BACKSLASH || next === RBRACKET) {
        out[w++] = next;
        i++;
        continue;
      }
    }
    out[w++] = c;
  }
  return utf8.decode(out.subarray(0, w));
}
