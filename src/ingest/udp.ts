/**
 * UDP inputs: {@linkcode UdpReceiver} runs one socket (receive loop, batching across datagrams
 * received back to back, backpressure, the kernel's drop counters), and {@linkcode UdpInput} is
 * the raw one: one or more newline-separated lines per datagram. Syslog over UDP (`syslog.ts`)
 * runs on the same receiver.
 *
 * Deno can neither set `SO_RCVBUF` nor read `SO_RXQ_OVFL`. The socket's receive buffer is the
 * kernel's default, `net.core.rmem_default`, unless `receiveBuffer` asks for a size, which
 * `net/socket_buffer.ts` sets through the C library when the process may (`--allow-ffi`); drops
 * are read from outside (`udp_drops.ts`: `ss`, or `/proc/net/udp`) when the process may.
 *
 * `Deno.listenDatagram` is behind `--unstable-net`, which deno.json's `"unstable": ["net"]`
 * turns on for every command run from the project.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { ReceiveBufferError, setReceiveBuffer as setSocketBuffer } from "../net/socket_buffer.ts";
import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import { DatagramFramer } from "../syslog/frame.ts";
import { BatchGroups } from "./batch_groups.ts";
import { UdpDropWatch, type UdpDropWatchOptions } from "./udp_drops.ts";

/**
 * What a receiver does with each datagram: frames it into its batches, and writes them when told.
 * Batches are written with the `write` given, which takes care of backpressure.
 */
export interface DatagramHandler {
  /** Takes one datagram from `hostname`; `datagram` is lent for the call only. */
  add(datagram: Uint8Array, hostname: string, write: (batch: Batch) => void): void;
  /** Bytes held and not yet written. */
  readonly held: number;
  /** Writes everything held. */
  flush(write: (batch: Batch) => void): void;
}

/** What a {@linkcode UdpReceiver} counted. */
export interface UdpReceiverStats {
  /** Datagrams received. */
  datagrams: number;
  /** Their bytes. */
  bytes: number;
  /** Receives that failed (other than at close). */
  receiveErrors: number;
  /**
   * Datagrams the kernel dropped for this socket since it was opened (its receive buffer was
   * full); `undefined` when they cannot be read.
   */
  kernelDrops?: number;
  /** Bytes waiting in the socket's receive buffer now, when they can be read. */
  queuedBytes?: number;
  /**
   * The socket's receive buffer size: what `receiveBuffer` got, or `net.core.rmem_default`; when
   * it can be read (it was set, or ss runs).
   */
  bufferBytes?: number;
}

/** Options of {@linkcode UdpReceiver.listen}. */
export interface UdpReceiverOptions {
  /** Address to bind. Default `0.0.0.0`. */
  hostname?: string;
  /** Port; 0 picks a free one. */
  port: number;
  /**
   * A burst's lines are written once this many bytes are held, or when the burst ends (no
   * datagram waiting), whichever comes first. Default 256 KiB.
   */
  batchBytes?: number;
  /**
   * The kernel's drop counters (`udp_drops.ts`): `false` never reads them; options set how they
   * are read. Default: read periodically when the process may (`--allow-run=ss`).
   */
  kernelDrops?: false | UdpDropWatchOptions;
  /** Names the input in log lines, e.g. `udp`. */
  name?: string;
  /**
   * The socket's receive buffer in bytes, as the kernel counts it (ss's `rb`): set through the C
   * library when the process may (`--allow-ffi`); otherwise said once, and the system's default
   * (`net.core.rmem_default`) stays. Default: the system's.
   */
  receiveBuffer?: number;
  /**
   * Calls `flush` once the burst of datagrams ends; returns a function that cancels it. Tests
   * hold it back. Default: a zero-delay timer, which fires once no datagram is ready (Deno runs
   * timers about every millisecond: up to ~200 datagrams of 100 bytes share a batch at full
   * rate here).
   */
  scheduleFlush?: (flush: () => void) => () => void;
}

