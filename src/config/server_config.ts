/**
 * The server's whole configuration, {@linkcode ServerConfig}: the one object `serve` runs from,
 * which the flags and a config file both produce. Its shape is the config file's, Vector-like:
 *
 * ```yaml
 * log_level: info
 * storage: { state_dir: /var/lib/logboom }
 * http: { address: "127.0.0.1:8081", token: "", max_body: 16MiB }
 * net: { max_connections: 2048, idle_timeout: 1h }
 * inputs:
 *   tcp: { type: tcp, address: "0.0.0.0:8080" }
 *   local: { type: watch, paths: ["/var/log/app/*.log"] }
 * sinks:
 *   file: { type: file, path: "logs/{source}.log", rotate_every: 24h, keep: 7 }
 *   live: { type: live, max_subscribers: 1000 }
 * ```
 *
 * {@linkcode checkServerConfig} reads such a document: every problem is reported with its key
 * path, unknown keys included, and relative paths are taken from the config file's folder.
 *
 * @module
 */

import { defaultStateDir, stateDirConflict } from "../store/state_dir.ts";
import { LOG_LEVELS, type LogLevelName } from "../logging.ts";
import { formatHostPort, type HostPort } from "../units.ts";
import type { Listener, NetLimits } from "./component.ts";
import type { HttpValues } from "./inputs/http.ts";
import {
  defaultValues,
  flagsOf,
  keyPath,
  type KeyTable,
  nearest,
  Problems,
  readKeys,
  show,
  type Value,
} from "./keys.ts";
import { INPUTS, inputTypes, SINKS } from "./registry.ts";
import { readTransforms, type TransformsConfig } from "../transforms/config.ts";
import { type AlertsConfig, readAlerts } from "../alerts/config.ts";

/** The top-level keys that are plain values. */
export const TOP_KEYS = {
  log_level: {
    type: "choice",
    choices: LOG_LEVELS,
    default: "info",
    flag: "logLevel",
    doc: "Level of logboom's own logs on stderr: debug, info, warn or error",
  },
} as const satisfies KeyTable;

/** The keys of the `storage` section. */
export const STORAGE_KEYS = {
  state_dir: {
    type: "string",
    nonEmpty: true,
    path: true,
    flag: "stateDir",
    doc: "Folder of logboom's own state (stream marks); default .logboom beside the file " +
      "sink's files, which git ignores",
  },
} as const satisfies KeyTable;

/**
 * The default cap: with the default `max_open_files` of 1,024 and the descriptors the runtime
 * keeps for itself, it fits under a hard descriptor limit of 4,096, the lowest in common use
 * (Deno raises its soft limit to the hard one).
 */
export const DEFAULT_MAX_CONNECTIONS = 2048;

/** The keys of the `net` section: limits every listener shares. */
export const NET_KEYS = {
  max_connections: {
    type: "count",
    default: DEFAULT_MAX_CONNECTIONS,
    min: 1,
    flag: "maxConnections",
    doc: "Most TCP and HTTP connections open at once, together; past it a new connection is " +
      "closed at once (HTTP answers 503) and counted in /metrics",
  },
  idle_timeout: {
    type: "duration",
    default: "1h",
    flag: "idleTimeout",
    doc: "A TCP connection that sends nothing for this long is closed (keepalive is on as " +
      "well); an HTTP connection waits at most this long, and never over 75s, between requests",
  },
} as const satisfies KeyTable;

/** The sections of a config file, in the order the reference page lists them. */
export const SECTIONS = [
  "log_level",
  "storage",
  "http",
  "net",
  "inputs",
  "sinks",
  "transforms",
  "alerts",
] as const;

/** One input or sink: its component's `type` and its values, keyed as in a config file. */
export interface ComponentConfig {
  /** The component, e.g. `tcp` or `file`. */
  type: string;
  /** Its values, by key: durations in ms, sizes in bytes, addresses parsed. */
  [key: string]: Value;
}

/** The server's whole configuration. */
export interface ServerConfig {
  /** Level of logboom's own logs. */
  log_level: LogLevelName;
  /** Where logboom keeps its own state. */
  storage: { state_dir?: string };
  /** The HTTP API; `address` is `undefined` when it is off. */
  http: HttpValues;
  /** Limits every listener shares. */
  net: NetLimits;
  /** Inputs by name, in the file's order. */
  inputs: Record<string, ComponentConfig>;
  /** Sinks by name, in the file's order. With the HTTP API on, one is a `live` sink. */
  sinks: Record<string, ComponentConfig>;
  /**
   * Transform pipelines by name, in the file's order (`transforms/config.ts`); `undefined` when
   * the config has no `transforms` section: inputs then write straight to the sinks.
   */
  transforms?: TransformsConfig;
  /**
   * Alerts by name, in the file's order (`alerts/config.ts`); `undefined` when the config has no
   * `alerts` section.
   */
  alerts?: AlertsConfig;
}

