/**
 * The syslog input: syslog over TCP (RFC 6587, octet counting or LF decided per frame), TLS
 * (RFC 5425, `Deno.listenTls` with PEM certificate and key files) and UDP (RFC 5426, one message
 * per datagram), each listener optional.
 *
 * Each message is stored as one line, as received (minus framing; LF, CR and NUL inside a
 * message written as rsyslog's `#012`, `#015`, `#000`, see `syslog/frame.ts`). Parsing is work
 * only some outputs ask for: with {@linkcode SyslogInputConfig.labels} off (a path template
 * without `{host}`, `{app}`, `{facility}`, `{severity}` and the raw format) the bytes go from the
 * socket to the sink in batches, one per read, without a look at a header. With it on, the
 * header is parsed (`syslog/parse.ts`) and messages go into batches by their (host, app,
 * facility, severity), whose {@linkcode BatchMeta} is built once per distinct set: `host` is the
 * message's HOSTNAME (the peer's address when it has none) and the labels are `app`, `facility`
 * and `severity` by name. A message that does not parse is kept whole, with the peer's address
 * as its host, no labels and the receive time, and counted in `parseFailures`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { acceptLoop, closeQuietly, ConnectionGate } from "../net/accept.ts";
import { Deadlines } from "../net/deadlines.ts";
import { logAcceptError } from "../net/log.ts";
import type { Batch, BatchMeta } from "../pipeline/batch.ts";
import { levelCode } from "../pipeline/record.ts";
import type { Sink } from "../pipeline/sink.ts";
import { DatagramFramer, SyslogFramer, type SyslogFrames } from "../syslog/frame.ts";
import { FACILITY_NAMES, SEVERITY_NAMES, SyslogParser } from "../syslog/parse.ts";
import { normalizeLevel } from "../protocols/fields.ts";
import { BatchGroups } from "./batch_groups.ts";
import {
  type DatagramHandler,
  MetaCache,
  receiverCounters,
  UdpReceiver,
  type UdpReceiverOptions,
  type UdpReceiverStats,
} from "./udp.ts";

/** Where one listener binds. */
export interface SyslogAddress {
  /** Address to bind. Default `0.0.0.0`. */
  hostname?: string;
  /** Port; 0 picks a free one. */
  port: number;
}

/** Where the TLS listener binds, and its certificate. */
export interface SyslogTlsAddress extends SyslogAddress {
  /** PEM file of the certificate chain. */
  certFile: string;
  /** PEM file of the private key. */
  keyFile: string;
}

/** Configuration of {@linkcode SyslogInput}. */
export interface SyslogInputConfig {
  /** The input's name, for `BatchMeta.input`, logs and metrics. Default `syslog`. */
  name?: string;
  /** The `source` of its batches. Default `syslog`. */
  source?: string;
  /** Syslog over TCP. */
  tcp?: SyslogAddress;
  /** Syslog over UDP. */
  udp?: SyslogAddress;
  /** Syslog over TLS (RFC 5425). */
  tls?: SyslogTlsAddress;
  /**
   * Parse each message's header: `host` becomes its HOSTNAME and batches get the labels `app`,
   * `facility` and `severity`. For path templates that use them and the JSON format. Default
   * false: the bytes are not looked at.
   */
  labels?: boolean;
  /** Give each line its own time (`Batch.times`, for the JSON format); implies `labels`. */
  times?: boolean;
  /**
   * Give each line its level (`Batch.levels`) from its PRI's severity (0-2 fatal, 3 error, 4
   * warn, 5-6 info, 7 debug), for level filters, `{level}` and the JSON format. Reads the `<PRI>`
   * alone: no header parse. Default false.
   */
  levels?: boolean;
  /** The zone of RFC 3164 dates, which have none. Default `UTC`. */
  timeZone?: "UTC" | "local" | number;
  /** Longer messages are stored in pieces of this many bytes. Default 64 KiB. */
  maxMessage?: number;
  /** Largest read buffer per connection. Default 256 KiB. */
  bufferSize?: number;
  /** Label sets batched apart at once (see `BatchGroups`). Default 16. */
  maxGroups?: number;
  /** The connection cap shared with the other listeners. Default: 2,048 for this input alone. */
  gate?: ConnectionGate;
  /** A connection that sends nothing for this long is closed, in ms. Default 1 hour. */
  idleTimeoutMs?: number;
  /** The deadline sweeper; tests inject one with a fake clock. Default: a new one. */
  deadlines?: Deadlines;
  /**
   * For the UDP listener: batching, kernel drop counters and the receive buffer (see
   * `UdpReceiverOptions`).
   */
  udpOptions?: Pick<
    UdpReceiverOptions,
    "batchBytes" | "kernelDrops" | "scheduleFlush" | "receiveBuffer"
  >;
}

