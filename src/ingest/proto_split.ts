/**
 * Splits a protobuf request into smaller requests of the same type, so that a large OTLP export or
 * Loki push is decoded a piece at a time, with turns for other requests between pieces: decoding
 * runs about 1.3 ms per 1,000 OTLP records, so a collector's 8,192 records, or the 100,000 a
 * request may hold, would otherwise hold the event loop for 10 to 130 ms in one go.
 *
 * A repeated message field concatenated is the same message (protobuf merges repeated fields), so
 * `ExportLogsServiceRequest { resource_logs[] { resource, scope_logs[] { scope, log_records[] } } }`
 * splits along the path `[1, 2, 2]` into requests that each carry their records' resource and
 * scope, and a Loki `PushRequest { streams[] { labels, entries[] } }` along `[1, 2]`. Decoding the
 * pieces one after another gives the records decoding the whole gives, in the same order.
 *
 * @module
 */

/** A piece of a request, and how many leaf messages (records, entries) it holds. */
interface Fragment {
  parts: Uint8Array[];
  size: number;
  count: number;
}

/** A field's place in its message: the tag and value span [start, end), the value at `value`. */
interface FieldSpan {
  field: number;
  start: number;
  value: number;
  end: number;
}

/**
 * `message` split along `path` into requests of about `max` leaves each (at least one leaf a
 * piece; a leaf is never split). Returns `[message]` when it holds no more than `max` leaves, or
 * when it is not well-formed protobuf (the decoder then says what is wrong).
 *
 * @example
 * ```ts
 * for (const piece of splitRepeated(body, [1, 2, 2], 1024)) records.push(...decode(piece));
 * ```
 */
export function splitRepeated(
  message: Uint8Array,
  path: readonly number[],
  max: number,
): Uint8Array[] {
  const fragments = fragmentsOf(message, path, max);
  if (fragments === undefined) return [message];
  const pieces: Uint8Array[] = [];
  let parts: Uint8Array[] = [];
  let size = 0;
  let count = 0;
  const finish = () => {
    if (parts.length === 0) return;
    const piece = new Uint8Array(size);
    let at = 0;
    for (const part of parts) {
      piece.set(part, at);
      at += part.length;
    }
    pieces.push(piece);
    parts = [];
    size = 0;
    count = 0;
  };
  for (const fragment of fragments) {
    if (count > 0 && count + fragment.count > max) finish();
    for (const part of fragment.parts) parts.push(part);
    size += fragment.size;
    count += fragment.count;
  }
  finish();
  return pieces.length <= 1 ? [message] : pieces;
}

/**
 * The fragments of `message`, each a message of the same type: its fields other than `path[0]`
 * (the context) with some of its `path[0]` entries, themselves split along the rest of the path.
 * `undefined` when the bytes are not well-formed.
 */
function fragmentsOf(
  message: Uint8Array,
  path: readonly number[],
  max: number,
): Fragment[] | undefined {
  const spans = fieldsOf(message);
  if (spans === undefined) return undefined;
  const context: Uint8Array[] = [];
  let contextSize = 0;
  const entries: FieldSpan[] = [];
  for (const span of spans) {
    if (span.field === path[0] && span.value >= 0) {
      entries.push(span);
    } else {
      context.push(message.subarray(span.start, span.end));
      contextSize += span.end - span.start;
    }
  }
  const out: Fragment[] = [];
  const withContext = (parts: Uint8Array[], size: number, count: number): Fragment => ({
    parts: [...context, ...parts],
    size: contextSize + size,
    count,
  });
  if (path.length === 1) {
    for (let i = 0; i < entries.length; i += max) {
      const last = Math.min(i + max, entries.length) - 1;
      // Entries follow one another in the bytes (encoders write a repeated field together): one
      // view for the run, not one per entry.
      const parts: Uint8Array[] = [];
      let runStart = entries[i].start;
      for (let k = i; k < last; k++) {
        if (entries[k].end !== entries[k + 1].start) {
          parts.push(message.subarray(runStart, entries[k].end));
          runStart = entries[k + 1].start;
        }
      }
      parts.push(message.subarray(runStart, entries[last].end));
      const size = parts.reduce((sum, part) => sum + part.length, 0);
      out.push(withContext(parts, size, last - i + 1));
    }
    if (entries.length === 0) out.push(withContext([], 0, 0));
    return out;
  }
  for (const span of entries) {
    const inner = fragmentsOf(message.subarray(span.value, span.end), path.slice(1), max);
    if (inner === undefined) return undefined;
    for (const fragment of inner) {
      const head = lengthHead(path[0], fragment.size);
      out.push(withContext([head, ...fragment.parts], head.length + fragment.size, fragment.count));
    }
  }
  if (entries.length === 0) out.push(withContext([], 0, 0));
  return out;
}

/** The tag and length of a length-delimited field `field` of `size` bytes. */
function lengthHead(field: number, size: number): Uint8Array {
  const bytes: number[] = [];
  for (let v = field * 8 + 2;; v = Math.floor(v / 128)) {
    if (v < 128) {
      bytes.push(v);
      break;
    }
    bytes.push((v % 128) | 0x80);
  }
  for (let v = size;; v = Math.floor(v / 128)) {
    if (v < 128) {
      bytes.push(v);
      break;
    }
    bytes.push((v % 128) | 0x80);
  }
  return Uint8Array.from(bytes);
}

/**
 * The fields of a message, in order; `value` is where a length-delimited value starts (-1 for
 * other wire types). `undefined` for bytes that are not well-formed (or use groups).
 */
function fieldsOf(message: Uint8Array): FieldSpan[] | undefined {
  const spans: FieldSpan[] = [];
  let at = 0;
  while (at < message.length) {
    const start = at;
    const tag = varint(message, at);
    if (tag === undefined) return undefined;
    at = tag.end;
    const field = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    if (field === 0) return undefined;
    let value = -1;
    if (wire === 0) {
      const v = varint(message, at);
      if (v === undefined) return undefined;
      at = v.end;
    } else if (wire === 1) {
      at += 8;
    } else if (wire === 5) {
      at += 4;
    } else if (wire === 2) {
      const length = varint(message, at);
      if (length === undefined) return undefined;
      value = length.end;
      at = length.end + length.value;
    } else {
      return undefined;
    }
    if (at > message.length) return undefined;
    spans.push({ field, start, value, end: at });
  }
  return spans;
}

/** A varint at `at` (up to 2^53), or `undefined` when it runs past the end or is too long. */
function varint(bytes: Uint8Array, at: number): { value: number; end: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = at; i < bytes.length && i < at + 10; i++) {
    const b = bytes[i];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return value <= Number.MAX_SAFE_INTEGER ? { value, end: i + 1 } : undefined;
    scale *= 128;
  }
  return undefined;
}