/** Options of the receivers' `close`. */
export interface UdpCloseOptions {
  /** The socket is read until no datagram arrives for this long, in ms. Default 200. */
  quietMs?: number;
  /** Reading stops after this long even if datagrams keep coming, in ms. Default 2000. */
  drainMs?: number;
}

/**
 * A receiver's counters under the names `/metrics` knows (`api/metrics.ts`), each after `prefix`;
 * the kernel's are left out when they cannot be read.
 */
export function receiverCounters(stats: UdpReceiverStats, prefix = ""): Record<string, number> {
  const out: Record<string, number> = {
    [`${prefix}datagrams`]: stats.datagrams,
    [`${prefix}receive_errors`]: stats.receiveErrors,
  };
  if (stats.kernelDrops !== undefined) out[`${prefix}kernel_drops`] = stats.kernelDrops;
  if (stats.queuedBytes !== undefined) out[`${prefix}queued_bytes`] = stats.queuedBytes;
  if (stats.bufferBytes !== undefined) out[`${prefix}buffer_bytes`] = stats.bufferBytes;
  return out;
}

/** Room for the largest UDP payload (65,507 bytes over IPv4, 65,527 over IPv6): none is cut. */
const RECEIVE_BUFFER = 64 * 1024;
const log = getLogger(["logboom", "ingest", "udp"]);
/** Whether the "drops cannot be read" line was logged (once per process). */
let saidNoDrops = false;
/** Whether the "receive buffer cannot be set" line was logged (once per process). */
let saidNoBuffer = false;

/**
 * One UDP socket: receives datagrams one at a time (one `receive` each: Deno has no
 * `recvmmsg`), hands them to a {@linkcode DatagramHandler}, and writes the handler's batches when
 * enough bytes are held or the burst ends (a zero-delay timer fires only once no datagram is
 * ready), so datagrams received back to back share batches. When the sink asks to wait, the
 * socket is not read until it has room: the kernel queues, then drops, what comes meanwhile
 * (that is UDP; the drops are counted).
 */