/** Counters of one listener of a syslog input. */
export interface SyslogTransportStats {
  /** Messages stored (a message split in pieces counts once per piece). */
  messages: number;
  /** Bytes received, framing included. */
  bytes: number;
  /** Messages that did not parse (stored whole); counted only when parsing is on. */
  parseFailures: number;
  /** Octet-counted frames with a bad header or cut short by the end of the connection. */
  framingErrors: number;
  /** Messages longer than `maxMessage`, stored in pieces. */
  split: number;
  /** Connections open now (TCP and TLS). */
  connections?: number;
  /** UDP only: datagrams received, receive errors, kernel drops. */
  udp?: UdpReceiverStats;
}

/** Options of {@linkcode SyslogInput.close}. */
export interface SyslogCloseOptions {
  /** Reading goes on until nothing arrived for this long, in ms. Default 200. */
  quietMs?: number;
  /** Reading stops after this long even if clients keep sending, in ms. Default 2000. */
  drainMs?: number;
}

type Write = (batch: Batch) => void;

const log = getLogger(["logboom", "ingest", "syslog"]);
/** Labels of a message that did not parse: none, so templates render `_`. */
const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Turns framed messages into batches: as they are (no parsing), or parsed and grouped by their
 * (host, app, facility, severity). One per input; its parser and metas are shared by every
 * listener and connection, as each call runs to its end synchronously.
 */
class SyslogBatcher {
  readonly parse: boolean;
  readonly #times: boolean;
  readonly #levels: boolean;
  readonly #source: string;
  readonly #input: string;
  readonly #parser: SyslogParser;
  /** Metas of parsed messages: host, then app, then PRI. */
  #metas = new Map<string, Map<string, (BatchMeta | undefined)[]>>();
  #metaCount = 0;
  /** Metas of unparsed messages and of unparsed traffic: by peer. */
  readonly #peers: MetaCache;
  /** Per message of the current call: its meta and time (reused). */
  #metaOf: (BatchMeta | undefined)[] = [];
  #timeOf = new Float64Array(256);
  #levelOf = new Uint8Array(256);

