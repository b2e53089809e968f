import assert from "node:assert/strict";
import type { Batch } from "../pipeline/batch.ts";
import { TestSink } from "../pipeline/_test_sink.ts";
import { TcpInput } from "./tcp.ts";

/** Keeps, for each batch, whether it came with its lines' ends and whether they were right. */
class EndsSink extends TestSink {
  readonly name = "ends";
  readonly seen: { lines: number; ends: "none" | "right" | "wrong" }[] = [];
  #wake = () => {};
  write(batch: Batch): boolean {
    let ends: "none" | "right" | "wrong" = "none";
    if (batch.ends !== undefined) {
      const want: number[] = [];
      batch.data.forEach((b, i) => b === 10 && want.push(i + 1));
      ends = JSON.stringify(Array.from(batch.ends)) === JSON.stringify(want) ? "right" : "wrong";
    }
    this.seen.push({ lines: batch.lines, ends });
    this.#wake();
    return true;
  }
  /** Resolves once `lines` lines were written in all. */
  async lines(lines: number): Promise<void> {
    while (this.seen.reduce((n, s) => n + s.lines, 0) < lines) {
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }
}

Deno.test("TcpInput: batches carry their lines' ends only while a sink reads them", async () => {
  const sink = new EndsSink();
  const input = TcpInput.listen({ hostname: "127.0.0.1", port: 0, lineEnds: true }, sink);
  try {
    using conn = await Deno.connect({ hostname: "127.0.0.1", port: input.addr.port });
    const write = async (text: string) => {
      const data = new TextEncoder().encode(text);
      for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
    };
    // CRs stripped and a blank line skipped: the ends are those of what is stored.
    await write("one\r\ntwo\n\n  \nthree\n");
    await sink.lines(3);
    assert.ok(sink.seen.every((s) => s.ends === "right"), JSON.stringify(sink.seen));
    // A reload that leaves no sink reading them: from the next read on, none.
    input.lineEnds = false;
    const before = sink.seen.length;
    await write("four\n");
    await sink.lines(4);
    assert.deepEqual(sink.seen.slice(before).map((s) => s.ends), ["none"]);
  } finally {
    await input.close();
  }
});
