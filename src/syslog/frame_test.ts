import assert from "node:assert/strict";
import {
  DatagramFramer,
  MAX_MAX_MESSAGE,
  MIN_MAX_MESSAGE,
  SyslogFramer,
  type SyslogFramerOptions,
  type SyslogFrames,
} from "./frame.ts";
import { seededRandom } from "../_seeded_random.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Framed {
  /** The stored lines, joined. */
  text: string;
  /** The messages one by one, from `ends`. */
  messages: string[];
  errors: number;
  split: number;
}

/** Checks that `ends` and `lines` describe `data` exactly; returns the messages. */
function messagesOf(frames: SyslogFrames): string[] {
  const out: string[] = [];
  let start = 0;
  assert.equal(frames.ends.length, frames.lines);
  for (let i = 0; i < frames.lines; i++) {
    const end = frames.ends[i];
    assert.equal(frames.data[end], 10, `message ${i} ends with LF`);
    out.push(decoder.decode(frames.data.subarray(start, end)));
    start = end + 1;
  }
  assert.equal(start, frames.data.length, "the last message ends the data");
  return out;
}

/** Feeds `chunks` one read at a time, through `commit` like a socket, then ends the stream. */
function frame(chunks: (string | Uint8Array)[], options: SyslogFramerOptions = {}): Framed {
  const framer = new SyslogFramer(options);
  const messages: string[] = [];
  const take = (frames: SyslogFrames | undefined) => {
    if (frames) messages.push(...messagesOf(frames));
  };
  for (const chunk of chunks) {
    const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
    take(framer.push(bytes));
  }
  take(framer.end());
  return {
    text: messages.map((m) => m + "\n").join(""),
    messages,
    errors: framer.errors,
    split: framer.split,
  };
}

/** Feeds `bytes` split at every pair of positions, through `commit` into the framer's buffer. */
function everySplit(input: string, options: SyslogFramerOptions = {}): Set<string> {
  const bytes = encoder.encode(input);
  const results = new Set<string>();
  for (let a = 0; a <= bytes.length; a++) {
    for (let b = a; b <= bytes.length; b += Math.max(1, Math.floor(bytes.length / 17))) {
      const got = frame([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)], options);
      results.add(JSON.stringify([got.messages, got.errors, got.split]));
    }
  }
  return results;
}

// The wire samples of ../shared/FIELD_NOTES.md, byte for byte.
const LOGGER_5424 =
  '<132>1 2026-11-30T10:34:18.155242+00:00 vm myapp - REQ [timeQuality tzKnown="1" isSynced="0"][meta@32473 env="prod"] msg';
const LOGGER_3164 = "<11>Nov 30 10:34:18 vm myapp: msg";
const SYSLOG_NG_5424 = '<13>1 2026-11-30T10:34:34+00:00 vm - - - [meta sequenceId="1"] msg';
const SYSLOG_NG_NETWORK = "<13>Nov 30 10:34:34 vm msg";
const RSYSLOG_23 =
  '<13>1 2026-11-30T10:34:46.959364+00:00 vm webapp - - [timeQuality tzKnown="1" isSynced="0"] msg';
const RSYSLOG_FORWARD = "<13>2026-11-30T10:34:46.959364+00:00 vm webapp msg";
const RSYSLOG_TRADITIONAL = "<13>Nov 30 10:34:46 vm webapp: msg";

function octet(message: string): string {
  return `${encoder.encode(message).length} ${message}`;
}

Deno.test("syslog framing reads what logger sends: LF lines and octet counts without LF", () => {
  assert.deepEqual(frame([LOGGER_5424 + "\n", LOGGER_3164 + "\n"]).messages, [
    LOGGER_5424,
    LOGGER_3164,
  ]);
  // logger --octet-count: `LEN SP MSG` with no LF, back to back.
  const counted = octet(LOGGER_5424) + octet(LOGGER_3164);
  assert.deepEqual(frame([counted]).messages, [LOGGER_5424, LOGGER_3164]);
});

Deno.test("syslog framing drops the LF that syslog-ng and rsyslog put inside the count", () => {
  const ng = octet(SYSLOG_NG_5424 + "\n");
  assert.ok(ng.startsWith(`${SYSLOG_NG_5424.length + 1} <13>1`));
  const rs = octet(RSYSLOG_23 + "\n");
  const crlf = octet("<13>1 - - - - - - crlf\r\n");
  assert.deepEqual(frame([ng + rs + crlf]), {
    text: `${SYSLOG_NG_5424}\n${RSYSLOG_23}\n<13>1 - - - - - - crlf\n`,
    messages: [SYSLOG_NG_5424, RSYSLOG_23, "<13>1 - - - - - - crlf"],
    errors: 0,
    split: 0,
  });
});

