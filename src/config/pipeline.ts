/**
 * The running server, built from one {@linkcode ServerConfig} through the registry: the sinks
 * (behind one router, with the per-source counters), the connection gate every listener shares,
 * the HTTP API, and the inputs. A startup problem closes whatever was opened and is thrown as a
 * {@linkcode BuildError}, one line for the log.
 *
 * A reload ({@linkcode Pipeline.reload}) rebuilds what changed while the rest runs: sinks are
 * built beside the running ones and swapped into the router (the old ones drain), inputs are
 * started, stopped, updated in place or rebuilt, and the HTTP API takes its new keys in place.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { type AlertChanges, AlertEngine, type AlertsView } from "../alerts/engine.ts";
import type { Clock } from "../clock.ts";
import type { SinkMetrics } from "../api/metrics.ts";
import { SourceStats } from "../api/source_stats.ts";
import { ConnectionGate } from "../net/accept.ts";
import type { Input } from "../pipeline/input.ts";
import { Router } from "../pipeline/router.ts";
import type { Sink } from "../pipeline/sink.ts";
import { stateDirConflict } from "../store/state_dir.ts";
import { StreamMarks } from "../store/stream_marks.ts";
import { compiledTransforms } from "../transforms/config.ts";
import { TransformStage } from "../transforms/stage.ts";
import { type FieldNeeds, needsWith, NO_FIELDS } from "../transforms/step.ts";
import {
  BuildError,
  type BuiltSink,
  type ContextPart,
  type InputContext,
  type LiveSink,
} from "./component.ts";
import { type ApiMove, moveApi, reconfigureApi } from "./inputs/http.ts";
import { INPUTS, SINKS } from "./registry.ts";
import { planReload, stateDir } from "./reload.ts";
import { sameSocket, type ServerConfig } from "./server_config.ts";

/** Options of {@linkcode Pipeline.start}. */
export interface PipelineOptions {
  /**
   * Whether the config came from flags: messages then name flags (`-port`) rather than key
   * paths (`inputs.tcp.address`). Default false.
   */
  fromFlags?: boolean;
  /** The clock alerts run on (windows, resolving, webhook retries). Default the wall clock. */
  clock?: Clock;
}

const log = getLogger(["logboom", "serve"]);

/** A built sink with its name and type. */
interface NamedSink extends BuiltSink {
  name: string;
  type: string;
}

