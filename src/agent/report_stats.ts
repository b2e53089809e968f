/**
 * What an agent's report says about its stats: the part of the report's contract that the agent
 * and the server's `/metrics` share.
 *
 * @module
 */

/**
 * Stats that are levels now (files open, bytes owed), not counts since the agent started: both the
 * agent's own `/metrics` and the server's name them without `_total` and type them `gauge`.
 */
export const GAUGE_STATS: ReadonlySet<string> = new Set([
  "files_open",
  "in_flight_bytes",
  "lag_bytes",
  "files_unreadable",
  "files_skipped",
]);

/**
 * The metric an agent stat is exposed as, on the agent's own `/metrics` and the server's:
 * `logboom_agent_<stat>`, with `_total` and type `counter` for a count, as is for a gauge.
 *
 * @example
 * ```ts
 * statMetric("lines"); // { name: "logboom_agent_lines_total", type: "counter" }
 * statMetric("files_open"); // { name: "logboom_agent_files_open", type: "gauge" }
 * ```
 */
export function statMetric(stat: string): { name: string; type: "counter" | "gauge" } {
  return GAUGE_STATS.has(stat)
    ? { name: `logboom_agent_${stat}`, type: "gauge" }
    : { name: `logboom_agent_${stat}_total`, type: "counter" };
}
