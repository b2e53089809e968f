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
