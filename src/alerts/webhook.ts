/**
 * Telling a webhook: notifications queue per alert (bounded in count: past the bound the oldest is
 * dropped, logged and counted), and one at a time is POSTed as JSON, retried with the project's
 * retry policy (`retry.ts`: exponential backoff with jitter, a server's `Retry-After` honoured)
 * until the receiver takes it (2xx) or refuses it for good (a 4xx other than 408 and 429). Time
 * comes from a {@linkcode Clock}, so tests move it instead of sleeping.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { type Clock, pause, SYSTEM_CLOCK } from "../clock.ts";
import { RetryPolicy } from "../retry.ts";
import { redactedWebhook } from "./config.ts";

/** What a webhook receives: one JSON object per notification. */
export interface Notification {
  /** The alert's name. */
  alert: string;
  /** What it became. */
  state: "firing" | "resolved";
  /** Matching lines within the window when it changed. */
  count: number;
  /** Its threshold. */
  threshold: number;
  /** Its window, in seconds. */
  window_s: number;
  /** When it changed, ISO 8601. */
  since: string;
  /** Up to 5 recent matching lines. */
  sample: string[];
}

/** How attempts ended, by `result` label of `logboom_alert_webhook_total`. */
export interface WebhookCounts {
  /** Notifications the receiver took (2xx). */
  ok: number;
  /** Attempts that failed and are retried (network error, timeout, 408, 429, 5xx). */
  error: number;
  /** Notifications the receiver refused for good (another 4xx): not retried. */
  refused: number;
  /** Notifications dropped unsent: the oldest, when the queue was full. */
  dropped: number;
}

/** Options of {@linkcode Webhook}. */
export interface WebhookOptions {
  /** The alert's name, for logs. */
  alert: string;
  /** Where to POST. */
  url: string;
  /** A request not answered within this long is given up and retried, in ms. */
  timeoutMs: number;
  /** Most notifications queued, the one being sent included. */
  maxPending: number;
  /** The clock retries and timeouts wait on. Default the wall clock. */
  clock?: Clock;
  /** When to retry. Default: from 1 s, doubling up to 60 s, equal jitter. */
  policy?: RetryPolicy;
}

interface Item {
  notification: Notification;
  body: string;
  /** Aborted when the item is dropped or the webhook closes: ends its request or its wait. */
  abort: AbortController;
  dropped: boolean;
}

type Outcome =
  | { kind: "ok"; status: number }
  | { kind: "refused"; status: number }
  | { kind: "retry"; status?: number; error: string; retryAfter?: string | null };

const log = getLogger(["logboom", "alerts"]);

/** One alert's webhook and its queue of notifications. */
export class Webhook {
  /** How attempts ended, for `/metrics`. */
  readonly counts: WebhookCounts = { ok: 0, error: 0, refused: 0, dropped: 0 };
  /** The last answer's HTTP status, if any came. */
  lastStatus: number | undefined;
  /** The last failure, `undefined` once an attempt succeeds. */
  lastError: string | undefined;
  readonly #options: Required<WebhookOptions>;
  readonly #shown: string;
  readonly #queue: Item[] = [];
  #running: Promise<void> | undefined;
  #closed = false;

