/**
 * Server-Sent Events encoding of live events. Every payload is JSON, so a line holding `\r` or
 * `\n` stays inside one `data:` field and can never end an event early or forge another.
 *
 * Lines become unnamed messages (EventSource's `onmessage`), one per line, each with its cursor
 * (`<epoch>-<line id>`, see `cursor.ts`) as its `id:` so a reconnecting browser resumes exactly
 * after the last line it received, even from a server that restarted meanwhile.
 * Missed lines become a named `dropped` event without an id (the cursor stays where it was).
 *
 * @module
 */

import { decodeRun } from "./run.ts";
import type { LiveEvent, LiveLine, RawLinesEvent } from "./subscription.ts";

/** The `Content-Type` of an SSE response. */
export const SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8";

/** The fields of one SSE message. */
export interface SseMessage {
  /** The cursor the client sends back as `Last-Event-ID`; omitted when undefined. */
  id?: string | number;
  /** The event name; omitted (a plain `message`) when undefined. */
  event?: string;
  /** The payload; must not contain `\r` or `\n` (JSON-encode structured data). */
  data: string;
}

/**
 * Encodes one SSE message, blank-line terminated.
 *
 * Throws `TypeError` when a field holds a line break (it would break framing) or the id holds
 * NUL (browsers ignore such an id).
 *
 * @example
 * ```ts
 * encodeSseMessage({ id: 7, event: "hello", data: JSON.stringify({ a: 1 }) });
 * // 'id: 7\nevent: hello\ndata: {"a":1}\n\n'
 * ```
 */
export function encodeSseMessage(message: SseMessage): string {
  const { id, event, data } = message;
  let text = "";
  if (id !== undefined) {
    const value = String(id);
    if (/[\r\n\0]/.test(value)) {
      throw new TypeError(`SSE id must be one line without NUL, got ${JSON.stringify(value)}`);
    }
    text += `id: ${value}\n`;
  }
  if (event !== undefined) {
    singleLine("SSE event name", event);
    text += `event: ${event}\n`;
  }
  singleLine("SSE data", data);
  return `${text}data: ${data}\n\n`;
}

/**
 * Encodes lines as one message each: `id:` the line's cursor (`<epoch>-<id>`, or the bare id
 * without an epoch), `data:` the line as JSON (`{"id","source","host","ts","line"}`); a line
 * with a level has `"level"` before `"line"`, one with fields has `"fields"` (an object) after.
 *
 * @example
 * ```ts
 * encodeSseLines([{ id: 3, source: "app", host: "10.0.0.2", ts: 0, line: "a\nb" }], "mfz3k2a");
 * // 'id: mfz3k2a-3\ndata: {"id":3,"source":"app","host":"10.0.0.2","ts":0,"line":"a\\nb"}\n\n'
 * ```
 */
export function encodeSseLines(lines: readonly LiveLine[], epoch?: string): string {
  const prefix = epoch === undefined ? "" : `${epoch}-`;
  let text = "";
  let lastSource: string | undefined;
  let lastHost: string | undefined;
  let middle = "";
  for (const { id, source, host, ts, line, level, fields } of lines) {
    // The same text as JSON.stringify({ id, source, host, ts, line }) (fields picked explicitly,
    // so the wire format does not follow whatever the record holds), built for a fraction of
    // the cost: only the line is stringified, and source and host once per run of lines.
    if (source !== lastSource || host !== lastHost) {
      lastSource = source;
      lastHost = host;
      middle = `,"source":${JSON.stringify(source)},"host":${JSON.stringify(host)},"ts":`;
    }
    text += `id: ${prefix}${id}\ndata: {"id":${id}${middle}${ts}`;
    if (level !== undefined) text += `,"level":${JSON.stringify(level)}`;
    text += `,"line":${JSON.stringify(line)}`;
    if (fields !== undefined) text += `,"fields":${JSON.stringify(fields)}`;
    text += "}\n\n";
  }
  return text;
}

const encoder = new TextEncoder();
// ignoreBOM: a line may start with U+FEFF and must reach subscribers as sent.
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const DATA_ID = encoder.encode('\ndata: {"id":');
const END = encoder.encode("}\n\n");
/** Room for a line id's digits (safe integers have at most 16). */
const ID_DIGITS = 16;

/**
 * Encodes raw lines (see `Subscription.pollRaw`) as {@linkcode encodeSseLines} would encode
 * their records, byte for byte, without decoding them: a line of printable ASCII without `"` or
 * `\` is its own JSON string, so its bytes are copied between quotes; only other lines are
 * decoded (invalid UTF-8 becomes U+FFFD) and JSON-encoded. Lines with levels or fields are
 * records already (their fields are objects): they are made records and encoded as such.
 */
