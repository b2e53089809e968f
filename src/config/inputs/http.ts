/**
 * The HTTP API as a component (`api/server.ts`): ingest, live tail, sources, agents, metrics and
 * health. It is configured in the top-level `http` section, not under `inputs`, as it is more than
 * an input and there is one: `address: off` runs without it.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../../_util.ts";
import { canReadTokenEnv, TOKEN_ENV_NOT_READ } from "../../token.ts";
import { ApiServer } from "../../api/server.ts";
import type { Input, InputCloseOptions } from "../../pipeline/input.ts";
import { untilAborted } from "../../pipeline/input.ts";
import type { LiveHub } from "../../live/hub.ts";
import { formatHostPort, type HostPort, isLoopback } from "../../units.ts";
import { BuildError, defineInput, type InputContext } from "../component.ts";
import type { KeyTable, Values } from "../keys.ts";

/** The keys of the `http` section. */
export const HTTP_KEYS = {
  address: {
    type: "address",
    off: true,
    default: "127.0.0.1:8081",
    flag: "http",
    doc: "HTTP API (ingest, live tail, metrics); off disables it",
  },
  token: {
    type: "string",
    default: "",
    flag: "token",
    doc: "Bearer token every route but /healthz requires; empty: env LOGBOOM_TOKEN, else none. " +
      "Required when the address is not loopback",
  },
  max_body: {
    type: "size",
    default: "16MiB",
    flag: "maxBody",
    doc: "Largest ingest body, compressed and decompressed",
  },
  max_line: {
    type: "size",
    default: "1MiB",
    flag: "maxLine",
    doc: "Longer ingested lines are split into pieces of this size, never dropped",
  },
  allow_origin: {
    type: "list",
    default: [],
    flag: "allowOrigin",
    doc: "Browser origins allowed besides the server's own, e.g. https://logs.example.com, or *",
    check: (origin) =>
      origin === "*" || /^https?:\/\/[^/]+$/.test(origin)
        ? undefined
        : `must be an origin such as https://logs.example.com, or *, got "${origin}"`,
  },
  header_timeout: {
    type: "duration",
    default: "10s",
    flag: "headerTimeout",
    doc: "A request's head must arrive within this long of its first byte (of the connection, " +
      "for its first request), or the connection is closed",
  },
  body_timeout: {
    type: "duration",
    default: "30s",
    flag: "bodyTimeout",
    doc: "A request body that sends nothing for this long is given up and the connection closed",
  },
} as const satisfies KeyTable;

/** The values of the `http` section. */
export type HttpValues = Values<typeof HTTP_KEYS>;

const log = getLogger(["logboom", "serve"]);

/** The `http` component. */
export const httpInput = defineInput({
  type: "http",
  section: "http",
  doc: "The HTTP API: acknowledged, idempotent ingest, live tail (SSE, WebSocket), sources, " +
    "agents, /metrics, /healthz, /readyz",
  keys: HTTP_KEYS,
  listens: (values) =>
    values.address === undefined ? [] : [{ transport: "tcp", address: values.address }],
  refuse(values, context) {
    const { address, token } = values;
    if (address === undefined || token !== "" || isLoopback(address.hostname)) return undefined;
    return `Refusing to serve HTTP on ${formatHostPort(address)} without a token: anyone who can ` +
      `reach it could read and write logs. Set ${context.say("http.token", "token")} or ` +
      `LOGBOOM_TOKEN (with --allow-env=LOGBOOM_TOKEN), or use ` +
      `${context.say("http.address", "http")} 127.0.0.1:${address.port}`;
  },
  async build(name, values, context) {
    const { address } = values;
    if (address === undefined || context.live === undefined) {
      throw new TypeError("The HTTP API needs an address and the live sink");
    }
    let server: ApiServer;
    try {
      server = await ApiServer.open({
        hostname: address.hostname,
        port: address.port,
        token: values.token,
        allowedOrigins: values.allow_origin,
        maxBody: values.max_body,
        maxLine: values.max_line,
        tailRate: context.live.tailRate,
        // Bodies are read whole before they are queued: room for a few at the largest size.
        maxBufferedBytes: Math.max(context.queueBytes, 4 * values.max_body),
        marks: context.marks,
        gate: context.gate,
        ...timeouts(values, context),
      }, {
        router: context.router,
        hub: context.live.hub,
        sources: context.sources,
        sinkMetrics: context.sinkMetrics,
        inputMetrics: context.inputMetrics,
        transformMetrics: context.transformMetrics,
        server: {
          stateDir: context.stateDir,
          outputs: context.outputs,
          queueLimitBytes: context.queueBytes,
          running: context.running,
        },
        alerts: context.alerts,
      });
    } catch (err) {
      throw listenError(err, address, context);
    }
    const bound = { hostname: address.hostname, port: server.addr.port };
    log.info("HTTP API on http://{address} ({access})", {
      address: formatHostPort(bound),
      access: describeAccess(values.token),
    });
    return new HttpComponent(name, server, address.hostname, context.live.hub, () => ({
      connections: context.gate.stats.open.http ?? 0,
    }));
  },
});