  /** @param options where and how; see {@linkcode WebhookOptions}. */
  constructor(options: WebhookOptions) {
    this.#options = {
      clock: SYSTEM_CLOCK,
      policy: new RetryPolicy({ initialMs: 1000, maxMs: 60_000 }),
      ...options,
    };
    this.#shown = redactedWebhook(options.url);
  }

  /** Notifications queued and not yet taken, the one being sent included. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Queues a notification; past `maxPending`, the oldest is dropped (logged and counted). Never
   * blocks; ignored once closed.
   */
  send(notification: Notification): void {
    if (this.#closed) return;
    this.#queue.push({
      notification,
      body: JSON.stringify(notification),
      abort: new AbortController(),
      dropped: false,
    });
    while (this.#queue.length > this.#options.maxPending) {
      const old = this.#queue.shift()!;
      old.dropped = true;
      old.abort.abort();
      this.counts.dropped++;
      log.warn(
        "Alert {alert}: dropped its oldest webhook notification ({state} since {since}): " +
          "{pending} are waiting for {url}, the most kept (max_pending)",
        {
          alert: this.#options.alert,
          state: old.notification.state,
          since: old.notification.since,
          pending: this.#queue.length,
          url: this.#shown,
        },
      );
    }
    this.#running ??= this.#run();
  }

  /**
   * Stops: the request under way and the retry waits end at once, notifications still queued are
   * not sent (logged with their count). Resolves once the sending loop ended.
   */
  async close(): Promise<void> {
    if (this.#closed) return await this.#running;
    this.#closed = true;
    const unsent = this.#queue.splice(0);
    for (const item of unsent) item.abort.abort();
    if (unsent.length > 0) {
      log.warn("Alert {alert}: {count} webhook notifications not sent to {url}: the alert stops", {
        alert: this.#options.alert,
        count: unsent.length,
        url: this.#shown,
      });
    }
    await this.#running;
  }

  async #run(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const item = this.#queue[0];
        await this.#deliver(item);
        // A dropped item left the queue already.
        if (this.#queue[0] === item) this.#queue.shift();
      }
    } catch (err) {
      // A bug: say so and stop sending, rather than an unhandled rejection.
      log.error("Alert {alert}: the webhook sender stopped: {error}", {
        alert: this.#options.alert,
        error: describe(err),
      });
    } finally {
      this.#running = undefined;
    }
  }

  /** Sends `item` until it is taken, refused, dropped, or the webhook closes. */
  async #deliver(item: Item): Promise<void> {
    const { alert, clock, policy } = this.#options;
    for (let attempt = 0;; attempt++) {
      const outcome = await this.#post(item);
      if (item.dropped || this.#closed) return;
      if (outcome.status !== undefined) this.lastStatus = outcome.status;
      if (outcome.kind === "ok") {
        this.counts.ok++;
        this.lastError = undefined;
        return;
      }
      if (outcome.kind === "refused") {
        this.counts.refused++;
        this.lastError = `HTTP ${outcome.status}`;
        log.warn(
          "Alert {alert}: {url} refused the {state} notification with HTTP {status}; not retried",
          { alert, url: this.#shown, state: item.notification.state, status: outcome.status },
        );
        return;
      }
      this.counts.error++;
      this.lastError = outcome.error;
      const delay = Math.round(policy.delayMs(attempt, outcome.retryAfter, clock.now()));
      log.warn(
        "Alert {alert}: the {state} notification to {url} failed ({error}); retry {retry} in " +
          "{delay} ms",
        {
          alert,
          state: item.notification.state,
          url: this.#shown,
          error: outcome.error,
          retry: attempt + 1,
          delay,
        },
      );
      await pause(clock, delay, item.abort.signal);
      if (item.dropped || this.#closed) return;
    }
  }

  /**
   * A failed request's reason with its cause (fetch says `fetch failed`, its cause why), the URL
   * in it shown as {@linkcode redactedWebhook} does: logs never hold the URL's secret part.
   */
  #describe(err: unknown): string {
    const text = err instanceof Error && err.cause instanceof Error
      ? `${err.message}: ${err.cause.message}`
      : describe(err);
    return text.replaceAll(this.#options.url, this.#shown);
  }

  /** One POST of `item`, within the timeout; never throws. */
  async #post(item: Item): Promise<Outcome> {
    const { url, timeoutMs, clock } = this.#options;
    const request = new AbortController();
    const stop = () => request.abort(new Error("stopped"));
    item.abort.signal.addEventListener("abort", stop, { once: true });
    const cancel = clock.timer(timeoutMs, () => {
      request.abort(new Error(`no answer within ${timeoutMs} ms`));
    });
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: item.body,
        signal: request.signal,
        redirect: "manual",
      });
      await res.body?.cancel();
      const status = res.status;
      if (status >= 200 && status < 300) return { kind: "ok", status };
      if (status === 408 || status === 429 || status >= 500) {
        return {
          kind: "retry",
          status,
          error: `HTTP ${status}`,
          retryAfter: res.headers.get("retry-after"),
        };
      }
      return { kind: "refused", status };
    } catch (err) {
      const reason = request.signal.aborted ? request.signal.reason : err;
      return { kind: "retry", error: this.#describe(reason) };
    } finally {
      cancel();
      item.abort.signal.removeEventListener("abort", stop);
    }
  }
}