  constructor(config: SyslogInputConfig) {
    this.#times = config.times ?? false;
    this.#levels = config.levels ?? false;
    this.parse = this.#times || (config.labels ?? false);
    this.#source = config.source ?? "syslog";
    this.#input = config.name ?? "syslog";
    this.#parser = new SyslogParser({ timeZone: config.timeZone });
    const source = this.#source;
    const input = this.#input;
    this.#peers = new MetaCache((host) =>
      this.parse ? { source, host, input, labels: NO_LABELS } : { source, host, input }
    );
  }

  /** The meta of unparsed traffic from `peer`. */
  peerMeta(peer: string): BatchMeta {
    return this.#peers.get(peer);
  }

  /**
   * Writes `frames` (from `peer`, received at `receivedAt`): straight through when nothing is
   * parsed or every message has the same labels (the frames' own bytes, no copy), else copied
   * into `groups`, which the caller flushes. Returns how many did not parse.
   */
  take(
    frames: SyslogFrames,
    peer: string,
    receivedAt: number,
    write: Write,
    groups: BatchGroups,
    direct: boolean,
  ): number {
    const { data, lines, ends } = frames;
    let levels: Uint8Array | undefined;
    if (this.#levels) {
      if (this.#levelOf.length < lines) this.#levelOf = new Uint8Array(lines * 2);
      levels = priLevels(data, ends, lines, this.#levelOf);
    }
    if (!this.parse) {
      const meta = this.peerMeta(peer);
      if (direct) write({ data, lines, meta, receivedAt, levels });
      else groups.add(meta, data, 0, data.length, lines, write, NaN, receivedAt, levels);
      return 0;
    }
    if (this.#metaOf.length < lines) this.#metaOf = new Array(lines * 2);
    if (this.#timeOf.length < lines) this.#timeOf = new Float64Array(lines * 2);
    const metaOf = this.#metaOf;
    const timeOf = this.#timeOf;
    const parser = this.#parser;
    let failures = 0;
    let same = true;
    let start = 0;
    for (let i = 0; i < lines; i++) {
      const end = ends[i];
      const msg = parser.parse(data, start, end, receivedAt);
      let meta: BatchMeta;
      if (msg.format === "unparsed") {
        failures++;
        meta = this.#peers.get(peer);
        timeOf[i] = NaN;
      } else {
        meta = this.#meta(msg.host ?? peer, msg.app ?? "", msg.facility * 8 + msg.severity);
        timeOf[i] = msg.time ?? NaN;
      }
      metaOf[i] = meta;
      if (meta !== metaOf[0]) same = false;
      start = end + 1;
    }
    const times = this.#times ? timeOf : undefined;
    if (same && direct) {
      write({
        data,
        lines,
        meta: metaOf[0]!,
        receivedAt,
        times: times?.subarray(0, lines),
        levels,
      });
    } else {
      // Runs of one meta are copied together.
      let from = 0;
      let i = 0;
      while (i < lines) {
        const meta = metaOf[i]!;
        let j = i + 1;
        while (j < lines && metaOf[j] === meta) j++;
        const to = ends[j - 1] + 1;
        const time = times === undefined ? NaN : times.subarray(i, j);
        const level = levels === undefined ? 0 : levels.subarray(i, j);
        groups.add(meta, data, from, to, j - i, write, time, receivedAt, level);
        from = to;
        i = j;
      }
    }
    metaOf.fill(undefined, 0, lines);
    return failures;
  }

  /** The meta of a parsed message, built once per (host, app, PRI). */
  #meta(host: string, app: string, pri: number): BatchMeta {
    let apps = this.#metas.get(host);
    if (apps === undefined) {
      // Hosts and apps come from the network: the table is bounded.
      if (this.#metaCount >= 4096) {
        this.#metas = new Map();
        this.#metaCount = 0;
      }
      apps = new Map();
      this.#metas.set(host, apps);
    }
    let pris = apps.get(app);
    if (pris === undefined) {
      pris = [];
      apps.set(app, pris);
    }
    let meta = pris[pri];
    if (meta === undefined) {
      const labels: Record<string, string> = {};
      if (app !== "") labels.app = app;
      labels.facility = FACILITY_NAMES[pri >> 3];
      labels.severity = SEVERITY_NAMES[pri & 7];
      meta = {
        source: this.#source,
        host,
        input: this.#input,
        labels: Object.freeze(labels),
      };
      pris[pri] = meta;
      this.#metaCount++;
    }
    return meta;
  }
}

/** A listener's counters, as they change. */
class Counters {
  messages = 0;
  bytes = 0;
  parseFailures = 0;
  framingErrors = 0;
  split = 0;
}

/** Syslog datagrams: one message each, grouped across a burst. */
class SyslogDatagrams implements DatagramHandler {
  #framer: DatagramFramer;
  readonly #batcher: SyslogBatcher;
  readonly #groups: BatchGroups;
  readonly #counters: Counters;

  constructor(config: SyslogInputConfig, batcher: SyslogBatcher, counters: Counters) {
    this.#framer = new DatagramFramer({ maxMessage: config.maxMessage });
    this.#batcher = batcher;
    this.#counters = counters;
    this.#groups = new BatchGroups({
      maxGroups: config.maxGroups,
      times: config.times,
      levels: config.levels,
    });
  }

  get held(): number {
    return this.#groups.bytes;
  }

  set maxMessage(bytes: number) {
    this.#framer = new DatagramFramer({ maxMessage: bytes });
  }

  add(datagram: Uint8Array, hostname: string, write: Write): void {
    const framer = this.#framer;
    const counters = this.#counters;
    counters.bytes += datagram.length;
    const before = framer.split;
    framer.addMessage(datagram);
    counters.split += framer.split - before;
    const frames = framer.take();
    if (frames === undefined) return;
    counters.messages += frames.lines;
    counters.parseFailures += this.#batcher.take(
      frames,
      hostname,
      Date.now(),
      write,
      this.#groups,
      false,
    );
  }

  flush(write: Write): void {
    this.#groups.flush(write);
  }
}

/**
 * Listens for syslog over TCP, TLS and UDP (each optional) and writes the messages to a sink.
 *
 * @example
 * ```ts
 * const input = await SyslogInput.listen({ tcp: { port: 5514 }, udp: { port: 5514 } }, router);
 * // ... on shutdown:
 * await input.close();
 * ```
 */