/** What a reload did, component names by what happened to them. */
export interface ReloadResult {
  /** Inputs started. */
  added: string[];
  /** Inputs stopped. */
  removed: string[];
  /** Inputs updated in place (a listener kept its socket). */
  updated: string[];
  /** Inputs stopped and started again with their new values. */
  rebuilt: string[];
  /** Sinks by what happened to them: rebuilt ones drain the old sink in the background. */
  sinks: { added: string[]; removed: string[]; rebuilt: string[] };
  /** Keys of `http` applied in place (`address`: the API was bound anew). */
  http: string[];
  /** Keys of `net` applied in place. */
  net: string[];
  /** Whether `log_level` changed (the caller applies it). */
  logLevel: boolean;
  /** Transform pipelines by what happened to them: changed ones were compiled anew. */
  transforms: { added: string[]; removed: string[]; rebuilt: string[] };
  /** Alerts by what happened to them: rebuilt ones start anew, unchanged ones keep their state. */
  alerts: AlertChanges;
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
  readonly #inputs = new Map<string, Input>();
  /** The HTTP API, when on. */
  #api: Input | undefined;
  /** The sinks' built forms, in the config's order. */
  #sinks: NamedSink[] = [];
  #router: Router | undefined;
  /**
   * The transform stage between the inputs and the router: when the config came from a file
   * (its `transforms` may come or change on reload) or has a `transforms` section. A server
   * started from flags alone has none: its inputs write to the router and pay nothing for it.
   */
  #stage: TransformStage | undefined;
  /**
   * The alerts, a sink of the router while the config has any: without, nothing of them is on
   * the data path.
   */
  #alerts: AlertEngine | undefined;
  readonly #clock: Clock | undefined;
  /** What the HTTP API reads of the alerts running now. */
  readonly #alertsView: AlertsView = {
    list: () => this.#alerts?.list() ?? [],
    metrics: () => this.#alerts?.metrics() ?? "",
  };
  readonly #sources = new SourceStats();
  readonly #gate: ConnectionGate;
  readonly #marks: StreamMarks | undefined;
  readonly #stateDir: string;
  readonly #say: InputContext["say"];
  #context: InputContext | undefined;
  /** The config running now. */
  #config: ServerConfig;
  /** Reloads and the close, one after another. */
  #work: Promise<unknown> = Promise.resolve();
  #closing = false;

  private constructor(
    config: ServerConfig,
    parts: {
      marks: StreamMarks | undefined;
      stateDir: string;
      say: InputContext["say"];
      clock?: Clock;
    },
  ) {
    this.#config = config;
    this.#clock = parts.clock;
    this.#marks = parts.marks;
    this.#stateDir = parts.stateDir;
    this.#say = parts.say;
    // One cap over every listener: together they must stay under the descriptor limit.
    this.#gate = new ConnectionGate(config.net.max_connections);
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
    const reason = whyNot(config, say);
    if (reason !== undefined) throw new BuildError("{reason}", { reason });
    const fileSink = Object.values(config.sinks).find((sink) => sink.type === "file");
    const dir = stateDir(config);
    // Before any log file is opened: settling the batches of a crash may cut a torn one back.
    const marks = config.http.address === undefined
      ? undefined
      : await openMarks(fileSink?.path as string | undefined, dir, fileSink?.fsync === "batch");
    const pipeline = new Pipeline(config, { marks, stateDir: dir, say, clock: options.clock });
    try {
      await pipeline.#build(!options.fromFlags);
    } catch (err) {
      await Promise.allSettled(pipeline.inputs.map((input) => input.close()));
      const router = pipeline.#router;
      const opened = router === undefined ? pipeline.#sinks.map((s) => s.sink) : [router];
      await Promise.allSettled(opened.map((sink) => sink.close()));
      await marks?.close();
      throw asBuildError(err);
    }
    if (marks) reportMarks(marks, dir);
    pipeline.#ready();
    return pipeline;
  }

  /** @param reloadable whether the config came from a file that may change while running. */
  async #build(reloadable: boolean): Promise<void> {
    const config = this.#config;
    for (const [name, sinkConfig] of Object.entries(config.sinks)) {
      const built = await SINKS[sinkConfig.type].build(name, sinkConfig, {
        marks: this.#marks,
        stateDir: this.#stateDir,
      });
      this.#sinks.push({ ...built, name, type: sinkConfig.type });
    }
    const staged = reloadable || config.transforms !== undefined;
    this.#configureAlerts(config);
    this.#router = new Router(this.#routed(this.#sinks.map((s) => s.sink), staged));
    if (staged) {
      // The per-source counters count lines as received: before the steps, which may drop some.
      // With no pipeline a batch costs the stage one lookup of its source.
      this.#stage = new TransformStage(this.#router, compiledTransforms(config.transforms ?? {}), {
        tap: this.#sources,
        needs: fieldNeedsOf(this.#sinks, this.#alerts?.fieldNames),
      });
    }
    const context = this.#contextFor(config, this.#sinks);
    this.#context = context;
    if (context.live !== undefined) { for (const s of this.#sinks) s.attachLive?.(context.live); }
    const listed = Object.keys(config.inputs);
    const withApi = config.http.address === undefined ? listed : [...listed, API];
    for (const name of startOrder(config, withApi)) {
      if (name === API) this.#api = await INPUTS.http.build("http", config.http, context);
      else {
        const input = config.inputs[name];
        this.#inputs.set(name, await INPUTS[input.type].build(name, input, context));
      }
    }
  }

  /** What inputs are built with, for `config` and its built `sinks`. */
  #contextFor(config: ServerConfig, sinks: readonly NamedSink[]): InputContext {
    return {
      router: this.#stage ?? this.#router!,
      gate: this.#gate,
      net: config.net,
      say: this.#say,
      outputs: sinks.flatMap((s) => s.outputs ?? []),
      // The folder the server started with: a reload never moves it (see `reload.ts`).
      stateDir: this.#stateDir,
      live: sinks.find((s) => s.live !== undefined)?.live as LiveSink | undefined,
      sources: this.#sources,
      marks: this.#marks,
      // The sinks and inputs running when asked: a reload changes them.
      sinkMetrics: () => this.#sinks.map((s): SinkMetrics => s.metrics()),
      inputMetrics: () =>
        this.inputs.map((input) => ({ name: input.name, type: input.type, stats: input.stats() })),
      queueBytes: Math.max(0, ...sinks.map((s) => s.queueBytes ?? 0)),
      transformMetrics: () => this.#stage?.metrics() ?? "",
      running: () => this.#config,
      alerts: this.#alertsView,
      reads: {
        labels: new Set(sinks.flatMap((s) => [...s.reads?.labels ?? []])),
        times: sinks.some((s) => s.reads?.times ?? false),
        // Alerts read levels too: syslog then gives each line its severity's.
        levels: sinks.some((s) => s.reads?.levels ?? false) ||
          Object.values(config.alerts ?? {}).some((alert) => alert.level !== undefined),
        fields: sinks.some((s) => s.reads?.fields ?? false),
        lineEnds: sinks.some((s) => s.reads?.lineEnds ?? false),
      },
    };
  }

  /**
   * Applies `next` while running; what did not change keeps running:
   *
   * - sinks added or changed are built beside the running ones, then swapped into the router:
   *   new batches go to them, a sink replaced or removed stores what it took and closes in the
   *   background, and acknowledgements wait for it until it has (see {@linkcode Router.swap});
   * - inputs added, removed or changed are started, stopped, updated in place or rebuilt, as are
   *   those whose context changed (see `InputComponent.uses`); lines an input took before it
   *   stops are in the router when it is gone; a listener that keeps its address keeps its
   *   socket;
   * - the HTTP API takes new keys in place, and a new address is bound before the old one is
   *   given up; `net` applies in place.
   *
   * @throws {ReloadRefused} when `next` changes what cannot change while running, or a component
   * cannot start (a port taken, a file that cannot be opened): the running config stays, inputs
   * stopped for the reload are started again.
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
    const reason = whyNot(next, this.#say);
    if (reason !== undefined) throw new ReloadRefused(reason);
    const built = await this.#buildSinks(next, [...plan.sinks.added, ...plan.sinks.changed]);
    const sinks = Object.keys(next.sinks).map((name) =>
      built.get(name) ?? this.#sinks.find((s) => s.name === name)!
    );
    const context = this.#contextFor(next, sinks);
    const moved = changedParts(this.#context!, context);
    let move: ApiMove | undefined;
    try {
      if (this.#api !== undefined && plan.http.includes("address")) {
        move = moveApi(this.#api, next.http, context);
      }
      const inputs = await this.#reloadInputs(next, plan, context, moved);
      const alerts = this.#configureAlerts(next);
      this.#commit(next, sinks, context, move, new Set(plan.transforms.unchanged));
      const { added, removed, changed } = plan.transforms;
      if (added.length + removed.length + changed.length > 0) {
        const names = (list: string[]) => list.join(", ") || "none";
        log.info(
          "Transform pipelines reloaded: added {added}; removed {removed}; compiled anew {changed}",
          { added: names(added), removed: names(removed), changed: names(changed) },
        );
      }
      if (alerts.added.length + alerts.removed.length + alerts.rebuilt.length > 0) {
        const names = (list: string[]) => list.join(", ") || "none";
        log.info(
          "Alerts reloaded: added {added}; removed {removed}; started anew {rebuilt}; kept " +
            "{unchanged}",
          {
            added: names(alerts.added),
            removed: names(alerts.removed),
            rebuilt: names(alerts.rebuilt),
            unchanged: names(alerts.unchanged),
          },
        );
      }
      return {
        ...inputs,
        sinks: {
          added: plan.sinks.added,
          removed: plan.sinks.removed,
          rebuilt: plan.sinks.changed,
        },
        http: plan.http,
        net: plan.net,
        logLevel: plan.logLevel,
        transforms: {
          added: plan.transforms.added,
          removed: plan.transforms.removed,
          rebuilt: plan.transforms.changed,
        },
        alerts,
      };
    } catch (err) {
      await move?.rollback();
      await Promise.allSettled([...built.values()].map((s) => s.sink.close()));
      throw err instanceof ReloadRefused
        ? err
        : new ReloadRefused(asBuildError(err).message, { cause: err });
    }
  }

  /** Builds the sinks `names` of `next`, each given the one it replaces. */
  async #buildSinks(next: ServerConfig, names: string[]): Promise<Map<string, NamedSink>> {
    const built = new Map<string, NamedSink>();
    try {
      for (const name of names) {
        const values = next.sinks[name];
        const running = this.#sinks.find((s) => s.name === name && s.type === values.type);
        const sink = await SINKS[values.type].build(name, values, {
          marks: this.#marks,
          stateDir: this.#stateDir,
          previous: running,
        });
        built.set(name, { ...sink, name, type: values.type });
      }
    } catch (err) {
      await Promise.allSettled([...built.values()].map((s) => s.sink.close()));
      throw new ReloadRefused(asBuildError(err).message, { cause: err });
    }
    return built;
  }

  /**
   * Stops, starts, updates and rebuilds inputs as the plan and the new context ask. Inputs
   * updated in place change only once everything started; on a failure, what was started is
   * stopped and what was stopped started again, and it throws {@linkcode ReloadRefused}.
   */
  async #reloadInputs(
    next: ServerConfig,
    plan: { added: string[]; removed: string[]; changed: string[]; unchanged: string[] },
    context: InputContext,
    moved: ReadonlySet<ContextPart>,
  ): Promise<Pick<ReloadResult, "added" | "removed" | "updated" | "rebuilt">> {
    const result = { added: plan.added, removed: plan.removed, updated: [], rebuilt: [] } as Pick<
      ReloadResult,
      "added" | "removed" | "updated" | "rebuilt"
    >;
    const updates: (() => void)[] = [];
    for (const name of [...plan.changed, ...plan.unchanged]) {
      const steps = this.#inPlace(name, next, plan.changed.includes(name), context, moved);
      if (steps?.length === 0) continue;
      if (steps !== undefined) updates.push(...steps);
      (steps !== undefined ? result.updated : result.rebuilt).push(name);
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
        built.set(name, await INPUTS[input.type].build(name, input, context, previous.get(name)));
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
    return result;
  }

  /**
   * How input `name` takes `next`: `[]` when nothing of it changed, the steps that update it in
   * place, or `undefined` when it must be rebuilt.
   */
  #inPlace(
    name: string,
    next: ServerConfig,
    changed: boolean,
    context: InputContext,
    moved: ReadonlySet<ContextPart>,
  ): (() => void)[] | undefined {
    const after = next.inputs[name];
    const component = INPUTS[after.type];
    const touched = (component.uses ?? []).some((part) => moved.has(part));
    if (!changed && !touched) return [];
    if (this.#config.inputs[name].type !== after.type) return undefined;
    const input = this.#inputs.get(name)!;
    const steps: (() => void)[] = [];
    if (changed) {
      const apply = component.update?.(input, after);
      if (apply === undefined) return undefined;
      steps.push(apply);
    }
    if (touched) {
      const apply = component.adapt?.(input, context);
      if (apply === undefined) return undefined;
      steps.push(apply);
    }
    return steps;
  }

  /**
   * What makes the reload real once every component of it started: the router's new sinks (the
   * old ones drain), the HTTP API's new keys and address, the connection cap, the journal's
   * fsync mode.
   */
  #commit(
    next: ServerConfig,
    sinks: NamedSink[],
    context: InputContext,
    move: ApiMove | undefined,
    unchangedTransforms: ReadonlySet<string>,
  ): void {
    if (this.#api !== undefined) {
      move?.commit();
      reconfigureApi(this.#api, next.http, context)?.catch((err) => {
        log.warn("The live tails of the replaced live sink did not end cleanly: {error}", {
          error: describe(err),
        });
      });
    }
    const leaving = this.#sinks.filter((s) => !sinks.includes(s)).map((s) => s.name);
    // Compiled when the config was read; unchanged pipelines keep running as they were.
    this.#stage?.configure(compiledTransforms(next.transforms ?? {}), unchangedTransforms);
    this.#router!.swap(this.#routed(sinks.map((s) => s.sink))).catch((err) => {
      log.error("A sink the reload replaced ({names}) could not store everything: {error}", {
        names: leaving.join(", "),
        error: describe(err),
      });
    });
    // The batches from now on go to the new sinks: the rules give what those read.
    if (this.#stage !== undefined) {
      this.#stage.needs = fieldNeedsOf(sinks, this.#alerts?.fieldNames);
    }
    // Cluster tails feed the live hub: a sink built by this reload attaches to it, and every sink
    // does when the live sink itself was built anew.
    if (context.live !== undefined) {
      const liveChanged = context.live !== this.#context?.live;
      for (const s of sinks) {
        if (liveChanged || !this.#sinks.includes(s)) s.attachLive?.(context.live);
      }
    }
    const file = sinks.find((s) => s.fsync !== undefined);
    if (this.#marks !== undefined && file !== undefined) this.#marks.sync = file.fsync === "batch";
    this.#gate.max = next.net.max_connections;
    this.#sinks = sinks;
    this.#context = context;
    this.#config = next;
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
          await INPUTS[input.type].build(name, input, this.#context!, previous.get(name)),
        );
      } catch (err) {
        log.error("Input {name} stopped for a reload could not start again: {error}", {
          name,
          error: asBuildError(err).message,
        });
      }
    }
  }

  /**
   * What the router fans out to: the sinks, and the per-source counters unless a transform stage
   * taps them before its steps (`tapped`, by default whether this server has one).
   */
  #routed(sinks: Sink[], tapped = this.#stage !== undefined): Sink[] {
    const alerts = this.#alerts === undefined ? [] : [this.#alerts];
    return tapped ? [...sinks, ...alerts] : [...sinks, this.#sources, ...alerts];
  }

  /**
   * Runs `config`'s alerts: those whose rule did not change keep their state. The engine is in
   * the router (see `#routed`) only while there are alerts; one left empty leaves the router at
   * its next swap, which closes it.
   */
  #configureAlerts(config: ServerConfig): AlertChanges {
    const rules = config.alerts ?? {};
    if (this.#alerts !== undefined) {
      const changes = this.#alerts.configure(rules);
      if (this.#alerts.size === 0) this.#alerts = undefined;
      return changes;
    }
    const added = Object.keys(rules);
    if (added.length > 0) this.#alerts = new AlertEngine(rules, { clock: this.#clock });
    return { added, removed: [], rebuilt: [], unchanged: [] };
  }

  /** Reopens every sink's files before their next write (logrotate's SIGHUP). */
  reopen(): void {
    log.info("SIGHUP: reopening the log files");
    for (const sink of this.#sinks) sink.reopen?.();
  }

  /**
   * Stops: every input stops taking lines and hands what it took to the router, then the sinks
   * (those a reload replaced included) store what they hold and close. When `signal` aborts
   * first, it stops waiting and rejects.
   */
  async close(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    // A reload under way finishes first, so every input it started is stopped here; none starts
    // after.
    this.#closing = true;
    await this.#work;
    // Stop taking lines everywhere first, so everything taken is in the router when it closes.
    await Promise.all(this.inputs.map((input) => input.close({ signal })));
    await this.#router!.close({ signal });
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
      paths: paths.map((p) => `"${p}"`).join(", ") || "no file",
    });
  }
}

