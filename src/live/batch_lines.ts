/**
 * The lines of one batch, as the live hub's subscribers need them. The hub hands each batch to
 * every subscriber; most want a few lines (their queue has little room), none (their queue is
 * full, or the batch holds nothing their `grep` looks for), or only those holding some text.
 * Splitting every batch into a string per line for them would cost more than ingesting it, so
 * the hub queues byte ranges, found here, and decodes only what a subscriber sends.
 *
 * A filter needs text: the batch is then decoded once into one string (fast: ASCII decodes at
 * several GB/s), `grep` searches it whole, so lines without the text are never looked at one by
 * one, and a line's text is a slice of it, which lives only while the filter looks at it.
 *
 * @module
 */

// ignoreBOM: a line may start with U+FEFF and must reach subscribers as sent.
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * A lazily indexed view of a batch's newline-terminated lines.
 *
 * @example
 * ```ts
 * const lines = new BatchLines(batch.data, batch.lines);
 * lines.text(0); // the first line, without its newline
 * lines.find(0, "ERROR"); // the first line holding "ERROR", or lines.count
 * lines.bytes(0, 2); // the first two lines' bytes, newlines included
 * ```
 */
export class BatchLines {
  /** How many lines the batch holds. */
  readonly count: number;
  readonly #data: Uint8Array;
  #all: string | undefined;
  /** Index in `#all` just past the newline ending each line found so far. */
  readonly #ends: number[] = [];
  /** Byte offset just past the newline ending each line found so far. */
  readonly #byteEnds: number[] = [];

  /**
   * @param data newline-terminated lines (borrowed: use the view during the batch's write only).
   * @param count how many lines `data` holds.
   */
  constructor(data: Uint8Array, count: number) {
    this.#data = data;
    this.count = count;
  }

  /** Line `i` decoded as UTF-8 (invalid bytes become U+FFFD), without its newline. */
  text(i: number): string {
    const all = this.#text();
    const start = i === 0 ? 0 : this.#end(i - 1);
    const end = this.#end(i);
    return all.slice(start, all.charCodeAt(end - 1) === 10 ? end - 1 : end);
  }

  /** Lines `from` to `to` (excluded) as a view of the batch's bytes, newlines included. */
  bytes(from: number, to: number): Uint8Array {
    if (from >= to) return this.#data.subarray(0, 0);
    return this.#data.subarray(from === 0 ? 0 : this.#byteEnd(from - 1), this.#byteEnd(to - 1));
  }

  /**
   * How many lines from `from` on fit in `room`, each costing its bytes plus `overhead`: the
   * rest of the batch at once when it fits, else line by line (the line ends are remembered for
   * the next caller).
   */
  fitting(from: number, room: number, overhead: number): number {
    if (from >= this.count) return 0;
    const start = from === 0 ? 0 : this.#byteEnd(from - 1);
    if (this.#data.length - start + (this.count - from) * overhead <= room) {
      return this.count - from;
    }
    let i = from;
    while (i < this.count && this.#byteEnd(i) - start + (i - from + 1) * overhead <= room) i++;
    return i - from;
  }

  /**
   * The index of the first line at or after `i` whose text holds `needle` (a match across a
   * newline counts for the line it starts in), or {@linkcode BatchLines.count} when none does.
   */
  find(i: number, needle: string): number {
    if (i >= this.count) return this.count;
    const at = this.#text().indexOf(needle, i === 0 ? 0 : this.#end(i - 1));
    if (at === -1) return this.count;
    let line = i;
    while (line < this.count && this.#end(line) <= at) line++;
    return line;
  }

  #text(): string {
    return this.#all ??= decoder.decode(this.#data);
  }

  /** Byte offset just past line `i`'s newline (the end of the data if it has none). */
  #byteEnd(i: number): number {
    const ends = this.#byteEnds;
    while (ends.length <= i) {
      const from = ends.length === 0 ? 0 : ends[ends.length - 1];
      const nl = this.#data.indexOf(10, from);
      ends.push(nl === -1 ? this.#data.length : nl + 1);
    }
    return ends[i];
  }

  /** Index just past line `i`'s newline (the end of the text if it has none). */
  #end(i: number): number {
    const ends = this.#ends;
    const all = this.#text();
    while (ends.length <= i) {
      const from = ends.length === 0 ? 0 : ends[ends.length - 1];
      const nl = all.indexOf("\n", from);
      ends.push(nl === -1 ? all.length : nl + 1);
    }
    return ends[i];
  }
}
