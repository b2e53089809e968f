/**
 * What a component is: a key table (its typed config, see `keys.ts`) and a `build()` that turns
 * checked values into a running input or sink, as Vector's `SourceConfig::build` does. The
 * registry (`registry.ts`) names them; the pipeline (`pipeline.ts`) builds them from one
 * {@linkcode ServerConfig}.
 *
 * @module
 */

import { describe } from "../_util.ts";
import type { AlertsView } from "../alerts/engine.ts";
import type { InputMetrics, SinkMetrics } from "../api/metrics.ts";
import type { SourceStats } from "../api/source_stats.ts";
import type { LiveHub } from "../live/hub.ts";
import type { ConnectionGate } from "../net/accept.ts";
import type { Input } from "../pipeline/input.ts";
import type { Sink } from "../pipeline/sink.ts";
import type { StreamMarks } from "../store/stream_marks.ts";
import type { HostPort } from "../units.ts";
import type { KeyTable, Problems, Values } from "./keys.ts";

/** The settings every connection-taking input shares (the `net` section). */
export interface NetLimits {
  /** Most connections open at once, over every listener. */
  max_connections: number;
  /** How long a connection may send nothing, in ms. */
  idle_timeout: number;
}

/** What an input's `build()` is given besides its own values. */
export interface InputContext {
  /** Where the input writes its batches: the router over every sink. */
  router: Sink;
  /** The connection cap every listener shares. */
  gate: ConnectionGate;
  /** The `net` section. */
  net: NetLimits;
  /**
   * How a key is named in a message: the flag (`-port`) when the config came from flags, the key
   * path (`inputs.tcp.address`) when it came from a file.
   */
  say(path: string, flag: string): string;
  /** What the sinks write (paths and templates), which watched files must never include. */
  outputs: readonly string[];
  /** logboom's state folder, whose files are never watched either. */
  stateDir: string;
  /** The live hub and its tail rate; `undefined` without the HTTP API. */
  live?: LiveSink;
  /** Per-source counters (a sink in the router). */
  sources: SourceStats;
  /** Stream marks for idempotent HTTP ingest; `undefined` without the HTTP API. */
  marks?: StreamMarks;
  /** Each sink's counters, read at request time. */
  sinkMetrics(): SinkMetrics[];
  /** Each running input's own counters (`Input.stats()`), read at request time. */
  inputMetrics(): InputMetrics[];
  /** The largest queue bound among the sinks, in bytes. */
  queueBytes: number;
  /** What the sinks read of a batch besides its bytes: inputs parse only that (syslog). */
  reads: BatchReads;
  /** The transform steps' counters as Prometheus text, read at request time; `""` for none. */
  transformMetrics?(): string;
  /** The config running now, read at request time (`GET /api/v1/status`). */
  running?(): unknown;
  /** The alerts running, read at request time (`GET /api/v1/alerts`, `/metrics`). */
  alerts?: AlertsView;
}

/**
 * What outputs read of a batch besides its bytes: the labels their path templates name (`host`
 * among them when a template has `{host}`), and whether they store each line's own time (the
 * JSON format, which stores every label too), its level or its fields (the JSON format, or a
 * template with `{level}` or `{fields.NAME}`).
 */
export interface BatchReads {
  /** Label names read, `host` included when read. */
  labels: ReadonlySet<string>;
  /** Whether each line's own time is read. */
  times: boolean;
  /** Whether each line's level (`Batch.levels`) is read. Default false. */
  levels?: boolean;
  /** Whether each line's fields (`Batch.fields`) are read. Default false. */
  fields?: boolean;
  /** With `fields`, the only ones read (a template's `{fields.NAME}`); absent: all of them. */
  fieldNames?: ReadonlySet<string>;
  /**
   * Whether each line's end (`Batch.ends`) is read: a sink that cuts batches at line counts (the
   * nats sink). Inputs that frame lines then note them as they find them. Default false.
   */
  lineEnds?: boolean;
}

/**
 * The parts of {@linkcode InputContext} a reload may change, which an input may read (see
 * {@linkcode InputComponent.uses}): the sinks' `outputs`, what they `reads` of a batch, and
 * `net.idle_timeout`.
 */
export type ContextPart = "outputs" | "reads" | "idle_timeout";

/** What a sink's `build()` is given besides its own values. */
export interface SinkContext {
  /** Stream marks the sink journals before writing marked batches, when it stores them. */
  marks?: StreamMarks;
  /** The state folder, where a file sink keeps its files' time indexes. Default: no index. */
  stateDir?: string;
  /**
   * On a reload that rebuilds the sink, the one it replaces: it takes batches until the new one
   * is swapped in, then drains and closes. A file sink writes a file both name only once the
   * old one let it go, and goes on with its counters.
   */
  previous?: BuiltSink;
}

/** The live hub as a built sink, with what the HTTP API's tail route needs. */
export interface LiveSink {
  /** The hub: a sink in the router, and what live tails subscribe to. */
  hub: LiveHub;
  /** Lines per second for all tails together; `Infinity` for no bound. */
  tailRate: number;
}

