/**
 * Live-tail cursors: `<epoch>-<line id>`, e.g. `mfz3k2a1x7q-41532`. Line ids restart at 1 with
 * every run of the server, so an id alone would name different lines before and after a restart
 * and a tail resuming with it would silently skip the new run's first lines. The epoch names the
 * run: a cursor from another run resumes from the oldest line the new run still holds.
 *
 * @module
 */

/** A parsed cursor. */
export interface Cursor {
  /** The run that gave the id; `undefined` for a bare id (from a server before epochs). */
  readonly epoch: string | undefined;
  /** The last line id the client received. */
  readonly id: number;
}

const CURSOR = /^(?:([0-9a-z]{1,24})-)?(\d{1,15})$/;

/**
 * A new epoch: the boot time in base 36 and random digits, so two runs never share one even
 * when the clock steps back.
 */
export function newEpoch(): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(36).padStart(7, "0");
  return Date.now().toString(36) + random.slice(0, 4);
}

/** The cursor of line `id` in the run `epoch`. */
export function formatCursor(epoch: string, id: number): string {
  return `${epoch}-${id}`;
}

/**
 * Parses a `Last-Event-ID`: `<epoch>-<id>` or a bare id. Throws `RangeError` for anything else.
 *
 * @example
 * ```ts
 * parseCursor("mfz3k2a1x7q-42"); // { epoch: "mfz3k2a1x7q", id: 42 }
 * parseCursor("42"); // { epoch: undefined, id: 42 }
 * ```
 */
export function parseCursor(text: string): Cursor {
  const match = CURSOR.exec(text);
  const id = match ? Number(match[2]) : NaN;
  if (!match || !Number.isSafeInteger(id)) {
    throw new RangeError(
      `Last-Event-ID must be a cursor such as "mfz3k2a1x7q-42" (run, line id), got "${text}"`,
    );
  }
  return { epoch: match[1], id };
}