/** The timeouts of `values`, with the idle one from `net`. */
function timeouts(values: HttpValues, context: Pick<InputContext, "net">) {
  return {
    headerMs: values.header_timeout,
    bodyMs: values.body_timeout,
    // Clients keep idle connections for 90 s at most: closing first at 75 s avoids a request
    // racing the close.
    idleMs: Math.min(75_000, context.net.idle_timeout),
  };
}

function listenError(err: unknown, address: HostPort, context: InputContext): BuildError {
  const hint = err instanceof Deno.errors.AddrInUse
    ? `; another program has this port: choose another with ` +
      `${context.say("http.address", "http")} ${address.hostname}:PORT, or run without the ` +
      `HTTP API with ${context.say("http.address", "http")} off`
    : "";
  return new BuildError("Cannot serve HTTP on {address}: {error}{hint}", {
    address: formatHostPort(address),
    error: describe(err),
    hint,
  }, { cause: err });
}

/** The HTTP API's new address, bound beside the one served: see {@linkcode moveApi}. */
export interface ApiMove {
  /** Serves at the new address only: requests under way at the old one finish there. */
  commit(): void;
  /** Closes the new address again; the old one goes on. */
  rollback(): Promise<void>;
}

/**
 * Binds the HTTP API's new `values.address` beside the one it serves (a reload), so a port that
 * is taken refuses the reload while the old address goes on.
 *
 * @throws {BuildError} when the address cannot be bound.
 */
export function moveApi(api: Input, values: HttpValues, context: InputContext): ApiMove {
  const address = values.address;
  if (!(api instanceof HttpComponent) || address === undefined) {
    throw new TypeError("Only a running HTTP API moves to another address");
  }
  let move: ReturnType<ApiServer["move"]>;
  try {
    move = api.server.move({ ...address, ...timeouts(values, context) });
  } catch (err) {
    throw listenError(err, address, context);
  }
  return {
    commit: () => {
      move.commit();
      api.hostname = address.hostname;
      log.info("HTTP API moved to {address}", { address: api.address });
    },
    rollback: () => move.rollback(),
  };
}

/**
 * Applies `values` and the context to the running HTTP API in place (a reload): token, origins,
 * ingest limits and timeouts for the requests that start from now on, and the live hub when the
 * live sink was rebuilt. Returns, in that case, the end of the old hub's tails.
 */
export function reconfigureApi(
  api: Input,
  values: HttpValues,
  context: InputContext,
): Promise<void> | undefined {
  if (!(api instanceof HttpComponent)) throw new TypeError("Not the HTTP API");
  api.server.api.configure({
    token: values.token,
    allowedOrigins: values.allow_origin,
    maxBody: values.max_body,
    maxLine: values.max_line,
    maxBufferedBytes: Math.max(context.queueBytes, 4 * values.max_body),
  });
  api.server.setTimeouts(timeouts(values, context));
  const live = context.live;
  if (live === undefined || live.hub === api.hub) return undefined;
  api.hub = live.hub;
  return api.server.api.useHub(live.hub, live.tailRate);
}

/**
 * How the HTTP API is guarded, for the startup line: whether it requires a token, and when it
 * does not and env permission for `LOGBOOM_TOKEN` is missing, that a token set there is not read.
 */
function describeAccess(token: string): string {
  if (token !== "") return "bearer token required";
  const open = "no token required: any process on this machine may use it";
  return canReadTokenEnv() ? open : `${open}; ${TOKEN_ENV_NOT_READ}`;
}

/** An {@linkcode ApiServer} as an {@linkcode Input}. */
class HttpComponent implements Input {
  readonly type = "http";
  readonly name: string;
  readonly server: ApiServer;
  /** The live hub its tails read. */
  hub: LiveHub;
  /** The host it listens on, as configured. */
  hostname: string;
  readonly #stats: () => Record<string, number>;

  constructor(
    name: string,
    server: ApiServer,
    hostname: string,
    hub: LiveHub,
    stats: () => Record<string, number>,
  ) {
    this.name = name;
    this.server = server;
    this.hostname = hostname;
    this.hub = hub;
    this.#stats = stats;
  }

  /** Where it listens, with the port actually bound. */
  get address(): string {
    return `http://${formatHostPort({ hostname: this.hostname, port: this.server.addr.port })}`;
  }

  stats(): Record<string, number> {
    return this.#stats();
  }

  close(options: InputCloseOptions = {}): Promise<void> {
    return untilAborted(this.server.close(), options.signal);
  }
}
