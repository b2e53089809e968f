/**
 * The `alerts` section of a server config: named saved searches with a threshold over a sliding
 * window, and the webhook told when one fires and when it resolves. {@linkcode readAlerts} checks
 * it, every problem at its key path (`alerts.billing_errors.webhook`), the regex compiled once
 * there as the live tail compiles it.
 *
 * ```yaml
 * alerts:
 *   billing_errors:
 *     source: "billing"          # glob, optional
 *     level: error               # this level or higher, optional
 *     grep: "timeout"            # optional text; regex: optional
 *     fields: { service: billing } # optional
 *     threshold: 10              # fires when MORE than this many lines match...
 *     window: 5m                 # ...within this sliding window
 *     webhook: http://127.0.0.1:9999/hook
 *     resolve_after: 5m          # optional; default = window
 * ```
 *
 * @module
 */

import { keyPath, type KeyTable, type Problems, readKeys, show } from "../config/keys.ts";
import { type Level, LEVELS } from "../pipeline/record.ts";
import { compileLinearRegex } from "../text/linear_regex.ts";

/** The keys of one alert, besides `fields`. */
export const ALERT_KEYS = {
  source: {
    type: "string",
    nonEmpty: true,
    doc: "Only lines of these sources, a glob (* any text, ? one character); default every source",
  },
  level: {
    type: "choice",
    choices: LEVELS,
    doc: "Only lines of this level or higher (from the input or a transforms level step); a " +
      "line without a level never matches",
  },
  grep: {
    type: "string",
    nonEmpty: true,
    doc: "Only lines containing this text (case-sensitive)",
  },
  regex: {
    type: "string",
    nonEmpty: true,
    doc: "Only lines this regular expression matches (linear-time engine, as the live tail's " +
      "regex, on a line's first 8,192 characters); with grep, both must match",
    check: (pattern) => {
      try {
        compileLinearRegex(pattern);
        return undefined;
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      }
    },
  },
  threshold: {
    type: "count",
    required: true,
    doc: "The alert fires when more than this many lines match within the window",
  },
  window: {
    type: "duration",
    required: true,
    min: 1000,
    doc: "The sliding window lines are counted over, in 1 s buckets (windows over 1h: 3,600 " +
      "buckets of window/3600)",
  },
  resolve_after: {
    type: "duration",
    min: 0,
    doc: "A firing alert resolves once the count stayed at or under the threshold this long; " +
      "default the window",
  },
  webhook: {
    type: "string",
    required: true,
    doc: "URL told by a JSON POST when the alert fires and when it resolves; retried with " +
      "backoff on a network error, a timeout, 408, 429 or 5xx",
    check: webhookProblem,
  },
  webhook_timeout: {
    type: "duration",
    default: "10s",
    doc: "A webhook request that has not answered within this long is given up and retried",
  },
  max_pending: {
    type: "count",
    default: 100,
    min: 1,
    max: 10000,
    doc: "Notifications waiting for the webhook at most; past it the oldest is dropped, logged " +
      'and counted (logboom_alert_webhook_total{result="dropped"})',
  },
} as const satisfies KeyTable;

/** What the reference page says of `fields`. */
export const FIELDS_DOC = "Only lines whose fields hold all of these values, e.g. " +
  "{ service: billing, status: 500 } (a value matches a field whose value as text is the same); " +
  "a line without the field never matches";

/** One alert as the config holds it: checked, defaults filled in. */
export interface AlertRule {
  /** Source glob; `undefined` for every source. */
  source?: string;
  /** Least level. */
  level?: Level;
  /** Text a line must contain. */
  grep?: string;
  /** Pattern a line must match. */
  regex?: string;
  /** Field values a line must hold, as text. */
  fields?: Record<string, string>;
  /** Fires when more than this many lines match within the window. */
  threshold: number;
  /** The window, in ms. */
  window: number;
  /** How long the count must stay at or under the threshold to resolve, in ms. */
  resolve_after: number;
  /** The webhook's URL. */
  webhook: string;
  /** A webhook request's timeout, in ms. */
  webhook_timeout: number;
  /** Most notifications waiting. */
  max_pending: number;
}

/** The `alerts` section: alerts by name, in the file's order. */
export type AlertsConfig = Record<string, AlertRule>;

/** Alert names: they label metrics. */
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Reads the `alerts` section `doc` (at key path `at`): `undefined` when the config has none, `{}`
 * for an empty one. Every problem goes to `problems` at its key path.
 */
export function readAlerts(
  doc: unknown,
  problems: Problems,
  at = "alerts",
): AlertsConfig | undefined {
  if (doc === undefined) return undefined;
  if (doc === null) return {};
  if (!isMapping(doc)) {
    problems.add(at, `must be a mapping of alert names to alerts, got ${show(doc)}`);
    return {};
  }
  const out: AlertsConfig = {};
  for (const [name, value] of Object.entries(doc)) {
    const path = keyPath(at, name);
    if (!NAME.test(name)) problems.add(path, "a name is 1 to 64 letters, digits, _ or -");
    if (!isMapping(value)) {
      problems.add(
        path,
        `must be a mapping with threshold, window and webhook, got ${show(value)}`,
      );
      continue;
    }
    const values = readKeys(ALERT_KEYS, value, path, problems, { ignore: ["fields"] });
    const fields = readFields(value.fields, keyPath(path, "fields"), problems);
    const rule: AlertRule = {
      threshold: values.threshold,
      window: values.window,
      resolve_after: values.resolve_after ?? values.window,
      webhook: values.webhook,
      webhook_timeout: values.webhook_timeout,
      max_pending: values.max_pending,
    };
    if (values.source !== undefined) rule.source = values.source;
    if (values.level !== undefined) rule.level = values.level;
    if (values.grep !== undefined) rule.grep = values.grep;
    if (values.regex !== undefined) rule.regex = values.regex;
    if (fields !== undefined) rule.fields = fields;
    out[name] = rule;
  }
  return out;
}

/** Reads `fields`: a mapping of field names to strings, numbers or booleans, kept as text. */
function readFields(
  doc: unknown,
  at: string,
  problems: Problems,
): Record<string, string> | undefined {
  if (doc === undefined || doc === null) return undefined;
  if (!isMapping(doc)) {
    problems.add(at, `must be a mapping of field names to values, got ${show(doc)}`);
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(doc)) {
    if (name === "") {
      problems.add(at, "a field name must not be empty");
      continue;
    }
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      out[name] = String(value);
    } else {
      problems.add(
        keyPath(at, name),
        `must be a string, number or boolean, got ${show(value)}`,
      );
    }
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** What is wrong with a webhook URL, or `undefined`: http or https, with a host. */
export function webhookProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `must be an http:// or https:// URL, got ${show(url)}`;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return `must be an http:// or https:// URL, got ${show(url)}`;
  }
  if (parsed.hostname === "") return `must name a host, got ${show(url)}`;
  return undefined;
}

/**
 * The webhook URL as the API shows it: its origin, and `/***` in place of a path or query, which
 * often hold a secret (Slack's and Discord's webhook URLs do).
 */
export function redactedWebhook(url: string): string {
  const parsed = new URL(url);
  const hidden = (parsed.pathname !== "/" && parsed.pathname !== "") || parsed.search !== "";
  return parsed.origin + (hidden ? "/***" : "/");
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