Deno.test("syslog framing decides per frame: octet counts and LF lines mixed on one connection", () => {
  const input = octet(RSYSLOG_23 + "\n") + SYSLOG_NG_NETWORK + "\n" + octet(LOGGER_5424) +
    RSYSLOG_FORWARD + "\r\n" + RSYSLOG_TRADITIONAL + "\n";
  assert.deepEqual(frame([input]).messages, [
    RSYSLOG_23,
    SYSLOG_NG_NETWORK,
    LOGGER_5424,
    RSYSLOG_FORWARD,
    RSYSLOG_TRADITIONAL,
  ]);
});

Deno.test("syslog framing gives the same messages whatever the read boundaries", () => {
  const input = octet(RSYSLOG_23 + "\n") + SYSLOG_NG_NETWORK + "\r\n" + octet(LOGGER_5424) +
    "2026-11-30 not a count\n" + octet("a\nb\r\0c") + "\n" + octet(SYSLOG_NG_5424 + "\r\n") +
    "last";
  const results = everySplit(input);
  assert.deepEqual([...results].map((r) => JSON.parse(r)), [[
    [
      RSYSLOG_23,
      SYSLOG_NG_NETWORK,
      LOGGER_5424,
      "2026-11-30 not a count",
      "a#012b#015#000c",
      SYSLOG_NG_5424,
      "last",
    ],
    1,
    0,
  ]]);
});

Deno.test("syslog framing escapes LF, CR and NUL inside a message as rsyslog does", () => {
  assert.deepEqual(frame([octet("one\ntwo\r\nthree\0four\n")]).messages, [
    "one#012two#015#012three#000four",
  ]);
  // In an LF frame only the trailing CR is stripped; other CRs and NULs are escaped.
  assert.deepEqual(frame(["a\rb\0c\r\n", "tab\tstays\n"]).messages, [
    "a#015b#000c",
    "tab\tstays",
  ]);
});

Deno.test("syslog framing reads a bad LEN as a line, counts it, and keeps the frames after it", () => {
  const got = frame([
    "2026-11-30 raw line\n",
    octet("<13>1 - - - - - - good") + "123456789 too many digits\n" + "12x bad\n" +
    "0 zero\n012 leading zero\n0x1f starts with 0, not a count\n" +
    octet("<13>1 - - - - - - after"),
  ]);
  assert.deepEqual(got.messages, [
    "2026-11-30 raw line",
    "<13>1 - - - - - - good",
    "123456789 too many digits",
    "12x bad",
    "0 zero",
    "012 leading zero",
    "0x1f starts with 0, not a count",
    "<13>1 - - - - - - after",
  ]);
  assert.equal(got.errors, 5);
});

Deno.test("syslog framing stores a frame cut short by the end of the stream, as an error", () => {
  assert.deepEqual(frame(["30 <13>1 - - - - - - cut"]), {
    text: "<13>1 - - - - - - cut\n",
    messages: ["<13>1 - - - - - - cut"],
    errors: 1,
    split: 0,
  });
  assert.deepEqual(frame(["12"]), { text: "12\n", messages: ["12"], errors: 1, split: 0 });
});

Deno.test("syslog framing skips blank messages, such as an LF after a counted frame", () => {
  assert.deepEqual(frame([octet("x") + "\n" + octet("y") + "\r\n\n  \n" + octet(" \n") + "z"]), {
    text: "x\ny\nz\n",
    messages: ["x", "y", "z"],
    errors: 0,
    split: 0,
  });
});

Deno.test("syslog framing skips a blank message whose LEN is above the maximum only by its LF", () => {
  const max = MIN_MAX_MESSAGE;
  assert.deepEqual(frame([octet(" ".repeat(max) + "\r\n") + octet("x")], { maxMessage: max }), {
    text: "x\n",
    messages: ["x"],
    errors: 0,
    split: 0,
  });
});

Deno.test("syslog framing splits messages above the maximum into pieces and counts them", () => {
  const max = MIN_MAX_MESSAGE;
  const long = "a".repeat(max) + "b".repeat(max) + "c".repeat(10);
  const got = frame(
    [octet(long + "\n") + octet("short") + long + "\r\n" + octet("d".repeat(max) + "\n")],
    { maxMessage: max },
  );
  assert.deepEqual(got.messages, [
    "a".repeat(max),
    "b".repeat(max),
    "c".repeat(10),
    "short",
    "a".repeat(max),
    "b".repeat(max),
    "c".repeat(10),
    "d".repeat(max),
  ]);
  assert.equal(got.split, 2, "two messages were split; the last fits once its LF is dropped");
});

