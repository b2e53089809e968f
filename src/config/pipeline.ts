/**
 * The running server, built from one {@linkcode ServerConfig} through the registry: the sinks
 * (behind one router, with the per-source counters), the connection gate every listener shares,
 * the HTTP API, and the inputs. A startup problem closes whatever was opened and is thrown as a
 * {@linkcode BuildError}, one line for the log.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import type { SinkMetrics } from "../api/metrics.ts";
import { SourceStats } from "../api/source_stats.ts";
import { ConnectionGate } from "../net/accept.ts";
import type { Input } from "../pipeline/input.ts";
import { Router } from "../pipeline/router.ts";
import { defaultStateDir, stateDirConflict } from "../store/state_dir.ts";
import { StreamMarks } from "../store/stream_marks.ts";
import {
  BuildError,
  type BuiltSink,
  type InputComponent,
  type InputContext,
  type LiveSink,
} from "./component.ts";
import { INPUTS, SINKS } from "./registry.ts";
import type { ComponentConfig, ServerConfig } from "./server_config.ts";
import type { Values } from "./keys.ts";

/** Options of {@linkcode Pipeline.start}. */
export interface PipelineOptions {
  /**
   * Whether the config came from flags: messages then name flags (`-port`) rather than key
   * paths (`inputs.tcp.address`). Default false.
   */
  fromFlags?: boolean;
}

const log = getLogger(["logboom", "serve"]);

/** A built sink with its name. */
interface NamedSink extends BuiltSink {
  name: string;
}

/** The server's components, running. */
export class Pipeline {
  /** The inputs, the HTTP API's among them, in the order they were started. */
  readonly inputs: readonly Input[];
  /** The sinks' built forms, in the config's order. */
  readonly #sinks: readonly NamedSink[];
  readonly #router: Router;
  readonly #marks: StreamMarks | undefined;

  private constructor(
    inputs: readonly Input[],
    sinks: readonly NamedSink[],
    router: Router,
    marks: StreamMarks | undefined,
  ) {
    this.inputs = inputs;
    this.#sinks = sinks;
    this.#router = router;
    this.#marks = marks;
  }

  /**
   * Builds and starts every component of `config`.
   *
   * @throws {BuildError} when one cannot run (a permission missing, a port taken, a file that
   * cannot be opened); what was opened before it is closed again.
   */
  static async start(config: ServerConfig, options: PipelineOptions = {}): Promise<Pipeline> {
    const say = (path: string, flag: string) => options.fromFlags ? `-${flag}` : path;
    refuseEarly(config, say);
    const fileSinks = Object.values(config.sinks).filter((sink) => sink.type === "file");
    const mainPath = fileSinks[0]?.path as string | undefined;
    const stateDir = config.storage.state_dir ??
      defaultStateDir(mainPath ?? "aggregated_logs.txt");
    // Before any log file is opened: settling the batches of a crash may cut a torn one back.
    const marks = config.http.address === undefined
      ? undefined
      : await openMarks(mainPath, stateDir, fileSinks[0]?.fsync === "batch");
    const sinks: NamedSink[] = [];
    const inputs: Input[] = [];
    let router: Router | undefined;
    try {
      for (const [name, sinkConfig] of Object.entries(config.sinks)) {
        const built = await SINKS[sinkConfig.type].build(name, sinkConfig, { marks });
        sinks.push({ ...built, name });
      }
      const sources = new SourceStats();
      router = new Router([...sinks.map((s) => s.sink), sources]);
      const context: InputContext = {
        router,
        // One cap over every listener: together they must stay under the descriptor limit.
        gate: new ConnectionGate(config.net.max_connections),
        net: config.net,
        say,
        outputs: sinks.flatMap((s) => s.outputs ?? []),
        stateDir,
        live: sinks.find((s) => s.live !== undefined)?.live as LiveSink | undefined,
        sources,
        marks,
        sinkMetrics: () => sinks.map((s): SinkMetrics => s.metrics()),
        queueBytes: Math.max(0, ...sinks.map((s) => s.queueBytes ?? 0)),
      };
      for (const [name, component, values] of startOrder(config)) {
        inputs.push(await component.build(name, values, context));
      }
    } catch (err) {
      await Promise.allSettled(inputs.map((input) => input.close()));
      const opened = router === undefined ? sinks.map((s) => s.sink) : [router];
      await Promise.allSettled(opened.map((sink) => sink.close()));
      await marks?.close();
      throw err instanceof BuildError
        ? err
        : new BuildError("Cannot start: {error}", { error: describe(err) }, { cause: err });
    }
    if (marks) reportMarks(marks, stateDir);
    const pipeline = new Pipeline(inputs, sinks, router, marks);
    pipeline.#ready();
    return pipeline;
  }

