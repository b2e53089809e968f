/**
 * A batch's record columns as the live hub needs them: each line's level and fields, for the
 * subscribers' level and field filters, for the events they read, and for what queued fields
 * cost. Made only for a batch that has a column: a plain batch costs the hub nothing here.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";
import type { Fields } from "../pipeline/record.ts";

/** Each line's fields, `undefined` for a line without. */
export type FieldsColumn = readonly (Readonly<Fields> | undefined)[];

/** What a line's fields cost a queue besides the object itself, in bytes. */
const FIELDS_OVERHEAD = 16;
/** What one field costs besides its key's and a string value's characters. */
const FIELD_OVERHEAD = 16;
/** What a number or boolean value costs. */
const SCALAR_BYTES = 8;

/**
 * The estimated memory of a line's fields, in bytes: its keys' and string values' characters
 * plus a little per field. What a live queue or the ring counts for keeping them.
 */
export function fieldsBytes(fields: Readonly<Fields> | undefined): number {
  if (fields === undefined) return 0;
  let bytes = FIELDS_OVERHEAD;
  for (const key in fields) {
    const value = fields[key];
    bytes += key.length + FIELD_OVERHEAD +
      (typeof value === "string" ? value.length : SCALAR_BYTES);
  }
  return bytes;
}

/**
 * A batch's `levels` and `fields` columns, with what the fields of any run of lines cost (found
 * once, on first use, and shared by every subscriber).
 *
 * @example
 * ```ts
 * const columns = BatchColumns.of(batch); // undefined for a batch without levels and fields
 * columns?.levelsOf(2, 5); // a copy of lines 2 to 4's level codes
 * columns?.bytes(2, 5); // what lines 2 to 4's fields cost a queue
 * ```
 */
export class BatchColumns {
  /** Each line's level code (`record.ts`), when the batch has them. Borrowed. */
  readonly levels: Uint8Array | undefined;
  /** Each line's fields, when the batch has them. The objects are never changed. */
  readonly fields: FieldsColumn | undefined;
  /** `#ends[i]`: what the fields of lines 0 to i - 1 cost; made on first use. */
  #ends: Float64Array | undefined;

  /**
   * The columns of `batch`; `undefined` when it has neither, so a plain batch costs nothing.
   */
  static of(batch: Pick<Batch, "levels" | "fields">): BatchColumns | undefined {
    const { levels, fields } = batch;
    return levels === undefined && fields === undefined
      ? undefined
      : new BatchColumns(levels, fields);
  }

  /**
   * @param levels each line's level code, or `undefined`.
   * @param fields each line's fields, or `undefined`.
   */
  constructor(levels: Uint8Array | undefined, fields: FieldsColumn | undefined) {
    this.levels = levels;
    this.fields = fields;
  }

  /** What the fields of lines `from` to `to` (excluded) cost, in bytes. */
  bytes(from: number, to: number): number {
    const fields = this.fields;
    if (fields === undefined || from >= to) return 0;
    if (this.#ends === undefined) {
      const ends = new Float64Array(fields.length + 1);
      for (let i = 0; i < fields.length; i++) ends[i + 1] = ends[i] + fieldsBytes(fields[i]);
      this.#ends = ends;
    }
    return this.#ends[to] - this.#ends[from];
  }

  /** A copy of lines `from` to `to`'s level codes; `undefined` without levels. */
  levelsOf(from: number, to: number): Uint8Array | undefined {
    return this.levels?.slice(from, to);
  }

  /** Lines `from` to `to`'s fields (the same objects); `undefined` without fields. */
  fieldsOf(from: number, to: number): FieldsColumn | undefined {
    return this.fields?.slice(from, to);
  }
}