/** The parts of the context that differ between `before` and `after`. */
function changedParts(before: InputContext, after: InputContext): Set<ContextPart> {
  const parts = new Set<ContextPart>();
  if (JSON.stringify(before.outputs) !== JSON.stringify(after.outputs)) parts.add("outputs");
  const reads = (c: InputContext) =>
    JSON.stringify([
      [...c.reads.labels].sort(),
      c.reads.times,
      c.reads.levels ?? false,
      c.reads.fields ?? false,
      c.reads.lineEnds ?? false,
    ]);
  if (reads(before) !== reads(after)) parts.add("reads");
  if (before.net.idle_timeout !== after.net.idle_timeout) parts.add("idle_timeout");
  return parts;
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

/** The first reason a component of `config` cannot run as configured, before anything is opened. */
function whyNot(config: ServerConfig, say: InputContext["say"]): string | undefined {
  const reasons = [
    ...Object.values(config.sinks).map((sink) => SINKS[sink.type].refuse?.(sink)),
    INPUTS.http.refuse?.(config.http, { say }),
    ...Object.values(config.inputs).map((input) => INPUTS[input.type].refuse?.(input, { say })),
  ];
  return reasons.find((r) => r !== undefined);
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

/**
 * What the sinks read of the lines' fields, now: the names their templates use, all of them for
 * the JSON format, all while a live tail is open. The rules give only those (`parse: json`
 * picks them). The same object while it holds, so the rules plan their steps once for it.
 */
function fieldNeedsOf(
  sinks: readonly BuiltSink[],
  alerts: ReadonlySet<string> = NO_FIELDS as ReadonlySet<string>,
): () => FieldNeeds {
  // The alerts' rules read their fields after the transforms, as sinks do.
  let fixed: FieldNeeds = alerts.size === 0 ? NO_FIELDS : needsWith(NO_FIELDS, alerts);
  for (const { reads } of sinks) {
    if (reads?.fields !== true) continue;
    fixed = reads.fieldNames === undefined ? "all" : needsWith(fixed, reads.fieldNames);
  }
  const now = sinks.flatMap((s) => s.readsAllFieldsNow === undefined ? [] : [s.readsAllFieldsNow]);
  if (fixed === "all" || now.length === 0) return () => fixed;
  return () => {
    for (const reads of now) if (reads()) return "all";
    return fixed;
  };
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
