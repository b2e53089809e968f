/**
 * One alert running: its matcher counts the lines of each batch into a sliding window; more than
 * the threshold within the window makes it fire, and once the count stayed at or under the
 * threshold for `resolve_after` it resolves. Each change is a notification to its webhook.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Batch } from "../pipeline/batch.ts";
import type { RetryPolicy } from "../retry.ts";
import { type AlertRule, redactedWebhook } from "./config.ts";
import { AlertMatcher } from "./matcher.ts";
import { type Notification, Webhook } from "./webhook.ts";
import { SlidingCount } from "./window.ts";

/** Samples an alert keeps and sends, at most. */
export const SAMPLES = 5;

/** An alert as `GET /api/v1/alerts` shows it. */
export interface AlertStatus {
  /** Its name in the config. */
  name: string;
  /** Whether it fires. */
  state: "ok" | "firing";
  /** Matching lines within the window now. */
  count: number;
  /** It fires when `count` is more than this. */
  threshold: number;
  /** The window, in seconds. */
  window_s: number;
  /** When it last changed state, ISO 8601; absent until it first fires. */
  since?: string;
  /** When it last fired, ISO 8601. */
  last_fired?: string;
  /** Its webhook: the last answer or failure, and the notifications waiting. */
  webhook: { last_status?: number; last_error?: string; pending: number };
  /** The rule as configured, the webhook URL shown as its origin only. */
  rule: Record<string, unknown>;
}

/** What an alert needs besides its rule. */
export interface AlertOptions {
  /** The clock its webhook's retries and timeouts wait on. */
  clock: Clock;
  /** Its webhook's retry policy. Default: the webhook's. */
  policy?: RetryPolicy;
}

/** One alert: its window, its state and its webhook. */
export class Alert {
  /** Its name in the config. */
  readonly name: string;
  /** Its rule, as read from the config. */
  readonly rule: AlertRule;
  /** Lines it matched since it started (for `/metrics`). */
  matched = 0;
  #state: "ok" | "firing" = "ok";
  #since: number | undefined;
  #lastFired: number | undefined;
  /** Since when the count is at or under the threshold while it fires. */
  #belowSince: number | undefined;
  /** The most recent matching lines, oldest first. */
  #samples: string[] = [];
  readonly #matcher: AlertMatcher;
  readonly #window: SlidingCount;
  readonly #webhook: Webhook;

  constructor(name: string, rule: AlertRule, options: AlertOptions) {
    this.name = name;
    this.rule = rule;
    this.#matcher = new AlertMatcher(rule);
    this.#window = new SlidingCount(rule.window);
    this.#webhook = new Webhook({
      alert: name,
      url: rule.webhook,
      timeoutMs: rule.webhook_timeout,
      maxPending: rule.max_pending,
      clock: options.clock,
      policy: options.policy,
    });
  }

  /** Whether it fires. */
  get firing(): boolean {
    return this.#state === "firing";
  }

  /** Its webhook's counters. */
  get webhook(): Webhook {
    return this.#webhook;
  }

  /**
   * Counts the matching lines of `batch` at time `now`; fires when they cross the threshold.
   * Returns whether it fired now.
   */
  observe(batch: Batch, now: number): boolean {
    const { count, samples } = this.#matcher.match(batch);
    if (count === 0) return false;
    this.matched += count;
    this.#window.add(now, count);
    this.#samples = samples.length >= SAMPLES
      ? samples.slice(0, SAMPLES)
      : [...this.#samples, ...samples].slice(-SAMPLES);
    if (this.#window.total(now) <= this.rule.threshold) return false;
    if (this.#state === "firing") {
      this.#belowSince = undefined;
      return false;
    }
    this.#change("firing", now);
    return true;
  }

  /** Looks at the window at time `now` (a firing alert, every second): resolves when it is due. */
  tick(now: number): void {
    if (this.#state !== "firing") return;
    if (this.#window.total(now) > this.rule.threshold) {
      this.#belowSince = undefined;
      return;
    }
    this.#belowSince ??= now;
    if (now - this.#belowSince >= this.rule.resolve_after) this.#change("ok", now);
  }

  #change(state: "ok" | "firing", now: number): void {
    this.#state = state;
    this.#since = now;
    this.#belowSince = undefined;
    if (state === "firing") this.#lastFired = now;
    this.#webhook.send(this.#notification(state === "firing" ? "firing" : "resolved", now));
  }

  #notification(state: Notification["state"], now: number): Notification {
    return {
      alert: this.name,
      state,
      count: this.#window.total(now),
      threshold: this.rule.threshold,
      window_s: this.rule.window / 1000,
      since: new Date(now).toISOString(),
      sample: [...this.#samples],
    };
  }

  /** What `GET /api/v1/alerts` shows of it at time `now`. */
  status(now: number): AlertStatus {
    const { rule } = this;
    const status: AlertStatus = {
      name: this.name,
      state: this.#state,
      count: this.#window.total(now),
      threshold: rule.threshold,
      window_s: rule.window / 1000,
      webhook: { pending: this.#webhook.pending },
      rule: {
        ...rule,
        window_s: rule.window / 1000,
        resolve_after_s: rule.resolve_after / 1000,
        webhook_timeout_s: rule.webhook_timeout / 1000,
        webhook: redactedWebhook(rule.webhook),
      },
    };
    for (const key of ["window", "resolve_after", "webhook_timeout"]) delete status.rule[key];
    if (this.#since !== undefined) status.since = new Date(this.#since).toISOString();
    if (this.#lastFired !== undefined) status.last_fired = new Date(this.#lastFired).toISOString();
    if (this.#webhook.lastStatus !== undefined) {
      status.webhook.last_status = this.#webhook.lastStatus;
    }
    if (this.#webhook.lastError !== undefined) status.webhook.last_error = this.#webhook.lastError;
    return status;
  }

  /** Stops its webhook: notifications not sent yet are given up (logged). */
  close(): Promise<void> {
    return this.#webhook.close();
  }
}
