/**
 * The HTTP API: ingest, live tail, sources, metrics and health. {@linkcode Api} is the whole
 * server as a `(Request) => Promise<Response>` function (tested without sockets);
 * {@linkcode ApiServer} puts it on a socket with `net/http_server.ts`.
 *
 * | route | what |
 * | --- | --- |
 * | `POST /api/v1/ingest` | text or NDJSON lines, acknowledged and idempotent |
 * | `POST /v1/logs` | OpenTelemetry logs, protobuf or JSON |
 * | `POST /loki/api/v1/push` | Loki push, JSON or snappy protobuf |
 * | `POST /_bulk`, `/<index>/_bulk` | Elasticsearch bulk, and the probes its clients make first |
 * | `GET /api/v1/tail` | live lines, SSE or WebSocket |
 * | `GET /api/v1/sources` | per-source counters |
 * | `GET /api/v1/agents`, `POST /api/v1/agents/report` | agents reporting in, with their files and lag |
 * | `GET /api/v1/agent-configs`, `PUT`/`DELETE /api/v1/agent-configs/NAME`, `GET /api/v1/agents/config` | central agent configs (`api/agent_configs.ts`) |
 * | `GET /api/v1/status` | version, uptime, queues, open files, disk, running config (`api/status.ts`) |
 * | `GET /metrics` | Prometheus text format |
 * | `GET /api/v1/rules` | the running transforms section: `{transforms}` (`null` without one) |
 * | `POST /api/v1/rules/test` | transform rules tried on sample lines (`api/rules.ts`) |
 * | `GET /api/v1/alerts` | the alerts, their state and webhooks (`api/alerts.ts`) |
 * | `GET /healthz`, `GET /readyz` | liveness (no token needed), readiness |
 * | `GET /`, `GET /ui/...` | the web page and its files, without the token (`api/web.ts`) |
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { HttpIngest } from "../ingest/http_ingest.ts";
import { ProtocolIngest, protocolRoute } from "../ingest/protocol_ingest.ts";
import type { LiveHub } from "../live/hub.ts";
import { notReadyLines, type Sink } from "../pipeline/sink.ts";
import { StreamMarks } from "../store/stream_marks.ts";
import type { AlertsView } from "../alerts/engine.ts";
import { AgentRegistry } from "./agents.ts";
import { agentConfigsRoute, AgentConfigStore } from "./agent_configs.ts";
import { type ServerFacts, serverStatus } from "./status.ts";
import { alertsResponse } from "./alerts.ts";
import { isAuthorized } from "./auth.ts";
import { isLoopback } from "../units.ts";
import { type InputMetrics, renderMetrics, type SinkMetrics } from "./metrics.ts";
import { checkOrigin } from "./origin.ts";
import { rulesTestRoute } from "./rules.ts";
import { SEARCH_ROUTES, searchRoute } from "./search.ts";
import type { SourceStats } from "./source_stats.ts";
import { TailRoute } from "./tail.ts";
import { webResponse, webRoute } from "./web.ts";
import { ConnectionGate, type NetStats } from "../net/accept.ts";
import { logAcceptError } from "../net/log.ts";
import { HttpServer, type HttpTimeouts } from "../net/http_server.ts";
import { HttpError } from "../net/http_error.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../prometheus.ts";

/** Settings of the API. */
export interface ApiConfig {
  /** Bearer token every route but `/healthz` requires; `""` for none. */
  token: string;
  /** Origins allowed besides the server's own. Default none. */
  allowedOrigins?: readonly string[];
  /**
   * Whether the server listens on loopback only: without a token, requests must then name a
   * loopback host (DNS rebinding). Default false.
   */
  loopback?: boolean;
  /** Largest ingest body, compressed or not, in bytes. Default 16 MiB. */
  maxBody?: number;
  /** Longer lines are split into pieces of this many bytes. Default 1 MiB. */
  maxLine?: number;
  /** Bytes of ingest bodies read at once over all requests. Default 64 MiB. */
  maxBufferedBytes?: number;
  /** SSE heartbeat period, in ms. Default 15,000. */
  heartbeatMs?: number;
  /** Lines per second delivered to all live tails together. Default: no bound. */
  tailRate?: number;
}