/** Names of inputs and sinks: they label metrics and logs. */
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Options of {@linkcode checkServerConfig}. */
export interface CheckOptions {
  /** The config file's folder, which relative paths are taken from. Default: left as written. */
  base?: string;
}

/** What {@linkcode checkServerConfig} found: a config to use only when `problems` is empty. */
export interface Checked {
  /** The config, with defaults filled in. */
  config: ServerConfig;
  /** Every problem, each at its key path. */
  problems: Problems;
}

/** Reads a parsed config document, reporting every problem at its key path. */
export function checkServerConfig(doc: unknown, options: CheckOptions = {}): Checked {
  const problems = new Problems();
  const top = mapping(doc, "", problems) ?? {};
  for (const name of Object.keys(top)) {
    if ((SECTIONS as readonly string[]).includes(name)) continue;
    const near = nearest(name, SECTIONS);
    problems.add(
      name,
      near === undefined
        ? `unknown key (known: ${SECTIONS.join(", ")})`
        : `unknown key; did you mean "${near}"?`,
    );
  }
  const read = { problems, base: options.base };
  const config: ServerConfig = {
    log_level: readKeys(TOP_KEYS, pick(top, ["log_level"]), "", problems).log_level,
    storage: readKeys(STORAGE_KEYS, section(top, "storage", problems), "storage", problems, read),
    http: readKeys(
      INPUTS.http.keys,
      section(top, "http", problems),
      "http",
      problems,
      read,
    ) as HttpValues,
    net: readKeys(NET_KEYS, section(top, "net", problems), "net", problems),
    inputs: components(top, "inputs", read),
    sinks: components(top, "sinks", read),
  };
  const transforms = readTransforms(top.transforms, problems);
  if (transforms !== undefined) config.transforms = transforms;
  const alerts = readAlerts(top.alerts, problems);
  if (alerts !== undefined) config.alerts = alerts;
  INPUTS.http.check?.(config.http, "http", problems);
  addLiveSink(config, problems);
  checkWhole(config, problems);
  return { config, problems };
}

/** `doc`'s keys among `names`. */
function pick(doc: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(doc).filter(([name]) => names.includes(name)));
}

function mapping(value: unknown, at: string, problems: Problems) {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    return value as Record<string, unknown>;
  }
  problems.add(
    at,
    at === "" ? "the file must hold a mapping of keys" : `must be a mapping, got ${show(value)}`,
  );
  return undefined;
}

function section(top: Record<string, unknown>, name: string, problems: Problems) {
  const value = top[name];
  if (value === undefined || value === null) return {};
  return mapping(value, name, problems) ?? {};
}

/** Reads `inputs` or `sinks`: a mapping of names to components, each with its `type`. */
function components(
  top: Record<string, unknown>,
  kind: "inputs" | "sinks",
  options: { problems: Problems; base?: string },
): Record<string, ComponentConfig> {
  const { problems } = options;
  const out: Record<string, ComponentConfig> = {};
  for (const [name, value] of Object.entries(section(top, kind, problems))) {
    const at = `${kind}.${name}`;
    if (!NAME.test(name)) {
      problems.add(at, "a name is 1 to 64 letters, digits, _ or -");
    }
    const doc = mapping(value, at, problems);
    if (doc === undefined) continue;
    const component = typeOf(doc, at, kind, problems);
    if (component === undefined) continue;
    const values = readKeys(component.keys, doc, at, problems, {
      ignore: ["type"],
      base: options.base,
    });
    component.check?.(values, at, problems);
    out[name] = { type: component.type, ...values };
  }
  return out;
}

function typeOf(
  doc: Record<string, unknown>,
  at: string,
  kind: "inputs" | "sinks",
  problems: Problems,
) {
  const registry = kind === "inputs" ? INPUTS : SINKS;
  const types = kind === "inputs" ? inputTypes() : Object.keys(SINKS);
  const type = doc.type;
  if (type === undefined) {
    problems.add(keyPath(at, "type"), `is required: one of ${types.join(", ")}`);
    return undefined;
  }
  const component = typeof type === "string" && Object.hasOwn(registry, type)
    ? registry[type]
    : undefined;
  if (component !== undefined && "section" in component && component.section !== undefined) {
    problems.add(
      keyPath(at, "type"),
      `${type} is configured in the top-level ${component.section} section, not under ${kind}`,
    );
    return undefined;
  }
  if (component === undefined) {
    problems.add(keyPath(at, "type"), `must be one of ${types.join(", ")}, got ${show(type)}`);
  }
  return component;
}

