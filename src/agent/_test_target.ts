/**
 * Test helpers for the agent: an in-memory target with the server's idempotency rule, and a
 * writer of unique lines.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { RetryConfig } from "./config.ts";
import type { DeliveredBatch, StreamTarget } from "./tailer.ts";

/** Retries fast enough for unit tests: 5 ms doubling to 50 ms, a 2 s answer deadline. */
export const FAST_RETRY: RetryConfig = {
  initialMs: 5,
  maxMs: 50,
  timeoutMs: 2000,
  failoverAfter: 2,
  failbackMs: 300,
  resendWindowMs: 60_000,
};

const decoder = new TextDecoder();

/** A target that stores lines in memory and refuses replays as the server does. */
export class MemoryTarget implements StreamTarget {
  /** Lines stored, in order. */
  readonly lines: string[] = [];
  /** High-water mark per stream. */
  readonly marks = new Map<string, number>();
  /** Batches delivered (duplicates included). */
  readonly batches: DeliveredBatch[] = [];
  #paused: { promise: Promise<void>; resolve: () => void } | undefined;

  /** Holds deliveries until {@linkcode resume}, as a server that does not answer. */
  pause(): void {
    this.#paused ??= Promise.withResolvers<void>();
  }

  /** Lets deliveries through again. */
  resume(): void {
    this.#paused?.resolve();
    this.#paused = undefined;
  }

  /** Copies the batch: the data is borrowed. */
  prepare(data: Uint8Array): Promise<unknown> {
    return Promise.resolve(data.slice());
  }

  /** Stores the batch unless its stream's mark is already at or past its offset. */
  async deliver(payload: unknown, batch: DeliveredBatch, signal: AbortSignal): Promise<void> {
    while (this.#paused !== undefined) {
      const { promise } = this.#paused;
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        promise.then(() => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    }
    signal.throwIfAborted();
    this.batches.push(batch);
    const mark = this.marks.get(batch.stream);
    if (mark !== undefined && batch.offset <= mark) return;
    this.marks.set(batch.stream, batch.offset);
    const text = decoder.decode(payload as Uint8Array);
    for (const line of text.split("\n")) if (line !== "") this.lines.push(line);
  }
}

/** Polls `condition` every 10 ms until it holds; fails with `message()` after `timeoutMs`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  message: () => string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`Timed out after ${timeoutMs} ms: ${message()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Lines `from` to `to - 1` of writer `id`: `w<id> <n> <filler>`. */
export function lines(id: number, from: number, to: number): string {
  let text = "";
  for (let i = from; i < to; i++) text += `w${id} ${i} ${"x".repeat(20 + (i % 7))}\n`;
  return text;
}

/** Counts each expected line of writer `id` (0 to `count`) in `seen`: missing and duplicated. */
export function tally(
  seen: readonly string[],
  id: number,
  count: number,
): { missing: number[]; duplicated: number[]; other: number } {
  const counts = new Map<number, number>();
  let other = 0;
  for (const line of seen) {
    const match = /^w(\d+) (\d+) x+$/.exec(line);
    if (!match || Number(match[1]) !== id) {
      other++;
      continue;
    }
    const n = Number(match[2]);
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  const missing: number[] = [];
  const duplicated: number[] = [];
  for (let i = 0; i < count; i++) {
    const c = counts.get(i) ?? 0;
    if (c === 0) missing.push(i);
    if (c > 1) duplicated.push(i);
  }
  return { missing, duplicated, other };
}

/**
 * Listens on a free loopback port below 32768 (out of the kernel's ephemeral range, so no
 * outgoing connection takes it while a test stops and starts a server on it).
 */
export function listenLow(): Deno.TcpListener {
  for (let i = 0; i < 500; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    try {
      return Deno.listen({ hostname: "127.0.0.1", port });
    } catch {
      // Taken: try another.
    }
  }
  throw new Error("No free port below 32768");
}

/** A free loopback port below 32768, nothing listening on it. */
export function lowPort(): number {
  const listener = listenLow();
  const { port } = listener.addr;
  listener.close();
  return port;
}

/**
 * A TCP proxy in front of a port that can freeze: while {@linkcode frozen}, connections are
 * accepted and then held, never read nor answered (a half-open server); otherwise they are
 * forwarded. Frozen connections stay frozen until {@linkcode close}.
 */
export class FreezingProxy {
  /** The port clients connect to (below 32768). */
  readonly port: number;
  /** Whether new connections are held rather than forwarded. */
  frozen = true;
  /** Connections held so far. */
  held = 0;
  readonly #listener: Deno.TcpListener;
  readonly #target: number;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;

  /** @param target the port to forward to, on 127.0.0.1. */
  constructor(target: number) {
    this.#target = target;
    this.#listener = listenLow();
    this.port = this.#listener.addr.port;
    this.#accepting = this.#accept();
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const conn of this.#conns) closeQuietly(conn);
    await Promise.all(this.#tasks);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await this.#listener.accept();
      } catch {
        return;
      }
      this.#conns.add(client);
      if (this.frozen) {
        this.held++;
        continue;
      }
      const task = this.#forward(client).finally(() => this.#tasks.delete(task));
      this.#tasks.add(task);
    }
  }

  async #forward(client: Deno.Conn): Promise<void> {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
    } catch {
      closeQuietly(client);
      return;
    }
    this.#conns.add(server);
    const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (;;) {
          const n = await from.read(buf);
          if (n === null) break;
          let at = 0;
          while (at < n) at += await to.write(buf.subarray(at, n));
        }
      } catch {
        // Cut.
      }
      closeQuietly(from);
      closeQuietly(to);
    };
    await Promise.all([pipe(client, server), pipe(server, client)]);
    this.#conns.delete(client);
    this.#conns.delete(server);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}
