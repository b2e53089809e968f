/**
 * The alerts as a sink of the router: every batch, after the transform rules, is counted by every
 * alert (`alert.ts`), on the stream, never by reading the store back. The pipeline attaches it
 * only while the config has alerts: without any, the data path has nothing more to do.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import { type Clock, SYSTEM_CLOCK } from "../clock.ts";
import type { Batch } from "../pipeline/batch.ts";
import type { Sink } from "../pipeline/sink.ts";
import { PrometheusWriter } from "../prometheus.ts";
import type { RetryPolicy } from "../retry.ts";
import { Alert, type AlertStatus } from "./alert.ts";
import type { AlertsConfig } from "./config.ts";
import type { WebhookCounts } from "./webhook.ts";

/** How often firing alerts look at their window to resolve, in ms. */
export const TICK_MS = 1000;

/** What the HTTP API reads of the alerts. */
export interface AlertsView {
  /** Every alert, in the config's order. */
  list(): AlertStatus[];
  /** The alerts' part of `/metrics`; `""` for none. */
  metrics(): string;
}

/** What {@linkcode AlertEngine.configure} did, alert names by what happened to them. */
export interface AlertChanges {
  /** Started. */
  added: string[];
  /** Stopped. */
  removed: string[];
  /** Whose rule changed: started anew, their state and counters reset. */
  rebuilt: string[];
  /** Kept running with their state. */
  unchanged: string[];
}

/** Options of {@linkcode AlertEngine}. */
export interface AlertEngineOptions {
  /** Time: windows, resolving, webhook retries and timeouts. Default the wall clock. */
  clock?: Clock;
  /** The webhooks' retry policy. Default: from 1 s, doubling up to 60 s, equal jitter. */
  policy?: RetryPolicy;
}

const log = getLogger(["logboom", "alerts"]);

/** The running alerts, a {@linkcode Sink} that never pushes back. */
export class AlertEngine implements Sink, AlertsView {
  /** Always `alerts`. */
  readonly name = "alerts";
  /** Never: alerts count, they do not queue lines. */
  readonly full = false;
  #alerts = new Map<string, Alert>();
  readonly #clock: Clock;
  readonly #policy: RetryPolicy | undefined;
  /** Cancels the pending tick, while an alert fires. */
  #cancelTick: (() => void) | undefined;
  /** The fields the rules read, made by `configure`. */
  #fieldNames: ReadonlySet<string> = new Set();
  /** Alerts that threw on a batch (a bug), logged once each. */
  readonly #failed = new Set<string>();
  #closed = false;

  /**
   * @param rules the `alerts` section, checked.
   * @param options clock and retry policy.
   */
  constructor(rules: AlertsConfig, options: AlertEngineOptions = {}) {
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#policy = options.policy;
    this.configure(rules);
  }

  /** How many alerts run. */
  get size(): number {
    return this.#alerts.size;
  }

  /**
   * The fields the alerts' rules read (their `fields` filters): the transform rules must keep
   * them on the lines they give, even when no sink stores fields.
   */
  get fieldNames(): ReadonlySet<string> {
    return this.#fieldNames;
  }