Deno.test("syslog framing holds at most about the maximum, whatever LEN announces", () => {
  const max = MIN_MAX_MESSAGE;
  const framer = new SyslogFramer({ maxMessage: max, bufferSize: 4096 });
  let stored = 0;
  let peak = 0;
  const feed = (bytes: Uint8Array) => {
    const frames = framer.push(bytes);
    if (frames) stored += frames.data.length;
    peak = Math.max(peak, framer.memory, framer.pending);
  };
  feed(encoder.encode("99999999 "));
  const chunk = new Uint8Array(1000).fill(0x78);
  for (let i = 0; i < 2000; i++) feed(chunk); // 2 MB of one frame
  assert.ok(peak < 64 * 1024, `memory stayed bounded (peak ${peak})`);
  assert.ok(stored >= 2_000_000 - max, "the pieces were stored as they came");
  assert.equal(framer.split, 1);
  // An LF line without end is bounded too.
  const lines = new SyslogFramer({ maxMessage: max, bufferSize: 4096 });
  for (let i = 0; i < 2000; i++) lines.push(chunk);
  assert.ok(lines.pending <= max + 2 && lines.memory < 64 * 1024);
});

Deno.test("syslog framing refuses a maximum outside 1 KiB..16 MiB", () => {
  assert.throws(() => new SyslogFramer({ maxMessage: MIN_MAX_MESSAGE - 1 }), RangeError);
  assert.throws(() => new SyslogFramer({ maxMessage: MAX_MAX_MESSAGE + 1 }), RangeError);
  assert.equal(new SyslogFramer().maxMessage, 64 * 1024);
});

Deno.test("syslog datagrams: one datagram is one message, LF escaped, trailing LF dropped", () => {
  const framer = new DatagramFramer();
  framer.addMessage(encoder.encode(LOGGER_3164));
  framer.addMessage(encoder.encode("<13>two\nlines\r\n"));
  framer.addMessage(encoder.encode(" \n"));
  const frames = framer.take();
  assert.ok(frames);
  assert.deepEqual(messagesOf(frames), [LOGGER_3164, "<13>two#012lines"]);
  assert.equal(framer.take(), undefined, "taken");
  framer.addMessage(encoder.encode("next"));
  assert.deepEqual(messagesOf(framer.take()!), ["next"]);
});

Deno.test("raw UDP lines: one or more lines per datagram, blank ones skipped", () => {
  const framer = new DatagramFramer({ maxMessage: 1024 });
  assert.equal(framer.addLines(encoder.encode("a\r\n\n b\nlast")), 3);
  assert.equal(framer.addLines(encoder.encode("x".repeat(1500) + "\n")), 2);
  assert.deepEqual(messagesOf(framer.take()!), [
    "a",
    " b",
    "last",
    "x".repeat(1024),
    "x".repeat(476),
  ]);
  assert.equal(framer.split, 1);
});