/** What the API serves from: the pipeline built by `serve`. */
export interface ApiParts {
  /** Where ingested batches go. */
  router: Sink;
  /** The live hub, for tails. */
  hub: LiveHub;
  /** Per-source counters (a sink in the router). */
  sources: SourceStats;
  /** Stream high-water marks for idempotent ingest. */
  marks: StreamMarks;
  /** Each sink's counters, read at request time. */
  sinkMetrics: () => readonly SinkMetrics[];
  /** Each input's own counters, read at request time. Default: none shown. */
  inputMetrics?: () => readonly InputMetrics[];
  /** Connection counters of the TCP and HTTP listeners (a live object). Default: none shown. */
  net?: NetStats;
  /** The transform steps' counters as Prometheus text, read at request time. Default: none. */
  transformMetrics?: () => string;
  /** The alerts running, read at request time. Default: none. */
  alerts?: AlertsView;
  /** State folder, log folder and running config, for `/api/v1/status` and agent configs. */
  server?: ServerFacts;
}

/** The peer of a request. */
export interface Peer {
  /** The client's IP address. */
  hostname: string;
}

const ROUTES = new Set([
  "/api/v1/ingest",
  "/api/v1/tail",
  "/api/v1/sources",
  "/api/v1/agents",
  "/api/v1/agents/report",
  "/api/v1/agents/config",
  "/api/v1/agent-configs",
  "/api/v1/status",
  "/api/v1/rules",
  "/api/v1/rules/test",
  "/api/v1/alerts",
  ...SEARCH_ROUTES,
  "/metrics",
  "/healthz",
  "/readyz",
]);
const log = getLogger(["logboom", "api"]);

/**
 * The API as a function of requests.
 *
 * @example
 * ```ts
 * const api = new Api({ token: "" }, parts);
 * const res = await api.handle(new Request("http://localhost/healthz"), { hostname: "127.0.0.1" });
 * ```
 */
export class Api {
  #config: ApiConfig;
  #parts: ApiParts;
  readonly #ingest: HttpIngest;
  readonly #protocols: ProtocolIngest;
  #tail: TailRoute;
  readonly #agents = new AgentRegistry();
  /** Opened (its file read) at first use; a failure is answered by its routes, tried again next. */
  #agentConfigsOpen: Promise<AgentConfigStore> | undefined;
  readonly #requests = new Map<string, Map<number, number>>();
  #closing = false;

