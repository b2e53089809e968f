/**
 * Raw TCP input: newline-delimited lines, one async handler per connection.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import type { BatchMeta } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import { LineFramer } from "./framing.ts";

/** Configuration of the TCP input. */
export interface TcpInputConfig {
  /** Address to bind. Default `0.0.0.0`. */
  hostname?: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Longer lines are split into pieces of this many bytes. Default 1 MiB. */
  maxLine?: number;
  /** Per-connection read buffer. Default 64 KiB. */
  bufferSize?: number;
}

/** Options of {@linkcode TcpInput.close}. */
export interface TcpCloseOptions {
  /** Connections are drained until no bytes arrive for this long, in ms. Default 200. */
  quietMs?: number;
  /** Draining stops after this long even if clients keep sending, in ms. Default 2000. */
  drainMs?: number;
}

const log = getLogger(["logboom", "ingest", "tcp"]);

/**
 * Listens for raw TCP lines and writes them to a sink, one batch per read.
 *
 * @example
 * ```ts
 * const input = TcpInput.listen({ port: 8080 }, router);
 * // ... on shutdown:
 * await input.close(); // stops accepting, drains connections, stores their last lines
 * ```
 */
export class TcpInput {
  /** Always `tcp`. */
  readonly name = "tcp";
  /** The address actually bound (the port is filled in when 0 was asked). */
  readonly addr: Deno.NetAddr;
  readonly #listener: Deno.Listener;
  readonly #sink: Sink;
  readonly #maxLine: number | undefined;
  readonly #bufferSize: number | undefined;
  readonly #conns = new Set<Deno.Conn>();
  readonly #handlers = new Set<Promise<void>>();
  /** Bytes read plus connections accepted: how close() tells that clients went quiet. */
  #activity = 0;
  #closing = false;
  readonly #accepting: Promise<void>;

  private constructor(listener: Deno.Listener, sink: Sink, config: TcpInputConfig) {
    this.#listener = listener;
    this.addr = listener.addr as Deno.NetAddr;
    this.#sink = sink;
    this.#maxLine = config.maxLine;
    this.#bufferSize = config.bufferSize;
    this.#accepting = this.#accept();
  }

  /** Binds the port (throws `Deno.errors.AddrInUse` at once when taken) and starts accepting. */
  static listen(config: TcpInputConfig, sink: Sink): TcpInput {
    const { hostname = "0.0.0.0", port } = config;
    const listener = Deno.listen({ hostname, port, transport: "tcp" });
    return new TcpInput(listener, sink, config);
  }

  /** Open connections. */
  get connections(): number {
    return this.#conns.size;
  }

  /**
   * Drains, then stops: keeps accepting and reading until no bytes and no connection arrived for
   * `quietMs` (so lines already sent, even on a connection still in the accept backlog, are
   * stored), then closes the listener and every connection. Each connection's unterminated last
   * line is stored too.
   */
  async close(options: TcpCloseOptions = {}): Promise<void> {
    const { quietMs = 200, drainMs = 2000 } = options;
    const deadline = Date.now() + drainMs;
    let seen = -1;
    while (seen !== this.#activity && Date.now() < deadline) {
      seen = this.#activity;
      await new Promise((resolve) => setTimeout(resolve, quietMs));
    }
    this.#closing = true;
    this.#listener.close();
    await this.#accepting;
    for (const conn of this.#conns) closeQuietly(conn);
    await Promise.all(this.#handlers);
  }

  async #accept(): Promise<void> {
    while (!this.#closing) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#closing || err instanceof Deno.errors.BadResource) return;
        // Out of file descriptors and the like: keep the listener, let the pressure pass.
        log.warn(`Cannot accept a TCP connection: ${describe(err)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      this.#activity++;
      this.#conns.add(conn);
      const handler = this.#handle(conn).finally(() => {
        this.#conns.delete(conn);
        this.#handlers.delete(handler);
      });
      this.#handlers.add(handler);
    }
  }

  async #handle(conn: Deno.Conn): Promise<void> {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const meta: BatchMeta = { source: "tcp", host: remote.hostname, input: "tcp" };
    const framer = new LineFramer({ maxLine: this.#maxLine, bufferSize: this.#bufferSize });
    const sink = this.#sink;
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(framer.buffer);
      } catch (err) {
        // Reset by the peer, or closed by close(): what was framed is stored, and so is the rest.
        if (!this.#closing) {
          log.debug(`Connection from ${remote.hostname} failed: ${describe(err)}`);
        }
        n = null;
      }
      if (n !== null) this.#activity += n;
      const framed = n === null ? framer.end() : framer.commit(n);
      if (framed) {
        const room = sink.write({ ...framed, meta, receivedAt: Date.now() });
        if (!room) await sink.writable();
      }
      if (n === null) break;
    }
    closeQuietly(conn);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed: close() and the handler race to it on shutdown.
  }
}
