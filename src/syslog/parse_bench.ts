/**
 * Throughput of syslog framing and parsing on 100-byte messages, run by hand (not part of
 * `deno test`): `deno bench src/syslog/parse_bench.ts`. Each iteration handles 10,000 messages,
 * so messages/s = 10,000 × iter/s.
 *
 * @module
 */

import { SyslogFramer } from "./frame.ts";
import { SyslogParser } from "./parse.ts";

const encoder = new TextEncoder();
const COUNT = 10_000;
const NOW = Date.UTC(2026, 10, 30, 10, 35);

/** `COUNT` distinct messages of exactly 100 bytes from `make(i)`, padded with `x`. */
function messages(make: (i: number) => string): string[] {
  const out: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    const m = make(i);
    out.push(m + "x".repeat(Math.max(0, 100 - m.length)));
  }
  return out;
}

const rfc5424 = messages((i) =>
  `<134>1 2026-11-30T10:34:18.155242+00:00 web-${i % 8} nginx 4242 - - request ${i} `
);
const rfc3164 = messages((i) => `<134>Nov 30 10:34:18 web-${i % 8} nginx[4242]: request ${i} `);

const octetStream = encoder.encode(rfc5424.map((m) => `${m.length} ${m}`).join(""));
const octetLfStream = encoder.encode(rfc5424.map((m) => `${m.length + 1} ${m}\n`).join(""));
const lfStream = encoder.encode(rfc3164.map((m) => m + "\n").join(""));

/** Feeds `stream` in 64 KiB reads; calls `each` per batch. */
function frameAll(
  framer: SyslogFramer,
  stream: Uint8Array,
  each: (data: Uint8Array, ends: Uint32Array, lines: number) => void,
): void {
  let offset = 0;
  while (offset < stream.length) {
    const buffer = framer.buffer;
    const n = Math.min(buffer.length, 64 * 1024, stream.length - offset);
    buffer.set(stream.subarray(offset, offset + n));
    offset += n;
    const frames = framer.commit(n);
    if (frames) each(frames.data, frames.ends, frames.lines);
  }
}

const framer = new SyslogFramer();
const parser = new SyslogParser();
let sink = 0;
const count = (_data: Uint8Array, _ends: Uint32Array, lines: number) => {
  sink += lines;
};
const parseEach = (data: Uint8Array, ends: Uint32Array, lines: number) => {
  let start = 0;
  for (let i = 0; i < lines; i++) {
    const msg = parser.parse(data, start, ends[i], NOW);
    sink += msg.severity + (msg.host === undefined ? 0 : 1) + (msg.app === undefined ? 0 : 1);
    start = ends[i] + 1;
  }
};

Deno.bench("frame octet-counted, 10k x 100 B", { group: "frame" }, () => {
  frameAll(framer, octetStream, count);
});
Deno.bench("frame octet-counted with LF inside, 10k x 100 B", { group: "frame" }, () => {
  frameAll(framer, octetLfStream, count);
});
Deno.bench("frame LF lines, 10k x 100 B", { group: "frame" }, () => {
  frameAll(framer, lfStream, count);
});

const bytes5424 = rfc5424.map((m) => encoder.encode(m));
const bytes3164 = rfc3164.map((m) => encoder.encode(m));
Deno.bench("parse RFC 5424 (severity, host, app), 10k x 100 B", { group: "parse" }, () => {
  for (const b of bytes5424) {
    const msg = parser.parse(b, 0, b.length, NOW);
    sink += msg.severity + (msg.host === undefined ? 0 : 1) + (msg.app === undefined ? 0 : 1);
  }
});
Deno.bench("parse RFC 3164 (severity, host, app), 10k x 100 B", { group: "parse" }, () => {
  for (const b of bytes3164) {
    const msg = parser.parse(b, 0, b.length, NOW);
    sink += msg.severity + (msg.host === undefined ? 0 : 1) + (msg.app === undefined ? 0 : 1);
  }
});
Deno.bench("frame + parse octet-counted RFC 5424, 10k x 100 B", { group: "both" }, () => {
  frameAll(framer, octetLfStream, parseEach);
});
Deno.bench("frame + parse LF RFC 3164, 10k x 100 B", { group: "both" }, () => {
  frameAll(framer, lfStream, parseEach);
});

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