export class UdpReceiver {
  /** The address actually bound. */
  readonly addr: Deno.NetAddr;
  readonly #socket: Deno.DatagramConn;
  readonly #sink: Sink;
  readonly #handler: DatagramHandler;
  readonly #batchBytes: number;
  readonly #drops: UdpDropWatch | undefined;
  readonly #name: string;
  readonly #running: Promise<void>;
  readonly #write = (batch: Batch) => this.#writeBatch(batch);
  readonly #scheduleFlush: (flush: () => void) => () => void;
  readonly #onTimer = () => {
    this.#cancelFlush = undefined;
    this.#handler.flush(this.#write);
  };
  /** Cancels the flush scheduled for the end of the burst, while one is. */
  #cancelFlush: (() => void) | undefined;
  /** Set while the sink has no room: the loop waits on it before its next receive. */
  #wait: Promise<void> | undefined;
  #datagrams = 0;
  #bytes = 0;
  #receiveErrors = 0;
  #closing = false;
  /** The receive buffer's size once set (`undefined`: the system's, unless it could not be set). */
  #bufferBytes: number | undefined;

  private constructor(
    socket: Deno.DatagramConn,
    sink: Sink,
    handler: DatagramHandler,
    options: UdpReceiverOptions,
  ) {
    this.#socket = socket;
    this.addr = socket.addr as Deno.NetAddr;
    this.#sink = sink;
    this.#handler = handler;
    this.#batchBytes = options.batchBytes ?? 256 * 1024;
    this.#name = options.name ?? "udp";
    this.#scheduleFlush = options.scheduleFlush ?? afterBurst;
    if (options.receiveBuffer !== undefined) this.setReceiveBuffer(options.receiveBuffer);
    this.#drops = this.#watchDrops(options.kernelDrops);
    this.#running = this.#run();
  }

  /**
   * Binds the socket (throws `Deno.errors.AddrInUse` at once when taken) and starts receiving.
   *
   * @throws {Error} saying that `--unstable-net` is needed, when Deno runs without it.
   */
  static listen(options: UdpReceiverOptions, sink: Sink, handler: DatagramHandler): UdpReceiver {
    const { hostname = "0.0.0.0", port } = options;
    if (typeof Deno.listenDatagram !== "function") {
      throw new Error(
        "UDP needs Deno's --unstable-net flag (deno.json sets it; add it when running a bundle)",
      );
    }
    const socket = Deno.listenDatagram({ hostname, port, transport: "udp" });
    return new UdpReceiver(socket, sink, handler, options);
  }

  /** Counters of the moment. */
  get stats(): UdpReceiverStats {
    const kernel = this.#drops?.counters;
    return {
      datagrams: this.#datagrams,
      bytes: this.#bytes,
      receiveErrors: this.#receiveErrors,
      kernelDrops: kernel?.drops,
      queuedBytes: kernel?.queuedBytes,
      bufferBytes: kernel?.bufferBytes ?? this.#bufferBytes,
    };
  }

  /**
   * Sets the socket's receive buffer (see `UdpReceiverOptions.receiveBuffer`) and logs what the
   * kernel gave; never throws: when it cannot be set, it says why and the buffer stays as it is.
   */
  setReceiveBuffer(bytes: number): void {
    const name = this.#name;
    let got;
    try {
      got = setSocketBuffer(this.addr, bytes);
    } catch (err) {
      const reason = err instanceof ReceiveBufferError ? err.reason : "failed";
      if (reason === "failed") {
        log.warn(
          "Cannot set the receive buffer of UDP input {name} to {asked} bytes: {error}; " +
            "it keeps the system's",
          { name, asked: bytes, error: describe(err) },
        );
      } else if (!saidNoBuffer) {
        saidNoBuffer = true;
        log.warn(
          "UDP receive buffers stay the system's ({reason}): run with {flag} to set them, or " +
            "raise the default for every socket with {sysctl}",
          {
            name,
            reason: describe(err),
            flag: "--allow-ffi",
            sysctl: `sysctl -w net.core.rmem_default=${bytes}`,
          },
        );
      }
      return;
    }
    this.#bufferBytes = got.bytes;
    if (got.rmemMax !== undefined) {
      log.warn(
        "UDP input {name} asked a receive buffer of {asked} bytes and the kernel gave {bytes}, " +
          "capped by net.core.rmem_max ({rmemMax}): raise it with {sysctl}, or run as root (CAP_NET_ADMIN)",
        {
          name,
          asked: got.asked,
          bytes: got.bytes,
          rmemMax: got.rmemMax,
          sysctl: `sysctl -w net.core.rmem_max=${Math.ceil(got.asked / 2)}`,
        },
      );
    } else {
      log.info("UDP input {name} has a receive buffer of {bytes} bytes (asked {asked})", {
        name,
        bytes: got.bytes,
        asked: got.asked,
        forced: got.forced,
      });
    }
  }

  /** Reads the kernel's counters now (tests; `/metrics` uses the last periodic read). */
  async refreshDrops(): Promise<void> {
    await this.#drops?.refresh();
  }

  /**
   * Drains, then stops: keeps receiving until no datagram arrived for `quietMs` (or `drainMs`
   * passed), closes the socket and writes what is held. Datagrams still in the kernel's buffer
   * after that are lost with the socket.
   */
  async close(options: UdpCloseOptions = {}): Promise<void> {
    const { quietMs = 200, drainMs = 2000 } = options;
    const deadline = Date.now() + drainMs;
    let seen = -1;
    while (seen !== this.#datagrams && Date.now() < deadline && !this.#closing) {
      seen = this.#datagrams;
      await new Promise((resolve) => setTimeout(resolve, quietMs));
    }
    this.#closing = true;
    try {
      this.#socket.close();
    } catch {
      // Closed already.
    }
    await this.#running;
    await this.#drops?.close();
  }

  async #run(): Promise<void> {
    const buf = new Uint8Array(RECEIVE_BUFFER);
    const handler = this.#handler;
    for (;;) {
      if (this.#wait !== undefined) {
        await this.#wait;
        this.#wait = undefined;
      }
      if (this.#closing) break;
      let datagram: Uint8Array;
      let from: Deno.Addr;
      try {
        [datagram, from] = await this.#socket.receive(buf);
      } catch (err) {
        if (this.#closing) break;
        if (err instanceof Deno.errors.BadResource) break;
        this.#receiveErrors++;
        log.warn("Cannot receive on UDP input {name}: {error}", {
          name: this.#name,
          error: describe(err),
        });
        // A socket error that repeats must not spin the loop.
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      this.#datagrams++;
      this.#bytes += datagram.length;
      handler.add(datagram, (from as Deno.NetAddr).hostname, this.#write);
      if (handler.held >= this.#batchBytes) {
        this.#flush();
      } else if (this.#cancelFlush === undefined && handler.held > 0) {
        this.#cancelFlush = this.#scheduleFlush(this.#onTimer);
      }
    }
    this.#flush();
    await this.#wait;
  }

  #flush(): void {
    if (this.#cancelFlush !== undefined) {
      this.#cancelFlush();
      this.#cancelFlush = undefined;
    }
    this.#handler.flush(this.#write);
  }

  #writeBatch(batch: Batch): void {
    if (this.#sink.write(batch)) return;
    const wait = this.#sink.writable(batch);
    this.#wait = this.#wait === undefined ? wait : Promise.all([this.#wait, wait]).then(() => {});
  }

  #watchDrops(option: false | UdpDropWatchOptions | undefined): UdpDropWatch | undefined {
    if (option === false) return undefined;
    return new UdpDropWatch(this.addr, {
      ...option,
      unavailable: (reason) => {
        if (saidNoDrops) return;
        saidNoDrops = true;
        log.info(
          "UDP datagrams the kernel drops cannot be counted ({reason}); " +
            "allow {command} to count them in /metrics",
          { reason, command: "--allow-run=ss (iproute2's ss)" },
        );
      },
    });
  }
}