export class SyslogInput {
  /** Always `syslog`. */
  readonly type = "syslog";
  /** The input's name. */
  readonly name: string;
  /** The TCP listener's address, when it has one. */
  readonly tcpAddr?: Deno.NetAddr;
  /** The TLS listener's address, when it has one. */
  readonly tlsAddr?: Deno.NetAddr;
  readonly #sink: Sink;
  readonly #batcher: SyslogBatcher;
  readonly #groups: BatchGroups;
  readonly #config: SyslogInputConfig;
  readonly #gate: ConnectionGate;
  readonly #idleMs: number;
  readonly #deadlines: Deadlines;
  readonly #ownDeadlines: boolean;
  readonly #listeners: Deno.Listener[] = [];
  readonly #accepting: Promise<void>[] = [];
  readonly #udp: UdpReceiver | undefined;
  readonly #datagrams: SyslogDatagrams | undefined;
  #maxMessage: number | undefined;
  readonly #counters = { tcp: new Counters(), tls: new Counters(), udp: new Counters() };
  readonly #conns = new Map<Deno.Conn, "tcp" | "tls">();
  readonly #handlers = new Set<Promise<void>>();
  #activity = 0;
  #closing = false;

  private constructor(sink: Sink, config: SyslogInputConfig) {
    this.name = config.name ?? "syslog";
    this.#sink = sink;
    this.#config = config;
    this.#maxMessage = config.maxMessage;
    this.#batcher = new SyslogBatcher(config);
    this.#groups = new BatchGroups({
      maxGroups: config.maxGroups,
      times: config.times,
      levels: config.levels,
    });
    this.#gate = config.gate ?? new ConnectionGate(2048);
    this.#idleMs = config.idleTimeoutMs ?? 60 * 60 * 1000;
    this.#ownDeadlines = config.deadlines === undefined;
    this.#deadlines = config.deadlines ??
      new Deadlines({ sweepMs: Math.max(20, Math.min(1000, Math.floor(this.#idleMs / 4))) });
    const opened: { close(): void }[] = [];
    try {
      if (config.tcp !== undefined) {
        const { hostname = "0.0.0.0", port } = config.tcp;
        const listener = bind(
          "tcp",
          { hostname, port },
          () => Deno.listen({ hostname, port, transport: "tcp" }),
        );
        opened.push(listener);
        this.tcpAddr = listener.addr as Deno.NetAddr;
        this.#serveListener(listener, "tcp");
      }
      if (config.tls !== undefined) {
        const { hostname = "0.0.0.0", port, certFile, keyFile } = config.tls;
        const listener = bind("tls", { hostname, port }, () => {
          const cert = readPem(certFile, "certificate");
          const key = readPem(keyFile, "private key");
          return Deno.listenTls({ hostname, port, cert, key, transport: "tcp" });
        });
        opened.push(listener);
        this.tlsAddr = listener.addr as Deno.NetAddr;
        this.#serveListener(listener, "tls");
      }
      if (config.udp !== undefined) {
        const handler = new SyslogDatagrams(config, this.#batcher, this.#counters.udp);
        this.#datagrams = handler;
        const { udpOptions } = config;
        const { hostname, port } = config.udp;
        const name = this.name;
        this.#udp = bind(
          "udp",
          config.udp,
          () => UdpReceiver.listen({ ...udpOptions, hostname, port, name }, sink, handler),
        );
      }
    } catch (err) {
      this.#closing = true;
      for (const listener of opened) closeQuietly(listener);
      if (this.#ownDeadlines) this.#deadlines.close();
      throw err;
    }
  }

  /**
   * Binds every listener configured and starts. Throws a {@linkcode SyslogListenError} at once
   * when one cannot be bound (its `cause`: `Deno.errors.AddrInUse`, an unreadable certificate),
   * after closing the others.
   */
  static listen(config: SyslogInputConfig, sink: Sink): SyslogInput {
    if (config.tcp === undefined && config.udp === undefined && config.tls === undefined) {
      throw new TypeError("A syslog input needs at least one of tcp, udp and tls");
    }
    return new SyslogInput(sink, config);
  }

  /** The UDP listener's address, when it has one. */
  get udpAddr(): Deno.NetAddr | undefined {
    return this.#udp?.addr;
  }

  /** Longer messages are split: for connections accepted and datagrams received from now on. */
  set maxMessage(bytes: number) {
    this.#maxMessage = bytes;
    if (this.#datagrams !== undefined) this.#datagrams.maxMessage = bytes;
  }

  /** Sets the UDP socket's receive buffer, as `UdpReceiver.setReceiveBuffer` does. */
  setUdpReceiveBuffer(bytes: number): void {
    this.#udp?.setReceiveBuffer(bytes);
  }

  /** Whether messages are parsed (labels or times asked for). */
  get parses(): boolean {
    return this.#batcher.parse;
  }

  /** Counters of each listener it runs. */
  get stats(): Partial<Record<"tcp" | "tls" | "udp", SyslogTransportStats>> {
    const out: Partial<Record<"tcp" | "tls" | "udp", SyslogTransportStats>> = {};
    const open = { tcp: 0, tls: 0 };
    for (const transport of this.#conns.values()) open[transport]++;
    if (this.tcpAddr) out.tcp = { ...this.#counters.tcp, connections: open.tcp };
    if (this.tlsAddr) out.tls = { ...this.#counters.tls, connections: open.tls };
    if (this.#udp) out.udp = { ...this.#counters.udp, udp: this.#udp.stats };
    return out;
  }

  /** The counters under the names `/metrics` knows, each after its transport (`tcp.messages`). */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [transport, stats] of Object.entries(this.stats)) {
      const at = `${transport}.`;
      out[`${at}messages`] = stats.messages;
      out[`${at}bytes`] = stats.bytes;
      out[`${at}framing_errors`] = stats.framingErrors;
      out[`${at}split`] = stats.split;
      if (this.parses) out[`${at}parse_failures`] = stats.parseFailures;
      if (stats.connections !== undefined) out[`${at}connections`] = stats.connections;
      if (stats.udp !== undefined) Object.assign(out, receiverCounters(stats.udp, at));
    }
    return out;
  }

  /** Reads the UDP socket's kernel drop counters now. */
  async refreshDrops(): Promise<void> {
    await this.#udp?.refreshDrops();
  }

  /**
   * Drains, then stops: keeps reading until nothing arrived for `quietMs`, then closes the
   * listeners and every connection, storing each one's unterminated last message.
   */
  async close(options: SyslogCloseOptions = {}): Promise<void> {
    const { quietMs = 200, drainMs = 2000 } = options;
    const deadline = Date.now() + drainMs;
    const udpClosed = this.#udp?.close({ quietMs, drainMs });
    let seen = -1;
    while (seen !== this.#activity && Date.now() < deadline) {
      seen = this.#activity;
      await new Promise((resolve) => setTimeout(resolve, quietMs));
    }
    this.#closing = true;
    for (const listener of this.#listeners) closeQuietly(listener);
    await Promise.all(this.#accepting);
    for (const conn of this.#conns.keys()) closeQuietly(conn);
    await Promise.all(this.#handlers);
    await udpClosed;
    if (this.#ownDeadlines) this.#deadlines.close();
  }

  #serveListener(listener: Deno.Listener, transport: "tcp" | "tls"): void {
    this.#listeners.push(listener);
    const counted = transport === "tcp" ? "syslog" : "syslog_tls";
    this.#accepting.push(acceptLoop(listener, {
      gate: this.#gate,
      transport: counted,
      stopped: () => this.#closing,
      failed: (code, err) => logAcceptError(log, code, err),
      serve: (conn) => {
        this.#activity++;
        this.#conns.set(conn, transport);
        const handler = this.#handle(conn, transport).finally(() => {
          this.#conns.delete(conn);
          this.#handlers.delete(handler);
          this.#gate.leave(counted);
        });
        this.#handlers.add(handler);
      },
    }));
  }

  async #handle(conn: Deno.Conn, transport: "tcp" | "tls"): Promise<void> {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const peer = remote.hostname;
    const counters = this.#counters[transport];
    const framer = new SyslogFramer({
      maxMessage: this.#maxMessage,
      bufferSize: this.#config.bufferSize,
    });
    const sink = this.#sink;
    const batcher = this.#batcher;
    const groups = this.#groups;
    const waits: Promise<void>[] = [];
    const write: Write = (batch) => {
      // Given the batch, the wait is for its own destination.
      if (!sink.write(batch)) waits.push(sink.writable(batch));
    };
    try {
      if (transport === "tcp") (conn as Deno.TcpConn).setKeepAlive(true);
    } catch {
      // Reset already: the first read says so.
    }
    const deadlines = this.#deadlines;
    const idleMs = this.#idleMs;
    let timedOut = false;
    const deadline = deadlines.watch(() => {
      timedOut = true;
      this.#gate.timedOut("idle");
      log.debug("Closing a syslog connection from {host}: idle for {seconds} s", {
        host: peer,
        seconds: idleMs / 1000,
      });
      closeQuietly(conn);
    });
    let errors = 0;
    let split = 0;
    for (;;) {
      let n: number | null;
      deadline.at = deadlines.now() + idleMs;
      try {
        n = await conn.read(framer.buffer);
      } catch (err) {
        // Reset, a failed TLS handshake, or closed by close() or the idle timeout: what was
        // framed is stored, and so is the rest.
        if (!this.#closing && !timedOut) {
          log.debug("Syslog connection from {host} ({transport}) failed: {error}", {
            host: peer,
            transport,
            error: describe(err),
          });
        }
        n = null;
      }
      deadline.at = Infinity;
      if (n !== null) {
        this.#activity += n;
        counters.bytes += n;
      }
      const frames = n === null ? framer.end() : framer.commit(n);
      if (framer.errors !== errors || framer.split !== split) {
        counters.framingErrors += framer.errors - errors;
        counters.split += framer.split - split;
        errors = framer.errors;
        split = framer.split;
      }
      if (frames) {
        counters.messages += frames.lines;
        counters.parseFailures += batcher.take(frames, peer, Date.now(), write, groups, true);
        groups.flush(write);
        if (waits.length > 0) {
          await Promise.all(waits);
          waits.length = 0;
        }
      }
      if (n === null) break;
    }
    deadlines.unwatch(deadline);
    closeQuietly(conn);
  }
}

/**
 * A listener of a syslog input that could not be opened: which one, and why (`cause`: the error
 * of `Deno.listen`, e.g. `Deno.errors.AddrInUse`, or of reading the certificate).
 */
export class SyslogListenError extends Error {
  /** `tcp`, `udp` or `tls`. */
  readonly transport: "tcp" | "udp" | "tls";
  /** Where it was to listen. */
  readonly address: { hostname: string; port: number };

  constructor(transport: "tcp" | "udp" | "tls", address: SyslogAddress, cause: unknown) {
    const hostname = address.hostname ?? "0.0.0.0";
    super(
      `Cannot listen for syslog over ${transport} on ${hostname}:${address.port}: ${
        describe(cause)
      }`,
      { cause },
    );
    this.name = "SyslogListenError";
    this.transport = transport;
    this.address = { hostname, port: address.port };
  }
}

/** Opens one listener; its error becomes a {@linkcode SyslogListenError} naming it. */
function bind<T>(transport: "tcp" | "udp" | "tls", address: SyslogAddress, open: () => T): T {
  try {
    return open();
  } catch (err) {
    throw new SyslogListenError(transport, address, err);
  }
}

/** A PEM file's text; a clear error naming the file and what it was for when it cannot be read. */
function readPem(path: string, what: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    throw new Error(`Cannot read the TLS ${what} "${path}": ${describe(err)}`, { cause: err });
  }
}

/** The level code of each syslog severity (see `normalizeLevel`): 0-2 fatal ... 7 debug. */
const SEVERITY_LEVELS = Uint8Array.from(
  [0, 1, 2, 3, 4, 5, 6, 7],
  (severity) => levelCode(normalizeLevel(severity)),
);

/**
 * Each message's level from the severity of its `<PRI>` (0: none, for a message without one),
 * into `out`; returns the view of its first `lines` codes.
 */
function priLevels(
  data: Uint8Array,
  ends: Uint32Array,
  lines: number,
  out: Uint8Array,
): Uint8Array {
  let start = 0;
  for (let i = 0; i < lines; i++) {
    let code = 0;
    if (data[start] === 0x3c) {
      let pri = 0;
      let k = start + 1;
      const stop = Math.min(k + 3, ends[i]);
      while (k < stop && data[k] >= 0x30 && data[k] <= 0x39) pri = pri * 10 + data[k++] - 0x30;
      if (k > start + 1 && data[k] === 0x3e && pri <= 191) code = SEVERITY_LEVELS[pri & 7];
    }
    out[i] = code;
    start = ends[i] + 1;
  }
  return out.subarray(0, lines);
}