function binary(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** The framing rules applied to a whole stream at once: the oracle for the streaming framer. */
function reference(bytes: Uint8Array, max: number) {
  const messages: string[] = [];
  let errors = 0;
  let split = 0;
  const escape = (from: number, to: number) =>
    binary(bytes.subarray(from, to)).replace(
      /[\n\r\0]/g,
      (c) => "#0" + c.charCodeAt(0).toString(8).padStart(2, "0"),
    );
  const emit = (from: number, to: number) => {
    if (to - from > max) {
      split++;
      for (let p = from; p < to; p += max) messages.push(escape(p, Math.min(p + max, to)));
    } else if (!/^[ \t\n\v\f\r]*$/.test(binary(bytes.subarray(from, to)))) {
      messages.push(escape(from, to));
    }
  };
  let pos = 0;
  const len = bytes.length;
  while (pos < len) {
    if (bytes[pos] >= 0x30 && bytes[pos] <= 0x39) {
      let i = pos;
      let n = 0;
      while (i < len && i - pos < 9 && bytes[i] >= 0x30 && bytes[i] <= 0x39) {
        n = n * 10 + bytes[i++] - 0x30;
      }
      const header = i < len && i - pos <= 8 && bytes[i] === 32;
      if (bytes[pos] === 0x30) {
        if (header) errors++;
      } else if (header) {
        const from = i + 1;
        let to = from + n;
        if (to > len) {
          errors++;
          to = len;
        }
        let end = to;
        if (end > from && bytes[end - 1] === 10) end--;
        if (end > from && end < to && bytes[end - 1] === 13) end--;
        emit(from, end);
        pos = to;
        continue;
      } else {
        errors++;
      }
    }
    let nl = bytes.indexOf(10, pos);
    if (nl < 0) nl = len;
    emit(pos, nl > pos && bytes[nl - 1] === 13 ? nl - 1 : nl);
    pos = nl + 1;
  }
  return { messages, errors, split };
}

/** A random stream of the frames real and broken senders write. */
function randomStream(next: () => number, max: number): Uint8Array {
  const parts: number[] = [];
  const text = (n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = next();
      // Mostly letters, some spaces, digits and the bytes that need escaping.
      out.push(
        r < 0.8
          ? 0x61 + Math.floor(next() * 26)
          : r < 0.88
          ? 32
          : r < 0.94
          ? 0x30 + Math.floor(next() * 10)
          : [0, 10, 13, 9][Math.floor(next() * 4)],
      );
    }
    return out;
  };
  const size = () => {
    const r = next();
    return r < 0.7 ? Math.floor(next() * 120) : r < 0.9 ? max - 3 + Math.floor(next() * 6) : Math
      .floor(next() * 3 * max);
  };
  const frames = 1 + Math.floor(next() * 12);
  for (let f = 0; f < frames; f++) {
    const r = next();
    if (r < 0.45) {
      const body = text(size());
      const tail = next() < 0.5 ? [10] : next() < 0.5 ? [13, 10] : [];
      const counted = [...body, ...tail];
      parts.push(...encoder.encode(`${counted.length} `), ...counted);
      if (next() < 0.1) parts.push(10); // an LF outside the count
    } else if (r < 0.85) {
      const line = text(size()).filter((b) => b !== 10);
      if (line[0] >= 0x31 && line[0] <= 0x39) line[0] = 0x3c;
      parts.push(...line, ...(next() < 0.3 ? [13, 10] : [10]));
    } else if (r < 0.95) {
      // A bad LEN: digits not followed by a space, or too many digits.
      const bad = ["2026-11-30 raw", "1234567890 x", "0 zero", "012 lead", "0x1f fine"];
      parts.push(...encoder.encode(bad[Math.floor(next() * bad.length)]), 10);
    } else {
      parts.push(...encoder.encode(`${10 + Math.floor(next() * 50)} cut short`)); // last
      break;
    }
  }
  return new Uint8Array(parts);
}

Deno.test("syslog framing matches the whole-stream rules on random streams and random reads", () => {
  const max = MIN_MAX_MESSAGE;
  for (let seed = 1; seed <= 300; seed++) {
    const next = seededRandom(seed);
    const bytes = randomStream(next, max);
    const want = reference(bytes, max);
    const framer = new SyslogFramer({ maxMessage: max, bufferSize: 1 + Math.floor(next() * 3000) });
    const messages: string[] = [];
    const take = (frames: SyslogFrames | undefined) => {
      if (!frames) return;
      let start = 0;
      for (let i = 0; i < frames.lines; i++) {
        messages.push(binary(frames.data.subarray(start, frames.ends[i])));
        start = frames.ends[i] + 1;
      }
      assert.equal(start, frames.data.length);
    };
    let offset = 0;
    while (offset < bytes.length) {
      // Reads of random sizes, straight into the framer's buffer as a socket does.
      const room = framer.buffer;
      assert.ok(room.length > 0, "the buffer always has room");
      const n = Math.min(room.length, bytes.length - offset, 1 + Math.floor(next() * 700));
      room.set(bytes.subarray(offset, offset + n));
      offset += n;
      take(framer.commit(n));
    }
    take(framer.end());
    assert.deepEqual(
      { messages, errors: framer.errors, split: framer.split },
      want,
      `seed ${seed}`,
    );
  }
});

Deno.test("syslog framing gives the same pieces at every split point of long frames", () => {
  const max = MIN_MAX_MESSAGE;
  const input = octet("o".repeat(max + 1) + "\n") + octet("p".repeat(max) + "\r\n") +
    "l".repeat(2 * max + 1) + "\r\n" + octet("q".repeat(max + 2) + "x");
  const bytes = encoder.encode(input);
  const results = new Set<string>();
  for (let a = 0; a <= bytes.length; a += 7) {
    const got = frame([bytes.subarray(0, a), bytes.subarray(a)], { maxMessage: max });
    results.add(JSON.stringify([got.messages, got.errors, got.split]));
  }
  assert.deepEqual([...results].map((r) => JSON.parse(r)), [[
    [
      "o".repeat(max),
      "o",
      "p".repeat(max),
      "l".repeat(max),
      "l".repeat(max),
      "l",
      "q".repeat(max),
      "qqx",
    ],
    0,
    3,
  ]]);
});
