/**
 * A minimal protobuf writer for hand-built test samples (fields in any order, any wire type).
 *
 * @module
 */

/** Appends protobuf fields; `u8()` gives the bytes. */
export class ProtoWriter {
  bytes: number[] = [];

  /** A varint; negative numbers as 10-byte two's complement, as `int64` encodes them. */
  varint(n: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(n));
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
    return this;
  }

  /** A field's tag. */
  tag(field: number, wire: number): this {
    return this.varint(field << 3 | wire);
  }

  /** A length-delimited field: an embedded message, bytes or UTF-8 text. */
  len(field: number, body: ProtoWriter | Uint8Array | string): this {
    const b = typeof body === "string"
      ? [...new TextEncoder().encode(body)]
      : body instanceof ProtoWriter
      ? body.bytes
      : [...body];
    this.tag(field, 2).varint(b.length);
    for (const x of b) this.bytes.push(x);
    return this;
  }

  /** A fixed64 field. */
  fixed64(field: number, n: bigint): this {
    this.tag(field, 1);
    for (let i = 0n; i < 8n; i++) this.bytes.push(Number((n >> (8n * i)) & 0xffn));
    return this;
  }

  u8(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}