export function encodeSseRaw(raw: RawLinesEvent, epoch?: string): Uint8Array<ArrayBuffer> {
  const { data, firstId, count, source, host, ts } = raw;
  if (raw.levels !== undefined || raw.fields !== undefined) {
    const lines: LiveLine[] = [];
    decodeRun(raw, lines);
    return encoder.encode(encodeSseLines(lines, epoch));
  }
  const idHead = encoder.encode(`id: ${epoch === undefined ? "" : `${epoch}-`}`);
  const middle = encoder.encode(
    `,"source":${JSON.stringify(source)},"host":${JSON.stringify(host)},"ts":${ts},"line":`,
  );
  const fixed = idHead.length + DATA_ID.length + middle.length + END.length + 2 * ID_DIGITS;
  // Enough for plain lines (their bytes and two quotes); grown for lines that need escapes.
  let out = new Uint8Array(count * (fixed + 2) + data.length);
  let at = 0;
  const put = (bytes: Uint8Array) => {
    out.set(bytes, at);
    at += bytes.length;
  };
  const putId = (id: number) => {
    const digits = String(id);
    for (let k = 0; k < digits.length; k++) out[at++] = digits.charCodeAt(k);
  };
  let start = 0;
  for (let i = 0; i < count; i++) {
    const nl = data.indexOf(10, start);
    const end = nl === -1 ? data.length : nl;
    const id = firstId + i;
    put(idHead);
    putId(id);
    put(DATA_ID);
    putId(id);
    put(middle);
    if (isPlainJson(data, start, end)) {
      out[at++] = 34;
      put(data.subarray(start, end));
      out[at++] = 34;
    } else {
      const json = encoder.encode(JSON.stringify(decoder.decode(data.subarray(start, end))));
      // What is left is sized for plain lines: make room for this one's escapes.
      const need = at + json.length + END.length + (count - i - 1) * (fixed + 2) +
        (data.length - end);
      if (need > out.length) {
        const bigger = new Uint8Array(need);
        bigger.set(out.subarray(0, at));
        out = bigger;
      }
      put(json);
    }
    put(END);
    start = end + 1;
  }
  return out.subarray(0, at);
}

/** Whether bytes `start` to `end` are printable ASCII (or DEL) without `"` or `\`. */
function isPlainJson(data: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = data[i];
    if (b < 0x20 || b === 0x22 || b === 0x5c || b > 0x7f) return false;
  }
  return true;
}

/**
 * Encodes a `dropped` notice: `event: dropped`, `data: {"count":N}`, and no id.
 *
 * @example
 * ```ts
 * encodeSseDropped(12); // 'event: dropped\ndata: {"count":12}\n\n'
 * ```
 */
export function encodeSseDropped(count: number): string {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(`Dropped count must be a non-negative integer, got "${count}"`);
  }
  return `event: dropped\ndata: {"count":${count}}\n\n`;
}

/** Encodes a hub event: see {@linkcode encodeSseLines} and {@linkcode encodeSseDropped}. */
export function encodeSseEvent(event: LiveEvent, epoch?: string): string {
  return event.type === "lines"
    ? encodeSseLines(event.lines, epoch)
    : encodeSseDropped(event.count);
}

/**
 * Encodes a comment, which clients ignore: the heartbeat that keeps proxies from closing an idle
 * stream. A multi-line text becomes one comment line per line.
 *
 * @example
 * ```ts
 * encodeSseComment(); // ':\n\n'
 * encodeSseComment("ping"); // ': ping\n\n'
 * ```
 */
export function encodeSseComment(text = ""): string {
  if (text === "") return ":\n\n";
  return text.split(/\r\n|\r|\n/).map((part) => `: ${part}\n`).join("") + "\n";
}

/**
 * Turns hub events into SSE bytes, one chunk per event (so a `lines` event is one write).
 *
 * @example
 * ```ts
 * const tail = hub.subscribe({ grep: "ERROR", signal: request.signal });
 * const body = tail.readable.pipeThrough(new SseEncoderStream());
 * return new Response(body, { headers: { "content-type": SSE_CONTENT_TYPE } });
 * ```
 */
export class SseEncoderStream extends TransformStream<LiveEvent, Uint8Array> {
  /**
   * Creates the transform; it keeps no state between events.
   *
   * @param epoch the hub's epoch, for the lines' cursors; omitted, ids are bare line ids.
   */
  constructor(epoch?: string) {
    const encoder = new TextEncoder();
    super({
      transform(event, controller) {
        controller.enqueue(encoder.encode(encodeSseEvent(event, epoch)));
      },
    });
  }
}

function singleLine(what: string, value: string): void {
  if (/[\r\n]/.test(value)) {
    throw new TypeError(`${what} must be one line, got ${JSON.stringify(value)}`);
  }
}