/** A sink once built. */
export interface BuiltSink {
  /** The sink the router writes to. */
  sink: Sink;
  /** Its counters for `/metrics` (labelled with the component's name). */
  metrics(): SinkMetrics;
  /** Bound of its queue, in bytes, when it has one. */
  queueBytes?: number;
  /** What it reads of a batch besides its bytes. Default: nothing. */
  reads?: BatchReads;
  /** The paths or templates it writes. */
  outputs?: readonly string[];
  /** Reopens its files (SIGHUP, after logrotate moved them). */
  reopen?(): void;
  /** Set on the live sink. */
  live?: LiveSink;
  /**
   * Whether it reads every field of the lines it is given now, besides its `reads` (the live
   * sink while a tail is open); asked per batch.
   */
  readsAllFieldsNow?(): boolean;
  /** Set on the file sink: the file sink's fsync mode, which the stream marks journal follows. */
  fsync?: "never" | "interval" | "batch";
  /**
   * Given the live hub once every sink is built (the HTTP API on): the NATS sink feeds it the
   * lines of the other ingest nodes (the cluster tail).
   */
  attachLive?(live: LiveSink): void;
}

/**
 * A startup failure to log as one line: a constant LogTape message with `{placeholders}` and the
 * values apart, so logs stay structured.
 */
export class BuildError extends Error {
  /** The message with placeholders. */
  readonly template: string;
  /** The placeholders' values. */
  readonly properties: Record<string, unknown>;

  /**
   * @param template a constant message with `{placeholders}`.
   * @param properties their values.
   */
  constructor(template: string, properties: Record<string, unknown>, options?: ErrorOptions) {
    super(template.replace(/\{(\w+)\}/g, (_, name) => String(properties[name] ?? "")), options);
    this.name = "BuildError";
    this.template = template;
    this.properties = properties;
  }
}

interface ComponentBase<T extends KeyTable> {
  /** The name a config's `type` gives, e.g. `tcp`. */
  type: string;
  /** One line on what it does, for the reference page. */
  doc: string;
  /** Its keys. */
  keys: T;
  /**
   * Checks that need more than one key, after each key passed its own: problems are added at
   * their key path under `at`.
   */
  check?(values: Values<T>, at: string, problems: Problems): void;
  /** The sockets it binds, so a config that binds one twice is refused before it runs. */
  listens?(values: Values<T>): Listener[];
}

/** A socket a component binds. */
export interface Listener {
  /** `tcp` or `udp`: the same port may be bound once for each. */
  transport: "tcp" | "udp";
  /** The address. */
  address: HostPort;
}

/** An input component. */
export interface InputComponent<T extends KeyTable = KeyTable> extends ComponentBase<T> {
  /**
   * Set when the component is configured in a top-level section of that name (the HTTP API),
   * not under `inputs`; there is then exactly one.
   */
  section?: string;
  /**
   * Why the process cannot run it as configured (a missing permission, a token required), one
   * line saying how to fix it; checked for every component before anything is opened.
   */
  refuse?(values: Values<T>, context: Pick<InputContext, "say">): string | undefined;
  /**
   * Starts it. Throws {@linkcode BuildError} (or any error) when it cannot. On a reload that
   * rebuilds it, `previous` is the input it replaces, already closed (watched files take over its
   * positions from it).
   */
  build(name: string, values: Values<T>, context: InputContext, previous?: Input): Promise<Input>;
  /**
   * How to apply changed values to the running `input` in place, on a reload (a listener then
   * keeps its socket and its connections); `undefined` when the input must be rebuilt. The reload
   * calls it once every other input of the reload has started.
   */
  update?(input: Input, values: Values<T>): (() => void) | undefined;
  /**
   * The parts of the context `build()` reads besides the input's values. A reload that changes
   * one of them rebuilds the input, unless {@linkcode InputComponent.adapt} applies it in place.
   * Default: none.
   */
  uses?: readonly ContextPart[];
  /**
   * How to apply a new context (see `uses`) to the running `input` in place, on a reload;
   * `undefined` when the input must be rebuilt. Called as `update` is.
   */
  adapt?(input: Input, context: InputContext): (() => void) | undefined;
}

/** A sink component. */
export interface SinkComponent<T extends KeyTable = KeyTable> extends ComponentBase<T> {
  /**
   * The outside service it writes to (`NATS JetStream`, `PostgreSQL`), when it needs one: the
   * complete example config, which runs as written with nothing else, leaves such sinks out
   * (`docs/scale-out.md` shows them).
   */
  service?: string;
  /** Why the process cannot run it as configured, as {@linkcode InputComponent.refuse}. */
  refuse?(values: Values<T>): string | undefined;
  /** Opens it. Throws {@linkcode BuildError} (or any error) when it cannot. */
  build(name: string, values: Values<T>, context: SinkContext): Promise<BuiltSink>;
}

/** Declares an input component with its values typed by its table. */
export function defineInput<T extends KeyTable>(component: InputComponent<T>): InputComponent {
  return component as unknown as InputComponent;
}

/** Declares a sink component with its values typed by its table. */
export function defineSink<T extends KeyTable>(component: SinkComponent<T>): SinkComponent {
  return component as unknown as SinkComponent;
}

/**
 * The startup error of a listener that cannot bind; `where` names the flag or key that chooses
 * another address, and `transport` (`udp`, `tls`, ...) is named where one input has several.
 */
export function listenError(
  err: unknown,
  address: HostPort,
  where: string,
  transport?: string,
): BuildError {
  const hint = err instanceof Deno.errors.AddrInUse
    ? `; another program has this port: choose another with ${where}`
    : "";
  const values = { host: address.hostname, port: address.port, error: describe(err), hint };
  return transport === undefined
    ? new BuildError("Cannot listen on {host}:{port}: {error}{hint}", values, { cause: err })
    : new BuildError("Cannot listen on {transport} {host}:{port}: {error}{hint}", {
      transport,
      ...values,
    }, { cause: err });
}