/** Runs `flush` on a zero-delay timer: after the datagrams that are ready now. */
function afterBurst(flush: () => void): () => void {
  const timer = setTimeout(flush, 0);
  return () => clearTimeout(timer);
}

/** Configuration of {@linkcode UdpInput}. */
export interface UdpInputConfig extends Omit<UdpReceiverOptions, "name"> {
  /** The input's name, for `BatchMeta.input` and logs. Default `udp`. */
  name?: string;
  /** The `source` of its batches. Default `udp`. */
  source?: string;
  /**
   * Longer lines are stored in pieces of this many bytes (a datagram holds at most 64 KiB, so
   * the default never splits). Default 64 KiB.
   */
  maxLine?: number;
  /** Senders whose lines are batched apart at once (see `BatchGroups`). Default 16. */
  maxGroups?: number;
}

/** What a {@linkcode UdpInput} counted. */
export interface UdpInputStats extends UdpReceiverStats {
  /** Lines stored. */
  lines: number;
  /** Lines longer than `maxLine`, stored in pieces. */
  split: number;
  /** Datagrams that held no line (empty, or blank lines only). */
  empty: number;
}

/** Builds each sender's {@linkcode BatchMeta} once (a bounded cache, as senders are many). */
export class MetaCache {
  readonly #metas = new Map<string, BatchMeta>();
  readonly #make: (host: string) => BatchMeta;
  readonly #size: number;

  /**
   * @param make builds the meta for a host.
   * @param size most hosts remembered; past it the cache starts anew. Default 4096.
   */
  constructor(make: (host: string) => BatchMeta, size = 4096) {
    this.#make = make;
    this.#size = size;
  }

  /** The meta for `host`, the same object each time while it is remembered. */
  get(host: string): BatchMeta {
    let meta = this.#metas.get(host);
    if (meta === undefined) {
      if (this.#metas.size >= this.#size) this.#metas.clear();
      meta = this.#make(host);
      this.#metas.set(host, meta);
    }
    return meta;
  }
}

/** Raw lines per datagram, framed as the TCP input frames a stream, grouped by sender. */
class LineDatagrams implements DatagramHandler {
  #framer: DatagramFramer;
  #split = 0;
  readonly #groups: BatchGroups;
  readonly #metas: MetaCache;
  lines = 0;
  empty = 0;

