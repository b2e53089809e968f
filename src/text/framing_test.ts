import assert from "node:assert/strict";
import { seededRandom } from "../_seeded_random.ts";
import { type FramedLines, LineFramer } from "./framing.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Feeds `chunks` one read at a time and collects what the framer stores, as text. */
function frame(chunks: (string | Uint8Array)[], options = {}): { text: string; lines: number } {
  const framer = new LineFramer(options);
  let text = "";
  let lines = 0;
  const take = (framed: FramedLines | undefined) => {
    if (!framed) return;
    text += decoder.decode(framed.data);
    lines += framed.lines;
  };
  for (const chunk of chunks) {
    take(framer.push(typeof chunk === "string" ? encoder.encode(chunk) : chunk));
  }
  take(framer.end());
  return { text, lines };
}

Deno.test("framing joins a line split across reads", () => {
  assert.deepEqual(frame(["Error: Data", "base connection ", "failed\nInfo: ok\n"]), {
    text: "Error: Database connection failed\nInfo: ok\n",
    lines: 2,
  });
});

Deno.test("framing strips one trailing CR, also when CR and LF arrive in different reads", () => {
  assert.deepEqual(frame(["a\r\nb\r", "\nc\r\r\n"]), { text: "a\nb\nc\r\n", lines: 3 });
});

Deno.test("framing skips empty and whitespace-only lines", () => {
  assert.deepEqual(frame(["\n\n  \t \nkeep me\n\r\n \r\n", "x\n \n"]), {
    text: "keep me\nx\n",
    lines: 2,
  });
  assert.deepEqual(frame(["\n", "   ", "\n"]), { text: "", lines: 0 });
});

Deno.test("framing keeps leading and inner whitespace of real lines", () => {
  assert.deepEqual(frame(["  indented\tline  \n"]), { text: "  indented\tline  \n", lines: 1 });
});

Deno.test("framing stores the last line without a trailing newline at the end", () => {
  assert.deepEqual(frame(["first\nlast words"]), { text: "first\nlast words\n", lines: 2 });
  assert.deepEqual(frame(["only\r"]), { text: "only\n", lines: 1 });
});

Deno.test("framing splits over-long lines into maxLine pieces and drops nothing", () => {
  const long = "a".repeat(10) + "b".repeat(10) + "c".repeat(5);
  assert.deepEqual(frame([`x\n${long}\ny\n`], { maxLine: 10 }), {
    text: `x\n${"a".repeat(10)}\n${"b".repeat(10)}\n${"c".repeat(5)}\ny\n`,
    lines: 5,
  });
});

Deno.test("framing emits pieces of a long partial line before its newline arrives", () => {
  const framer = new LineFramer({ maxLine: 8, bufferSize: 4 });
  const piece = framer.push(encoder.encode("0123456789"));
  assert.equal(decoder.decode(piece?.data), "01234567\n");
  assert.equal(framer.pending, 2, "only the remainder is held");
  assert.equal(decoder.decode(framer.push(encoder.encode("ab\n"))?.data), "89ab\n");
});

Deno.test("framing handles a line far longer than the read buffer, byte by byte", () => {
  const line = "z".repeat(5000);
  const chunks = [...line, "\n"].map((ch) => ch);
  const { text, lines } = frame(chunks, { maxLine: 4096, bufferSize: 16 });
  assert.equal(text, "z".repeat(4096) + "\n" + "z".repeat(904) + "\n");
  assert.equal(lines, 2);
});

Deno.test("framing passes invalid UTF-8 and NUL bytes through unchanged", () => {
  const binary = new Uint8Array([0xff, 0x00, 0xfe, 0x41, 10, 0x80, 0x00, 10]);
  const framer = new LineFramer();
  const framed = framer.push(binary);
  assert.deepEqual(framed?.data, binary);
  assert.equal(framed?.lines, 2);
});

Deno.test("framing a read buffer directly returns the lines completed by each commit", () => {
  const framer = new LineFramer({ bufferSize: 64 });
  const send = (text: string) => {
    const bytes = encoder.encode(text);
    framer.buffer.set(bytes);
    const framed = framer.commit(bytes.length);
    return framed ? decoder.decode(framed.data) : undefined;
  };
  assert.equal(send("one\ntw"), "one\n");
  assert.equal(send("o\nthr"), "two\n");
  assert.equal(send("ee"), undefined);
  assert.equal(decoder.decode(framer.end()?.data), "three\n");
  assert.equal(framer.end(), undefined, "nothing is stored twice");
});

