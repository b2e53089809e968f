/**
 * Raw TCP input: newline-delimited lines, one async handler per connection. Connections count
 * against the cap shared with the HTTP API; one that sends nothing for the idle timeout is closed
 * (time spent waiting on a full queue does not count), and TCP keepalive finds dead peers.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { acceptLoop, closeQuietly, ConnectionGate } from "../net/accept.ts";
import { Deadlines } from "../net/deadlines.ts";
import { logAcceptError } from "../net/log.ts";
import type { BatchMeta } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import { LineFramer } from "../text/framing.ts";

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
  /** The connection cap shared with the other listeners. Default: 2,048 for this input alone. */
  gate?: ConnectionGate;
  /** A connection that sends nothing for this long is closed, in ms. Default 1 hour. */
  idleTimeoutMs?: number;
  /** The deadline sweeper; tests inject one with a fake clock. Default: a new one. */
  deadlines?: Deadlines;
  /** The source its lines are filed under. Default `tcp`. */
  source?: string;
  /** The input's name, which labels its lines' counters. Default `tcp`. */
  input?: string;
  /** Whether batches come with their lines' ends (`Batch.ends`): a sink reads them. */
  lineEnds?: boolean;
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
  #maxLine: number | undefined;
  /** Whether batches come with their lines' ends; read after each read, so a reload applies. */
  lineEnds: boolean;
  readonly #bufferSize: number | undefined;
  readonly #gate: ConnectionGate;
  #idleMs: number;
  readonly #source: string;
  readonly #input: string;
  readonly #deadlines: Deadlines;
  readonly #ownDeadlines: boolean;
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
    this.lineEnds = config.lineEnds ?? false;
    this.#bufferSize = config.bufferSize;
    this.#gate = config.gate ?? new ConnectionGate(2048);
    this.#idleMs = config.idleTimeoutMs ?? 60 * 60 * 1000;
    this.#source = config.source ?? "tcp";
    this.#input = config.input ?? "tcp";
    this.#ownDeadlines = config.deadlines === undefined;
    this.#deadlines = config.deadlines ??
      new Deadlines({ sweepMs: Math.max(20, Math.min(1000, Math.floor(this.#idleMs / 4))) });
    this.#accepting = acceptLoop(listener, {
      gate: this.#gate,
      transport: "tcp",
      stopped: () => this.#closing,
      failed: (code, err) => logAcceptError(log, code, err),
      serve: (conn) => this.#serve(conn),
    });
  }

  /** Binds the port (throws `Deno.errors.AddrInUse` at once when taken) and starts accepting. */
  static listen(config: TcpInputConfig, sink: Sink): TcpInput {
    const { hostname = "0.0.0.0", port } = config;
    const listener = Deno.listen({ hostname, port, transport: "tcp" });
    return new TcpInput(listener, sink, config);
  }

  /**
   * The line limit of connections accepted from now on (a config reload changes it without
   * closing the listener); connections already open keep theirs.
   */
  set maxLine(bytes: number | undefined) {
    this.#maxLine = bytes;
  }

  /**
   * The idle timeout (a config reload changes it), in ms: open connections take it at their next
   * read. The deadline sweeper keeps the period set from the first one.
   */
  set idleTimeoutMs(ms: number) {
    this.#idleMs = ms;
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
    if (this.#ownDeadlines) this.#deadlines.close();
  }

  #serve(conn: Deno.Conn): void {
    this.#activity++;
    this.#conns.add(conn);
    const handler = this.#handle(conn).finally(() => {
      this.#conns.delete(conn);
      this.#handlers.delete(handler);
      this.#gate.leave("tcp");
    });
    this.#handlers.add(handler);
  }

  async #handle(conn: Deno.Conn): Promise<void> {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const meta: BatchMeta = { source: this.#source, host: remote.hostname, input: this.#input };
    const framer = new LineFramer({ maxLine: this.#maxLine, bufferSize: this.#bufferSize });
    const sink = this.#sink;
    try {
      (conn as Deno.TcpConn).setKeepAlive(true);
    } catch {
      // Reset already: the first read says so.
    }
    const deadlines = this.#deadlines;
    let timedOut = false;
    const deadline = deadlines.watch(() => {
      timedOut = true;
      this.#gate.timedOut("idle");
      log.debug("Closing a TCP connection from {host}: idle for {seconds} s", {
        host: remote.hostname,
        seconds: this.#idleMs / 1000,
      });
      closeQuietly(conn);
    });
    for (;;) {
      let n: number | null;
      deadline.at = deadlines.now() + this.#idleMs;
      try {
        n = await conn.read(framer.buffer);
      } catch (err) {
        // Reset by the peer, or closed by close() or the idle timeout: what was framed is
        // stored, and so is the rest.
        if (!this.#closing && !timedOut) {
          log.debug("Connection from {host} failed: {error}", {
            host: remote.hostname,
            error: describe(err),
          });
        }
        n = null;
      }
      // Waiting on a full queue is not the client's idleness.
      deadline.at = Infinity;
      if (n !== null) this.#activity += n;
      framer.lineEnds = this.lineEnds;
      const framed = n === null ? framer.end() : framer.commit(n);
      if (framed) {
        const batch = { ...framed, meta, receivedAt: Date.now() };
        // Given the batch, the wait is for its own destination: a failing one stalls only this
        // connection, not every sender.
        if (!sink.write(batch)) await sink.writable(batch);
      }
      if (n === null) break;
    }
    deadlines.unwatch(deadline);
    closeQuietly(conn);
  }
}