  constructor(config: UdpInputConfig) {
    const name = config.name ?? "udp";
    const source = config.source ?? "udp";
    this.#framer = new DatagramFramer({ maxMessage: config.maxLine ?? RECEIVE_BUFFER });
    this.#groups = new BatchGroups({ maxGroups: config.maxGroups });
    this.#metas = new MetaCache((host) => ({ source, host, input: name }));
  }

  get split(): number {
    return this.#split + this.#framer.split;
  }

  /** Longer lines are split into pieces of this many bytes, from the next datagram on. */
  set maxLine(bytes: number) {
    this.#split += this.#framer.split;
    this.#framer = new DatagramFramer({ maxMessage: bytes });
  }

  get held(): number {
    return this.#groups.bytes;
  }

  add(datagram: Uint8Array, hostname: string, write: (batch: Batch) => void): void {
    const framer = this.#framer;
    const added = framer.addLines(datagram);
    const framed = framer.take();
    if (framed === undefined || added === 0) {
      this.empty++;
      return;
    }
    this.lines += added;
    const meta = this.#metas.get(hostname);
    this.#groups.add(meta, framed.data, 0, framed.data.length, added, write);
  }

  flush(write: (batch: Batch) => void): void {
    this.#groups.flush(write);
  }
}

/**
 * Listens for raw lines over UDP and writes them to a sink: one or more newline-separated lines
 * per datagram (an unterminated last line is a line), batched across datagrams.
 *
 * @example
 * ```ts
 * const input = UdpInput.listen({ port: 5140 }, router);
 * // ... on shutdown:
 * await input.close(); // reads until quiet, stores what it holds
 * ```
 */
export class UdpInput {
  /** Always `udp`. */
  readonly type = "udp";
  /** The input's name. */
  readonly name: string;
  readonly #receiver: UdpReceiver;
  readonly #lines: LineDatagrams;

  private constructor(name: string, receiver: UdpReceiver, lines: LineDatagrams) {
    this.name = name;
    this.#receiver = receiver;
    this.#lines = lines;
  }

  /** Binds the port (throws `Deno.errors.AddrInUse` at once when taken) and starts receiving. */
  static listen(config: UdpInputConfig, sink: Sink): UdpInput {
    const lines = new LineDatagrams(config);
    const name = config.name ?? "udp";
    const receiver = UdpReceiver.listen({ ...config, name }, sink, lines);
    return new UdpInput(name, receiver, lines);
  }

  /** The address actually bound. */
  get addr(): Deno.NetAddr {
    return this.#receiver.addr;
  }

  /** Longer lines are split into pieces of this many bytes, from the next datagram on. */
  set maxLine(bytes: number) {
    this.#lines.maxLine = bytes;
  }

  /** Sets the socket's receive buffer, as `UdpReceiver.setReceiveBuffer` does. */
  setReceiveBuffer(bytes: number): void {
    this.#receiver.setReceiveBuffer(bytes);
  }

  /** Counters of the moment. */
  get stats(): UdpInputStats {
    return {
      ...this.#receiver.stats,
      lines: this.#lines.lines,
      split: this.#lines.split,
      empty: this.#lines.empty,
    };
  }

  /** The counters under the names `/metrics` knows. */
  counters(): Record<string, number> {
    const stats = this.stats;
    return {
      ...receiverCounters(stats),
      bytes: stats.bytes,
      lines: stats.lines,
      split: stats.split,
      empty_datagrams: stats.empty,
    };
  }

  /** Reads the kernel's drop counters now. */
  refreshDrops(): Promise<void> {
    return this.#receiver.refreshDrops();
  }

  /** Reads until quiet, then closes the socket and stores what is held. */
  close(options?: UdpCloseOptions): Promise<void> {
    return this.#receiver.close(options);
  }
}