  /**
   * Applies a new `alerts` section (a reload): alerts whose rule is the same keep running with
   * their window, state and counters; the others start anew, and those gone stop (their unsent
   * notifications are given up, logged).
   */
  configure(rules: AlertsConfig): AlertChanges {
    const changes: AlertChanges = { added: [], removed: [], rebuilt: [], unchanged: [] };
    const next = new Map<string, Alert>();
    const leaving: Alert[] = [];
    for (const [name, rule] of Object.entries(rules)) {
      const running = this.#alerts.get(name);
      if (running !== undefined && JSON.stringify(running.rule) === JSON.stringify(rule)) {
        next.set(name, running);
        changes.unchanged.push(name);
        continue;
      }
      if (running !== undefined) leaving.push(running);
      (running === undefined ? changes.added : changes.rebuilt).push(name);
      next.set(name, new Alert(name, rule, { clock: this.#clock, policy: this.#policy }));
    }
    for (const [name, alert] of this.#alerts) {
      if (Object.hasOwn(rules, name)) continue;
      changes.removed.push(name);
      leaving.push(alert);
    }
    for (const alert of leaving) {
      if (alert.firing) {
        log.warn(
          "Alert {alert} was firing when the config changed it or removed it: its webhook is " +
            "not told it resolved",
          { alert: alert.name },
        );
      }
      void alert.close();
    }
    this.#alerts = next;
    this.#fieldNames = new Set(
      [...next.values()].flatMap((alert) => Object.keys(alert.rule.fields ?? {})),
    );
    for (const name of changes.rebuilt) this.#failed.delete(name);
    this.#arm();
    return changes;
  }

  /** Counts the batch for every alert; never pushes back, never throws. */
  write(batch: Batch): boolean {
    if (this.#closed || this.#alerts.size === 0) return true;
    const now = this.#clock.now();
    let fired = false;
    for (const alert of this.#alerts.values()) {
      try {
        if (alert.observe(batch, now)) fired = true;
      } catch (err) {
        if (this.#failed.has(alert.name)) continue;
        this.#failed.add(alert.name);
        log.error("Alert {alert} could not count a batch (a bug): {error}", {
          alert: alert.name,
          error: describe(err),
        });
      }
    }
    if (fired) this.#arm();
    return true;
  }

  /** Resolves at once: the alerts never push back. */
  writable(): Promise<void> {
    return Promise.resolve();
  }

  /** Resolves at once: nothing is stored. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Stops every alert: the tick ends, webhook requests and retries under way end, notifications
   * not sent yet are given up (logged). Resolves once the senders stopped.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelTick?.();
    this.#cancelTick = undefined;
    await Promise.all([...this.#alerts.values()].map((alert) => alert.close()));
  }

  /** Every alert as the API shows it, in the config's order. */
  list(): AlertStatus[] {
    const now = this.#clock.now();
    return [...this.#alerts.values()].map((alert) => alert.status(now));
  }

  /** The alerts' part of `/metrics`. */
  metrics(): string {
    const alerts = [...this.#alerts.values()];
    if (alerts.length === 0) return "";
    const out = new PrometheusWriter();
    out.family("logboom_alert_firing", "gauge", "Whether an alert fires (1) or not (0).");
    for (const alert of alerts) out.sample({ alert: alert.name }, alert.firing ? 1 : 0);
    out.family(
      "logboom_alert_matched_lines_total",
      "counter",
      "Lines an alert's rule matched since it started.",
    );
    for (const alert of alerts) out.sample({ alert: alert.name }, alert.matched);
    out.family(
      "logboom_alert_webhook_total",
      "counter",
      "Webhook notifications by result: ok (taken), error (an attempt failed, retried), " +
        "refused (a 4xx, not retried), dropped (the oldest, past max_pending).",
    );
    for (const alert of alerts) {
      const counts = alert.webhook.counts;
      for (const result of Object.keys(counts) as (keyof WebhookCounts)[]) {
        out.sample({ alert: alert.name, result }, counts[result]);
      }
    }
    out.family(
      "logboom_alert_webhook_pending",
      "gauge",
      "Notifications waiting for an alert's webhook.",
    );
    for (const alert of alerts) out.sample({ alert: alert.name }, alert.webhook.pending);
    return out.text();
  }

  /** Sets the tick while an alert fires (they resolve with time, batches or not). */
  #arm(): void {
    if (this.#cancelTick !== undefined || this.#closed) return;
    if (![...this.#alerts.values()].some((alert) => alert.firing)) return;
    this.#cancelTick = this.#clock.timer(TICK_MS, () => {
      this.#cancelTick = undefined;
      const now = this.#clock.now();
      for (const alert of this.#alerts.values()) alert.tick(now);
      this.#arm();
    });
  }
}