Deno.test("framing grows the buffer of a busy connection and keeps lines intact", () => {
  const framer = new LineFramer({ bufferSize: 256 * 1024 });
  const start = framer.buffer.length;
  const stream = encoder.encode(
    Array.from({ length: 10_000 }, (_, i) => `line ${i} `.padEnd(99, ".") + "\n").join(""),
  );
  let offset = 0;
  let text = "";
  while (offset < stream.length) {
    const free = framer.buffer;
    const n = Math.min(free.length, stream.length - offset);
    free.set(stream.subarray(offset, offset + n));
    offset += n;
    const framed = framer.commit(n);
    if (framed) text += decoder.decode(framed.data);
  }
  assert.ok(framer.buffer.length > start, "reads that fill the buffer make it grow");
  assert.ok(framer.buffer.length <= 256 * 1024);
  assert.equal(text, decoder.decode(stream));
});

Deno.test("framing rejects a bad maxLine and an oversized commit", () => {
  assert.throws(() => new LineFramer({ maxLine: 0 }), RangeError);
  const framer = new LineFramer({ bufferSize: 8 });
  assert.throws(() => framer.commit(9), RangeError);
});

/** The rules written plainly, line by line: what the fast framer must agree with. */
function referenceFrame(input: Uint8Array, maxLine: number): Uint8Array {
  const out: number[] = [];
  const lines: number[][] = [[]];
  for (const byte of input) byte === 10 ? lines.push([]) : lines.at(-1)!.push(byte);
  if (lines.at(-1)!.length === 0) lines.pop();
  for (const raw of lines) {
    const line = raw.at(-1) === 13 ? raw.slice(0, -1) : raw;
    if (line.length <= maxLine && line.every((b) => b === 32 || (b >= 9 && b <= 13))) continue;
    for (let i = 0; i < line.length; i += maxLine) out.push(...line.slice(i, i + maxLine), 10);
  }
  return new Uint8Array(out);
}

/** A random case: bytes of `alphabet`, a framer of random limits, and the generator for more. */
interface RandomCase {
  round: number;
  input: Uint8Array;
  maxLine: number;
  framer: LineFramer;
  random: () => number;
}

/** Runs `check` on 2,000 random cases. */
function randomCases(seed: number, alphabet: number[], check: (c: RandomCase) => void): void {
  const random = seededRandom(seed);
  for (let round = 0; round < 2000; round++) {
    const maxLine = 1 + Math.floor(random() * 40);
    const input = Uint8Array.from(
      { length: Math.floor(random() * 600) },
      () => alphabet[Math.floor(random() * alphabet.length)],
    );
    const framer = new LineFramer({ maxLine, bufferSize: 1 + Math.floor(random() * 64) });
    check({ round, input, maxLine, framer, random });
  }
}

Deno.test("framing agrees with the plain rules on random input split at random places", () => {
  const alphabet = [10, 10, 13, 32, 9, 0, 0xff, 65, 66, 67, 68, 69, 70, 71];
  randomCases(42, alphabet, ({ round, input, maxLine, framer, random }) => {
    const got: number[] = [];
    let lines = 0;
    const take = (framed: FramedLines | undefined) => {
      if (framed) {
        got.push(...framed.data);
        lines += framed.lines;
      }
    };
    for (let at = 0; at < input.length;) {
      const n = Math.min(input.length - at, 1 + Math.floor(random() * 70));
      take(framer.push(input.subarray(at, at + n)));
      at += n;
    }
    take(framer.end());
    const want = referenceFrame(input, maxLine);
    assert.deepEqual(new Uint8Array(got), want, `round ${round}`);
    assert.equal(lines, want.filter((b) => b === 10).length, `round ${round}: line count`);
  });
});

Deno.test("framing with lineEnds gives each line's end, whatever it rewrote (CR, blanks, splits)", () => {
  const alphabet = [10, 10, 13, 32, 9, 65, 66, 67, 68, 69, 70, 71, 72, 73];
  randomCases(7, alphabet, ({ round, input, framer, random }) => {
    framer.lineEnds = true;
    const check = (framed: FramedLines | undefined) => {
      if (!framed) return;
      const want: number[] = [];
      framed.data.forEach((b, i) => b === 10 && want.push(i + 1));
      assert.deepEqual(Array.from(framed.ends ?? []), want, `round ${round}`);
      assert.equal(framed.lines, want.length);
    };
    // Read as a socket does: into the framer's own buffer, as much as fits.
    for (let at = 0; at < input.length;) {
      const room = framer.buffer;
      const n = Math.min(room.length, input.length - at, 1 + Math.floor(random() * 70));
      room.set(input.subarray(at, at + n));
      check(framer.commit(n));
      at += n;
    }
    check(framer.end());
  });
  const off = new LineFramer();
  off.buffer.set(encoder.encode("a\nb\n"));
  assert.equal(off.commit(4)?.ends, undefined);
});