  /**
   * @param config token, limits and origin policy.
   * @param parts the pipeline to serve from.
   */
  constructor(config: ApiConfig, parts: ApiParts) {
    this.#config = config;
    this.#parts = parts;
    this.#ingest = new HttpIngest(parts.router, {
      marks: parts.marks,
      maxBody: config.maxBody,
      maxLine: config.maxLine,
      maxBufferedBytes: config.maxBufferedBytes,
    });
    this.#protocols = new ProtocolIngest(this.#ingest.gate, { maxLine: config.maxLine });
    this.#tail = new TailRoute(parts.hub, {
      heartbeatMs: config.heartbeatMs,
      linesPerSecond: config.tailRate,
    });
  }

  /**
   * New settings (a config reload) for the requests that start from now on: token, origins and
   * ingest limits; requests under way keep theirs.
   */
  configure(changes: Partial<ApiConfig>): void {
    this.#config = { ...this.#config, ...changes };
    const { maxBody, maxLine, maxBufferedBytes } = this.#config;
    this.#ingest.setLimits({ maxBody, maxLine, maxBufferedBytes });
    this.#protocols.setMaxLine(maxLine);
  }

  /**
   * Serves live tails from `hub` from now on (the live sink was rebuilt by a reload); the tails
   * of the old hub end (SSE clients reconnect to the new one). Resolves once they have.
   */
  useHub(hub: LiveHub, tailRate: number | undefined): Promise<void> {
    const old = this.#tail;
    this.#config = { ...this.#config, tailRate };
    this.#parts = { ...this.#parts, hub };
    this.#tail = new TailRoute(hub, {
      heartbeatMs: this.#config.heartbeatMs,
      linesPerSecond: tailRate,
    });
    return old.close();
  }

  /** Answers one request; never throws (an unexpected error is a logged 500). */
  async handle(req: Request, peer: Peer): Promise<Response> {
    const path = new URL(req.url).pathname;
    const route = ROUTES.has(path) ? path : protocolRoute(req, path) ?? webRoute(path) ?? "other";
    let res: Response;
    try {
      res = await this.#route(req, route, peer);
    } catch (err) {
      log.error("{method} {path} failed: {error}", {
        method: req.method,
        path,
        error: describe(err),
      });
      res = new HttpError(500, describe(err)).response();
    }
    let codes = this.#requests.get(route);
    if (codes === undefined) this.#requests.set(route, codes = new Map());
    codes.set(res.status, (codes.get(res.status) ?? 0) + 1);
    return res;
  }

  /** Refuses new ingests, ends every live tail and waits for them to finish. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#ingest.close();
    await this.#tail.close();
  }

  async #route(req: Request, route: string, peer: Peer): Promise<Response> {
    if (route === "/healthz") return methodIs(req, "GET") ?? text(200, "ok\n");
    const { token, allowedOrigins, loopback = false } = this.#config;
    const refused = checkOrigin(req, {
      allowedOrigins,
      loopbackHostOnly: loopback && token === "",
    });
    if (refused !== undefined) {
      await req.body?.cancel();
      return new HttpError(403, refused).response();
    }
    if (route === "/" || route === "/ui") {
      return await webResponse(req, { tokenWanted: token !== "" });
    }
    if (!isAuthorized(req, token)) {
      await req.body?.cancel();
      return new HttpError(401, "Missing or wrong bearer token", {
        headers: { "www-authenticate": 'Bearer realm="logboom"' },
      }).response();
    }
    switch (route) {
      case "/api/v1/ingest":
        return await this.#ingest.handle(req, peer);
      case "/v1/logs":
      case "/loki/api/v1/push":
      case "/_bulk":
      case "elasticsearch":
        return await this.#protocols.handle(req, route, peer);
      case "/api/v1/tail":
        if (this.#closing) return new HttpError(503, "The server is shutting down").response();
        return methodIs(req, "GET") ?? this.#tail.handle(req);
      case "/api/v1/agents": {
        const configs = await this.#agentConfigs().catch(() => undefined);
        return methodIs(req, "GET") ?? json(200, { agents: this.#agents.list(configs) });
      }
      case "/api/v1/agent-configs":
      case "/api/v1/agents/config":
        return await agentConfigsRoute(req, await this.#agentConfigs());
      case "/api/v1/status":
        return methodIs(req, "GET") ?? json(200, await this.#status());
      case "/api/v1/agents/report": {
        const refused = methodIs(req, "POST");
        if (refused !== undefined) return refused;
        try {
          const entry = await this.#agents.accept(req, peer.hostname);
          return json(200, { accepted: true, id: entry.id });
        } catch (err) {
          if (err instanceof HttpError) return err.response();
          throw err;
        }
      }
      case "/api/v1/sources":
        return methodIs(req, "GET") ?? json(200, { sources: this.#sources() });
      case "/api/v1/search":
      case "/api/v1/search/histogram":
      case "/api/v1/search/context": {
        const { outputs, stateDir } = this.#parts.server ?? {};
        const layout = outputs && stateDir !== undefined ? { outputs, stateDir } : undefined;
        return await searchRoute(req, route, layout);
      }
      case "/api/v1/rules": {
        // The running processing rules, for the page: the config's transforms section.
        const running = this.#parts.server?.running?.() as { transforms?: unknown } | undefined;
        return methodIs(req, "GET") ?? json(200, { transforms: running?.transforms ?? null });
      }
      case "/api/v1/rules/test":
        return await rulesTestRoute(req);
      case "/api/v1/alerts":
        return alertsResponse(req, this.#parts.alerts);
      case "/metrics":
        return methodIs(req, "GET") ??
          text(
            200,
            this.#metrics() + (this.#parts.transformMetrics?.() ?? "") + this.#agents.metrics() +
              (this.#parts.alerts?.metrics() ?? ""),
            PROMETHEUS_CONTENT_TYPE,
          );
      case "/readyz": {
        const reasons = this.#notReady();
        return methodIs(req, "GET") ??
          (reasons.length === 0 ? text(200, "ready\n") : text(503, reasons.join("")));
      }
      default:
        if (new URL(req.url).pathname.startsWith("/api/v1/agent-configs/")) {
          return await agentConfigsRoute(req, await this.#agentConfigs());
        }
        await req.body?.cancel();
        return new HttpError(404, `No route "${new URL(req.url).pathname}"`).response();
    }
  }

  /** Why the server is not ready, a line each: shutting down, queue full, outputs failing. */
  #notReady(): string[] {
    const reasons: string[] = [];
    if (this.#closing) reasons.push("not ready: shutting down\n");
    else if (this.#parts.router.full) reasons.push("not ready: queue full\n");
    reasons.push(...notReadyLines(this.#parts.router.problems?.() ?? []));
    return reasons;
  }

  #sources() {
    return this.#parts.sources.summary();
  }

  /** The agent configs, opened at the first call (a server that never uses them reads nothing). */
  #agentConfigs(): Promise<AgentConfigStore> {
    this.#agentConfigsOpen ??= AgentConfigStore.open(this.#parts.server?.stateDir).catch((err) => {
      this.#agentConfigsOpen = undefined;
      log.error("Cannot read the agent configs: {error}", { error: describe(err) });
      throw err;
    });
    return this.#agentConfigsOpen;
  }

  async #status(): Promise<Record<string, unknown>> {
    const configs = await this.#agentConfigs().catch(() => undefined);
    return await serverStatus({
      facts: this.#parts.server ?? {},
      sinks: this.#parts.sinkMetrics(),
      live: this.#parts.hub.stats,
      ingestLimitBytes: this.#config.maxBufferedBytes,
      net: this.#parts.net,
      agentConfigs: configs?.path ?? `in memory only: ${configs?.memoryOnly ?? "not opened"}`,
    });
  }

  #metrics(): string {
    return renderMetrics({
      sources: this.#parts.sources.list(),
      sinks: this.#parts.sinkMetrics(),
      inputs: this.#parts.inputMetrics?.(),
      live: this.#parts.hub.stats,
      ingest: this.#ingest.stats,
      requests: this.#requests,
      streams: this.#parts.marks.size,
      net: this.#parts.net,
    });
  }
}