/** With the HTTP API on and no live sink named, one with the defaults: the tails read it. */
function addLiveSink(config: ServerConfig, problems: Problems): void {
  const live = Object.entries(config.sinks).filter(([, sink]) => sink.type === "live");
  if (config.http.address === undefined) {
    for (const [name] of live) {
      problems.add(`sinks.${name}`, "a live sink needs the HTTP API, and http.address is off");
    }
    return;
  }
  if (live.length > 1) {
    problems.add(`sinks.${live[1][0]}`, `one live sink at most; sinks.${live[0][0]} is one`);
  }
  if (live.length > 0) return;
  if (Object.hasOwn(config.sinks, "live")) {
    problems.add("sinks.live", "the HTTP API adds a live sink named live: rename this sink");
    return;
  }
  config.sinks.live = { type: "live", ...defaultValues(SINKS.live.keys) };
}

/** Checks that span components: one file sink, something to read from, free addresses. */
function checkWhole(config: ServerConfig, problems: Problems): void {
  const files = Object.entries(config.sinks).filter(([, sink]) => sink.type === "file");
  const stores = files.length +
    Object.values(config.sinks).filter((s) => s.type === "nats" || s.type === "postgres").length;
  if (stores === 0) {
    problems.add("sinks", "needs a sink of type file, where lines are stored");
  } else if (files.length > 1) {
    // The stream marks journal one sink's files; a second would lose its copy of a batch that a
    // crash left stored in the first only.
    problems.add(
      `sinks.${files[1][0]}`,
      `one file sink for now; sinks.${files[0][0]} is one (exactly-once HTTP ingest journals ` +
        "one sink's files)",
    );
  }
  if (Object.keys(config.inputs).length === 0 && config.http.address === undefined) {
    problems.add("inputs", "nothing receives lines: add an input or turn the HTTP API on");
  }
  checkAddresses(config, problems);
  if (files.length > 0 && config.http.address !== undefined) {
    const path = files[0][1].path as string;
    const dir = config.storage.state_dir ?? defaultStateDir(path);
    if (stateDirConflict(path, dir) !== undefined) {
      problems.add(
        `sinks.${files[0][0]}.path`,
        `${show(path)} could name files inside the state folder ${show(dir)}: choose another ` +
          "path or storage.state_dir",
      );
    }
  }
}

/**
 * Two listeners on one port and transport (the same host, or either on every interface) cannot
 * both bind: the second is reported.
 */
function checkAddresses(config: ServerConfig, problems: Problems): void {
  const taken: { at: string; listener: Listener }[] = [];
  const add = (at: string, listeners: readonly Listener[]) => {
    for (const listener of listeners) {
      const clash = taken.find((t) =>
        t.listener.transport === listener.transport &&
        sameSocket(t.listener.address, listener.address)
      );
      if (clash !== undefined) {
        problems.add(
          at,
          `${listener.transport} ${
            formatHostPort(listener.address)
          } is taken by ${clash.at} already`,
        );
      }
      taken.push({ at, listener });
    }
  };
  add("http.address", INPUTS.http.listens?.(config.http) ?? []);
  for (const [name, input] of Object.entries(config.inputs)) {
    add(`inputs.${name}.address`, INPUTS[input.type]?.listens?.(input) ?? []);
  }
}

const ANY = new Set(["0.0.0.0", "::"]);

/** Whether two listeners of one transport at `a` and `b` would bind the same socket. */
export function sameSocket(a: HostPort, b: HostPort): boolean {
  return a.port === b.port && (a.hostname === b.hostname || ANY.has(a.hostname) ||
    ANY.has(b.hostname));
}

/**
 * The key paths each `serve` flag sets, e.g. `port` -> `inputs.<name>.address (type tcp)`: for
 * the message that refuses flags beside `-config`, and the reference page.
 */
export function flagKeys(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (table: KeyTable, at: (key: string) => string) => {
    for (const [key, spec] of Object.entries(table)) {
      for (const flag of flagsOf(spec)) out.set(flag, [...out.get(flag) ?? [], at(key)]);
    }
  };
  add(TOP_KEYS, (key) => key);
  add(STORAGE_KEYS, (key) => `storage.${key}`);
  add(INPUTS.http.keys, (key) => `http.${key}`);
  add(NET_KEYS, (key) => `net.${key}`);
  for (const type of inputTypes()) {
    add(INPUTS[type].keys, (key) => `inputs.<name>.${key} (type ${type})`);
  }
  for (const [type, component] of Object.entries(SINKS)) {
    add(component.keys, (key) => `sinks.<name>.${key} (type ${type})`);
  }
  return out;
}
