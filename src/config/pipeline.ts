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
import { BuildError, type BuiltSink, type InputContext, type LiveSink } from "./component.ts";
import { INPUTS, SINKS } from "./registry.ts";
import { planReload } from "./reload.ts";
import { sameSocket, type ServerConfig } from "./server_config.ts";

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

/** What a reload did, input names by what happened to them. */
export interface ReloadResult {
  /** Inputs started. */
  added: string[];
  /** Inputs stopped. */
  removed: string[];
  /** Inputs updated in place (a listener kept its socket). */
  updated: string[];
  /** Inputs stopped and started again with their new values. */
  rebuilt: string[];
  /** Whether `log_level` changed (the caller applies it). */
  logLevel: boolean;
}

/** A reload that cannot be applied: the running config stays. */
export class ReloadRefused extends Error {
  /**
   * @param reason why, in one line.
   */
  constructor(reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = "ReloadRefused";
  }
}

/** The server's components, running. */
export class Pipeline {
  /** The inputs from the config's `inputs`, by name. */
  readonly #inputs: Map<string, Input>;
  /** The HTTP API, when on. */
  readonly #api: Input | undefined;
  /** The sinks' built forms, in the config's order. */
  readonly #sinks: readonly NamedSink[];
  readonly #router: Router;
  readonly #marks: StreamMarks | undefined;
  readonly #context: InputContext;
  /** The config running now. */
  #config: ServerConfig;
  /** Reloads and the close, one after another. */
  #work: Promise<unknown> = Promise.resolve();
  #closing = false;

  private constructor(
    parts: {
      inputs: Map<string, Input>;
      api: Input | undefined;
      sinks: readonly NamedSink[];
      router: Router;
      marks: StreamMarks | undefined;
      context: InputContext;
    },
    config: ServerConfig,
  ) {
    this.#inputs = parts.inputs;
    this.#api = parts.api;
    this.#sinks = parts.sinks;
    this.#router = parts.router;
    this.#marks = parts.marks;
    this.#context = parts.context;
    this.#config = config;
  }