  /** Reopens every sink's files before their next write (logrotate's SIGHUP). */
  reopen(): void {
    log.info("SIGHUP: reopening the log files");
    for (const sink of this.#sinks) sink.reopen?.();
  }

  /**
   * Stops: every input stops taking lines and hands what it took to the router, then the sinks
   * store what they hold and close. When `signal` aborts first, it stops waiting and rejects.
   */
  async close(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    // Stop taking lines everywhere first, so everything taken is in the router when it closes.
    await Promise.all(this.inputs.map((input) => input.close({ signal })));
    await this.#router.close({ signal });
    await this.#marks?.close();
  }

  /** The startup line that says the server is ready. */
  #ready(): void {
    const listening = this.inputs.filter((i) => i.address !== undefined && i.type !== "http");
    const shown = listening.length > 0
      ? listening
      : this.inputs.filter((i) => i.address !== undefined);
    const paths = this.#sinks.flatMap((s) => s.outputs ?? []);
    log.info("Listening on {listeners}, appending to {paths}", {
      listeners: shown.map((i) => i.address).join(", ") || "no socket",
      paths: paths.map((p) => `"${p}"`).join(", "),
    });
  }
}

/**
 * The inputs to start, in order: the listeners first, then the HTTP API, then the rest (watched
 * files), so a port that is taken stops startup before any file is read.
 */
function startOrder(
  config: ServerConfig,
): [string, InputComponent, Values<InputComponent["keys"]>][] {
  const listed = Object.entries(config.inputs).map(([name, input]) =>
    [name, INPUTS[input.type], input] as [string, InputComponent, ComponentConfig]
  );
  const http: typeof listed = config.http.address === undefined
    ? []
    : [["http", INPUTS.http, config.http as unknown as ComponentConfig]];
  return [
    ...listed.filter(([, c]) => c.listens !== undefined),
    ...http,
    ...listed.filter(([, c]) => c.listens === undefined),
  ];
}

/** Throws the first reason a component cannot run as configured, before anything is opened. */
function refuseEarly(config: ServerConfig, say: InputContext["say"]): void {
  const reasons = [
    ...Object.values(config.sinks).map((sink) => SINKS[sink.type].refuse?.(sink)),
    INPUTS.http.refuse?.(config.http, { say }),
    ...Object.values(config.inputs).map((input) => INPUTS[input.type].refuse?.(input, { say })),
  ];
  const reason = reasons.find((r) => r !== undefined);
  if (reason !== undefined) throw new BuildError("{reason}", { reason });
}

/**
 * The HTTP API's stream marks, from the state folder. Opened before the file sink: settling the
 * batches under way at a crash may cut a torn one back.
 */
async function openMarks(
  path: string | undefined,
  dir: string,
  sync: boolean,
): Promise<StreamMarks> {
  const conflict = path === undefined ? undefined : stateDirConflict(path, dir);
  if (conflict !== undefined) throw new BuildError("{reason}", { reason: conflict });
  try {
    // Under fsync batch the journal too is synced before an acknowledgement.
    return await StreamMarks.open(dir, { sync });
  } catch (err) {
    throw new BuildError("Cannot use the state folder {dir}: {error}", {
      dir,
      error: describe(err),
    }, { cause: err });
  }
}

/** Says, once serving, whether marks survive a restart and what the last crash left. */
function reportMarks(marks: StreamMarks, dir: string): void {
  if (marks.notReloaded !== undefined) {
    log.warn(
      "Stream marks are kept in memory only ({reason}): a batch resent after a restart is " +
        "stored again. Run with --allow-read={dir} to keep them in {dir}",
      { reason: marks.notReloaded, dir },
    );
  }
  const { stored, dropped, cut, partial } = marks.recovery;
  if (stored + dropped + partial > 0) {
    log.info(
      "Batches under way at the last stop: {stored} stored, {dropped} not stored (their resend " +
        "is), {partial} stored in part; {cut} files cut back where a batch was torn",
      { stored, dropped, partial, cut },
    );
  }
}