/** Where {@linkcode ApiServer.open} listens, with the API's settings. */
export interface ApiServerConfig extends ApiConfig, HttpTimeouts {
  /** Address to bind. */
  hostname: string;
  /** Port to bind. */
  port: number;
  /**
   * Stream marks for idempotent ingest, opened (before the file sink) and closed (after it) by the
   * caller. Default: in memory only.
   */
  marks?: StreamMarks;
  /** The connection cap shared with the other listeners. Default: 4,096 for this server alone. */
  gate?: ConnectionGate;
}

const netLog = getLogger(["logboom", "net", "http"]);

/**
 * {@linkcode Api} on a socket, through {@linkcode HttpServer} (connection cap and timeouts).
 *
 * @example
 * ```ts
 * const server = await ApiServer.open({ hostname: "127.0.0.1", port: 8081, token: "" }, parts);
 * // on shutdown, before the router closes:
 * await server.close();
 * ```
 */
export class ApiServer {
  readonly #api: Api;
  readonly #gate: ConnectionGate;
  #server: HttpServer;
  /** Servers given up by `move`, finishing their requests. */
  readonly #leaving = new Set<Promise<void>>();

  private constructor(api: Api, gate: ConnectionGate, server: HttpServer) {
    this.#api = api;
    this.#gate = gate;
    this.#server = server;
  }