  /** The inputs running now, the HTTP API's among them. */
  get inputs(): Input[] {
    return [...this.#inputs.values(), ...(this.#api ? [this.#api] : [])];
  }

  /** The config running now. */
  get config(): ServerConfig {
    return this.#config;
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
    const inputs = new Map<string, Input>();
    let api: Input | undefined;
    let router: Router | undefined;
    let context: InputContext;
    try {
      for (const [name, sinkConfig] of Object.entries(config.sinks)) {
        const built = await SINKS[sinkConfig.type].build(name, sinkConfig, { marks });
        sinks.push({ ...built, name });
      }
      const sources = new SourceStats();
      router = new Router([...sinks.map((s) => s.sink), sources]);
      context = {
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
        // The map a reload updates, and the HTTP API once it runs.
        inputMetrics: () =>
          [...inputs.values(), ...(api ? [api] : [])].map((input) => ({
            name: input.name,
            type: input.type,
            stats: input.stats(),
          })),
        queueBytes: Math.max(0, ...sinks.map((s) => s.queueBytes ?? 0)),
        reads: {
          labels: new Set(sinks.flatMap((s) => [...s.reads?.labels ?? []])),
          times: sinks.some((s) => s.reads?.times ?? false),
        },
      };
      const listed = Object.keys(config.inputs);
      const withApi = config.http.address === undefined ? listed : [...listed, API];
      for (const name of startOrder(config, withApi)) {
        if (name === API) api = await INPUTS.http.build("http", config.http, context);
        else {inputs.set(
            name,
            await INPUTS[config.inputs[name].type].build(name, config.inputs[name], context),
          );}
      }
    } catch (err) {
      await Promise.allSettled([...inputs.values(), ...(api ? [api] : [])].map((i) => i.close()));
      const opened = router === undefined ? sinks.map((s) => s.sink) : [router];
      await Promise.allSettled(opened.map((sink) => sink.close()));
      await marks?.close();
      throw asBuildError(err);
    }
    if (marks) reportMarks(marks, stateDir);
    const pipeline = new Pipeline({ inputs, api, sinks, router, marks, context }, config);
    pipeline.#ready();
    return pipeline;
  }

  /**
   * Applies `next` while running: inputs added, removed or changed are started, stopped, updated
   * in place or rebuilt, the others keep running. Lines an input took before it stops are in the
   * router when it is gone; a listener that keeps its address keeps its socket.
   *
   * @throws {ReloadRefused} when `next` changes what cannot change while running, or an input
   * cannot start (its port is taken): the running config stays, inputs stopped for the reload are
   * started again.
   */
  reload(next: ServerConfig): Promise<ReloadResult> {
    if (this.#closing) return Promise.reject(new ReloadRefused("the server is stopping"));
    const work = this.#work.then(() => this.#reload(next));
    this.#work = work.catch(() => {});
    return work;
  }

  async #reload(next: ServerConfig): Promise<ReloadResult> {
    const plan = planReload(this.#config, next);
    if (plan.refused !== undefined) throw new ReloadRefused(plan.refused);
    const result: ReloadResult = {
      added: plan.added,
      removed: plan.removed,
      updated: [],
      rebuilt: [],
      logLevel: plan.logLevel,
    };
    const updates: (() => void)[] = [];
    for (const name of plan.changed) {
      const after = next.inputs[name];
      const update = this.#config.inputs[name].type === after.type
        ? INPUTS[after.type].update?.(this.#inputs.get(name)!, after)
        : undefined;
      if (update !== undefined) updates.push(update);
      (update !== undefined ? result.updated : result.rebuilt).push(name);
    }
    const going = [...plan.removed, ...result.rebuilt];
    const first = this.#stopFirst(next, plan.added, result.rebuilt, going);
    const previous = new Map<string, Input>();
    await Promise.all(first.map(async (name) => {
      previous.set(name, this.#inputs.get(name)!);
      await this.#inputs.get(name)!.close();
      this.#inputs.delete(name);
    }));
    const built = new Map<string, Input>();
    try {
      for (const name of startOrder(next, [...plan.added, ...result.rebuilt])) {
        const input = next.inputs[name];
        built.set(
          name,
          await INPUTS[input.type].build(name, input, this.#context, previous.get(name)),
        );
      }
    } catch (err) {
      await Promise.allSettled([...built.values()].map((input) => input.close()));
      await this.#restart(first, previous);
      throw new ReloadRefused(asBuildError(err).message, { cause: err });
    }
    await Promise.all(
      going.filter((name) => !first.includes(name)).map(async (name) => {
        await this.#inputs.get(name)!.close();
        this.#inputs.delete(name);
      }),
    );
    for (const update of updates) update();
    for (const [name, input] of built) this.#inputs.set(name, input);
    this.#config = next;
    return result;
  }

  /**
   * The inputs to stop before the new ones start: rebuilt inputs that do not listen (watched
   * files hand their positions over, and must not be read by two inputs at once), and those
   * holding a socket a new listener needs.
   */
  #stopFirst(next: ServerConfig, added: string[], rebuilt: string[], going: string[]): string[] {
    const wanted = [...added, ...rebuilt].flatMap((name) =>
      INPUTS[next.inputs[name].type].listens?.(next.inputs[name]) ?? []
    );
    return going.filter((name) => {
      const running = this.#config.inputs[name];
      const listens = INPUTS[running.type].listens;
      if (listens === undefined) return rebuilt.includes(name);
      return listens(running).some((held) =>
        wanted.some((want) =>
          want.transport === held.transport && sameSocket(want.address, held.address)
        )
      );
    });
  }

  /** Starts again, from the running config, the inputs a failed reload had stopped. */
  async #restart(names: readonly string[], previous: Map<string, Input>): Promise<void> {
    for (const name of names) {
      const input = this.#config.inputs[name];
      try {
        this.#inputs.set(
          name,
          await INPUTS[input.type].build(name, input, this.#context, previous.get(name)),
        );
      } catch (err) {
        log.error("Input {name} stopped for a reload could not start again: {error}", {
          name,
          error: asBuildError(err).message,
        });
      }
    }
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
    // A reload under way finishes first, so every input it started is stopped here; none starts
    // after.
    this.#closing = true;
    await this.#work;
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

/** Stands for the HTTP API among the inputs to start. */
const API = "\0http";

/**
 * `names` (of `config.inputs`, and {@linkcode API}) in the order to start them: the listeners
 * first, then the HTTP API, then the rest (watched files), so a port that is taken stops startup
 * before any file is read.
 */
function startOrder(config: ServerConfig, names: readonly string[]): string[] {
  const listens = (name: string) =>
    name !== API && INPUTS[config.inputs[name].type].listens !== undefined;
  return [
    ...names.filter(listens),
    ...names.filter((name) => name === API),
    ...names.filter((name) => name !== API && !listens(name)),
  ];
}

/** `err` as a {@linkcode BuildError}, to log as one line. */
function asBuildError(err: unknown): BuildError {
  return err instanceof BuildError
    ? err
    : new BuildError("Cannot start: {error}", { error: describe(err) }, { cause: err });
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
