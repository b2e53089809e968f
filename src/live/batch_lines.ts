/**
 * The lines of one batch, as the live hub's subscribers need them. The hub hands each batch to
 * every subscriber; most want a few lines (their queue has little room), none (their queue is
 * full, or the batch holds nothing their `grep` looks for), or only those holding some text.
 * Splitting every batch into a string per line for them would cost more than ingesting it.
 *
 * A line is decoded on its own when someone needs it, into a string of its own: a queued line must
 * not keep its whole batch alive (a slice of a decoded batch would). `grep` runs on the whole batch
 * decoded once into one string (fast: ASCII decodes at several GB/s), so lines without the text
 * are never decoded one by one.
 *
 * @module
 */

// ignoreBOM: a line may start with U+FEFF and must reach subscribers as sent.
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * A lazily decoded view of a batch's newline-terminated lines.
 *
 * @example
 * ```ts
 * const lines = new BatchLines(batch.data, batch.lines);
 * lines.text(0); // the first line, without its newline
 * lines.find(0, "ERROR"); // the first line holding "ERROR", or lines.count
 * ```
 */
export class BatchLines {
  /** How many lines the batch holds. */
  readonly count: number;
  readonly #data: Uint8Array;
  #all: string | undefined;
  /** Index in `#all` just past the newline ending each line found so far (for `find`). */
  readonly #ends: number[] = [];
  /** Byte offset just past the newline ending each line found so far (for `text`). */
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
    const data = this.#data;
    const start = i === 0 ? 0 : this.#byteEnd(i - 1);
    const end = this.#byteEnd(i);
    return decoder.decode(data.subarray(start, data[end - 1] === 10 ? end - 1 : end));
  }

  /**
   * The index of the first line at or after `i` whose text holds `needle` (a match across a
   * newline counts for the line it starts in), or {@linkcode BatchLines.count} when none does.
   */
  find(i: number, needle: string): number {
    if (i >= this.count) return this.count;
    const at = this.#text().indexOf(needle, this.#start(i));
    if (at === -1) return this.count;
    let line = i;
    while (line < this.count && this.#end(line) <= at) line++;
    return line;
  }

  #text(): string {
    return this.#all ??= decoder.decode(this.#data);
  }

  #start(i: number): number {
    return i === 0 ? 0 : this.#end(i - 1);
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
