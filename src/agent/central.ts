/**
 * The agent's side of central configuration: polls `GET /api/v1/agents/config?id=ID&host=H` on
 * the server with the version it has as `If-None-Match`, and hands each new version to
 * `apply` (which reloads the agent, or refuses the config and keeps the running one). A refused
 * version is not fetched again: the next poll sends its ETag too, so only a new version comes.
 *
 * Polls every `intervalMs`; after a failure (no answer, 5xx, 401...) it waits longer, by the one
 * retry policy (`retry.ts`: doubling from `intervalMs` to a minute, with jitter, and the server's
 * `Retry-After`), and says so once per run of failures. 404 means no config matches the agent
 * (yet): it keeps what it runs.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { RetryPolicy } from "../retry.ts";

/** A central config as the server sends it. */
export interface CentralConfig {
  /** Its name on the server. */
  name: string;
  /** Its version. */
  version: number;
  /** The agent config, without what each agent sets for itself. */
  config: Record<string, unknown>;
}

/** Options of {@linkcode pollCentralConfig}. */
export interface PollOptions {
  /** The server's base URL, e.g. `http://10.0.0.5:8081`. */
  server: string;
  /** Bearer token; `""` for none. */
  token: string;
  /** The agent's id. */
  id: string;
  /** The machine's name. */
  host: string;
  /** Time between polls, in ms. */
  intervalMs: number;
  /** The version it runs already (kept from its last run), sent at the first poll. */
  version?: number;
  /** Applies a new version (or refuses it); resolves once done. Never rejects. */
  apply: (update: CentralConfig) => Promise<void>;
  /** Told each problem once per run of failures (and a 401 each time it comes back). */
  onProblem?: (message: string) => void;
  /** A request without an answer after this long fails, in ms. Default 30,000. */
  timeoutMs?: number;
  /** Makes requests (tests). Default `fetch`. */
  fetch?: (req: Request) => Promise<Response>;
  /** Waits between polls (tests). Default a timer that ends early when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Draws the jitter (tests). Default `Math.random`. */
  random?: () => number;
}

const log = getLogger(["logboom", "agent", "central"]);

/**
 * Polls until `signal` aborts; resolves then.
 *
 * @example
 * ```ts
 * await pollCentralConfig({ server, token, id, host, intervalMs: 10_000, apply }, signal);
 * ```
 */
export async function pollCentralConfig(options: PollOptions, signal: AbortSignal): Promise<void> {
  const { server, token, id, host, intervalMs, apply, onProblem } = options;
  const doFetch = options.fetch ?? ((req: Request) => fetch(req));
  const wait = options.sleep ?? pause;
  const policy = new RetryPolicy({
    initialMs: intervalMs,
    maxMs: Math.max(intervalMs, 60_000),
    random: options.random,
  });
  const url = `${server}/api/v1/agents/config?${new URLSearchParams({ id, host })}`;
  let etag = options.version === undefined ? undefined : `"${options.version}"`;
  let failures = 0;
  let said = "";
  let unmatched = false;
  while (!signal.aborted) {
    let retryAfter: string | null = null;
    let problem: string | undefined;
    try {
      const headers: Record<string, string> = { accept: "application/json" };
      if (token !== "") headers.authorization = `Bearer ${token}`;
      if (etag !== undefined) headers["if-none-match"] = etag;
      const timeout = AbortSignal.timeout(options.timeoutMs ?? 30_000);
      const res = await doFetch(
        new Request(url, { headers, signal: AbortSignal.any([signal, timeout]) }),
      );
      if (res.status === 200) {
        const update = await res.json() as CentralConfig;
        etag = res.headers.get("etag") ?? `"${update.version}"`;
        unmatched = false;
        await apply(update);
      } else if (res.status === 304) {
        await res.body?.cancel();
      } else if (res.status === 404) {
        await res.body?.cancel();
        if (!unmatched) {
          log.info("No central config matches agent {id} on {host} yet; polling {server}", {
            id,
            host,
            server,
          });
        }
        unmatched = true;
      } else {
        retryAfter = res.headers.get("retry-after");
        const text = (await res.text()).slice(0, 300).trim();
        problem = `${res.status} ${res.statusText}: ${text}` +
          (res.status === 401 ? " (give the server's token with -token or LOGBOOM_TOKEN)" : "");
      }
    } catch (err) {
      if (signal.aborted) break;
      problem = describe(err);
    }
    if (problem === undefined) {
      if (failures > 0) log.info("Central config server {server} answers again", { server });
      failures = 0;
      said = "";
    } else {
      failures++;
      if (problem !== said) {
        log.warn("Cannot fetch the central config from {server}: {problem}; trying again", {
          server,
          problem,
        });
        onProblem?.(`Cannot fetch the central config from ${server}: ${problem}`);
        said = problem;
      }
    }
    const delay = failures === 0 ? intervalMs : policy.delayMs(failures - 1, retryAfter);
    await wait(delay, signal);
  }
}

/** Waits `ms`, or until `signal` aborts (resolves either way). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
