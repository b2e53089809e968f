/**
 * Test helpers for the agent: fast retries, free low ports and a proxy that can freeze; the
 * tailer's helpers (an in-memory target, unique lines, a bounded poll) are re-exported.
 *
 * @module
 */

import type { RetryConfig } from "./config.ts";
import { bindFreePort } from "../../tests/_server.ts";

export { lines, MemoryTarget, tally, until } from "../files/_test_target.ts";

/** Retries fast enough for unit tests: 5 ms doubling to 50 ms, a 2 s answer deadline. */
export const FAST_RETRY: RetryConfig = {
  initialMs: 5,
  maxMs: 50,
  timeoutMs: 2000,
  failoverAfter: 2,
  failbackMs: 300,
  resendWindowMs: 60_000,
};

/**
 * Listens on a free loopback port below 32768 (out of the kernel's ephemeral range, so no
 * outgoing connection takes it while a test stops and starts a server on it).
 */
export function listenLow(): Deno.TcpListener {
  return bindFreePort((port) => Deno.listen({ hostname: "127.0.0.1", port }));
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
