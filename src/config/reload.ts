/**
 * What a reload changes: {@linkcode planReload} compares the running config with the new one.
 * Inputs and sinks are added, removed or changed one by one; `log_level`, the HTTP API's keys and
 * `net` apply in place. What cannot change while running is refused as a whole (the running
 * config stays) with the reason:
 *
 * - `storage.state_dir`, and the state folder a file sink's path implies when it is not set: the
 *   stream marks journal stays open where the server started, as Vector's `data_dir` does;
 * - the HTTP API turned on or off: the journal and the live sink start with it.
 *
 * @module
 */

import { defaultStateDir } from "../store/state_dir.ts";
import type { ServerConfig } from "./server_config.ts";

/** Components by what a reload does to them. */
export interface Changes {
  /** To build. */
  added: string[];
  /** To stop. */
  removed: string[];
  /** Whose values changed: updated in place, or rebuilt. */
  changed: string[];
  /** That keep running untouched (but for what their context asks, see `InputComponent.uses`). */
  unchanged: string[];
}

/** The plan of a reload. */
export interface ReloadPlan extends Changes {
  /** Why the new config cannot be applied while running; nothing else is set then. */
  refused?: string;
  /** The sinks, by name. */
  sinks: Changes;
  /** Keys of the `http` section that changed, applied in place (`address`: bound anew). */
  http: string[];
  /** Keys of the `net` section that changed, applied in place. */
  net: string[];
  /** Whether `log_level` changed. */
  logLevel: boolean;
  /** The transform pipelines, by name: changed ones are compiled anew, the others keep running. */
  transforms: Changes;
}

/** Compares the running config with `next`. */
export function planReload(running: ServerConfig, next: ServerConfig): ReloadPlan {
  const plan: ReloadPlan = {
    ...changes(running.inputs, next.inputs),
    sinks: changes(running.sinks, next.sinks),
    http: changedKeys(running.http, next.http),
    net: changedKeys(running.net, next.net),
    logLevel: running.log_level !== next.log_level,
    transforms: changes(running.transforms ?? {}, next.transforms ?? {}),
  };
  const refused = whyRestart(running, next);
  if (refused === undefined) return plan;
  const none = { added: [], removed: [], changed: [], unchanged: [] };
  return {
    refused,
    ...none,
    sinks: none,
    http: [],
    net: [],
    logLevel: false,
    transforms: none,
  };
}

/**
 * Why `next` needs a restart, or `undefined` when it applies while running.
 *
 * @example
 * ```ts
 * whyRestart(running, { ...running, storage: { state_dir: "/elsewhere" } });
 * // "storage.state_dir changed: ..."
 * ```
 */
export function whyRestart(running: ServerConfig, next: ServerConfig): string | undefined {
  const restart = "restart logboom to apply it";
  if (running.storage.state_dir !== next.storage.state_dir) {
    return `storage.state_dir changed from ${show(running.storage.state_dir)} to ` +
      `${show(next.storage.state_dir)}: the stream marks journal stays open in the state folder ` +
      `the server started with; ${restart}`;
  }
  const on = (config: ServerConfig) => config.http.address !== undefined;
  if (on(running) !== on(next)) {
    return `http.address turned the HTTP API ${on(next) ? "on" : "off"}: the stream marks ` +
      `journal and the live sink start and stop with the server; ${restart}`;
  }
  const [before, after] = [stateDir(running), stateDir(next)];
  if (on(next) && before !== after) {
    return `the file sink's new path moves the state folder (stream marks) from ${show(before)} ` +
      `to ${show(after)}, which changes only at a restart: set storage.state_dir: ${
        show(before)
      } to keep it, or ${restart}`;
  }
  return undefined;
}

/** The state folder `config` runs with: `storage.state_dir`, or beside the file sink's files. */
export function stateDir(config: ServerConfig): string {
  const file = Object.values(config.sinks).find((sink) => sink.type === "file");
  return config.storage.state_dir ??
    defaultStateDir((file?.path as string | undefined) ?? "aggregated_logs.txt");
}

function changes<T>(running: Record<string, T>, next: Record<string, T>): Changes {
  const out: Changes = { added: [], removed: [], changed: [], unchanged: [] };
  for (const [name, component] of Object.entries(next)) {
    const before = running[name];
    if (before === undefined) out.added.push(name);
    else if (same(before, component)) out.unchanged.push(name);
    else out.changed.push(name);
  }
  out.removed = Object.keys(running).filter((name) => !(name in next));
  return out;
}

function changedKeys(running: object, next: object): string[] {
  const a = running as Record<string, unknown>;
  const b = next as Record<string, unknown>;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((key) => !same(a[key], b[key]));
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function show(value: string | undefined): string {
  return value === undefined ? "(unset)" : JSON.stringify(value);
}