  /** The address actually bound. */
  get addr(): Deno.NetAddr {
    return this.#server.addr;
  }

  /** The API, to change its settings while it runs. */
  get api(): Api {
    return this.#api;
  }

  /** Binds the address (`Deno.errors.AddrInUse` and the like are thrown at once) and serves. */
  static open(config: ApiServerConfig, parts: Omit<ApiParts, "marks">): Promise<ApiServer> {
    const marks = config.marks ?? StreamMarks.memory();
    const loopback = config.loopback ?? isLoopback(config.hostname);
    const gate = config.gate ?? new ConnectionGate(4096);
    const api = new Api({ ...config, loopback }, { net: gate.stats, ...parts, marks });
    try {
      const server = listen(config, gate, api);
      return Promise.resolve(new ApiServer(api, gate, server));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Binds another address (a config reload) beside the one served now, which is given up only on
   * `commit`: its requests under way finish, its idle connections close. `rollback` closes the
   * new one instead. Binding throws at once (`Deno.errors.AddrInUse`).
   */
  move(address: { hostname: string; port: number } & HttpTimeouts): {
    commit(): void;
    rollback(): Promise<void>;
  } {
    const next = listen(address, this.#gate, this.#api);
    return {
      commit: () => {
        const old = this.#server;
        this.#server = next;
        this.#api.configure({ loopback: isLoopback(address.hostname) });
        const done = old.shutdown().finally(() => this.#leaving.delete(done));
        this.#leaving.add(done);
      },
      rollback: () => next.shutdown(),
    };
  }

  /** New timeouts for the deadlines set from now on (see `HttpServer.setTimeouts`). */
  setTimeouts(timeouts: HttpTimeouts): void {
    this.#server.setTimeouts(timeouts);
  }

  /**
   * Stops: refuses new ingests, ends live tails (WebSockets close with 1001), lets requests under
   * way finish (an ingest answers once its lines are stored), closes the listener and the
   * connections.
   */
  async close(): Promise<void> {
    await this.#api.close();
    await Promise.all([this.#server.shutdown(), ...this.#leaving]);
  }
}

/** Binds `config`'s address and serves `api` there, under the shared connection cap. */
function listen(
  config: { hostname: string; port: number } & HttpTimeouts,
  gate: ConnectionGate,
  api: Api,
): HttpServer {
  return HttpServer.listen({
    hostname: config.hostname,
    port: config.port,
    gate,
    headerMs: config.headerMs,
    bodyMs: config.bodyMs,
    sendMs: config.sendMs,
    idleMs: config.idleMs,
    onAcceptError: (code, err) => logAcceptError(netLog, code, err),
    onError: (err) => log.error("HTTP request failed: {error}", { error: describe(err) }),
  }, (req, peer) => api.handle(req, peer));
}

function methodIs(req: Request, method: string): Response | undefined {
  if (req.method === method || (method === "GET" && req.method === "HEAD")) return undefined;
  const allow = method === "GET" ? "GET, HEAD" : method;
  return new HttpError(405, `Use ${method}`, { headers: { allow } }).response();
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

function text(status: number, body: string, type = "text/plain; charset=utf-8"): Response {
  return new Response(body, { status, headers: { "content-type": type } });
}
