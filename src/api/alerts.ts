/**
 * `GET /api/v1/alerts`: every alert of the config with its state, its count within the window,
 * and its webhook's last answer and queue, as the web page shows them.
 *
 * ```json
 * {"alerts": [{"name": "billing_errors", "state": "firing", "count": 12, "threshold": 10,
 *   "window_s": 300, "since": "2026-11-30T18:00:00.000Z", "last_fired": "2026-11-30T18:00:00.000Z",
 *   "webhook": {"last_status": 200, "pending": 0}, "rule": {"source": "billing", ...}}]}
 * ```
 *
 * @module
 */

import type { AlertsView } from "../alerts/engine.ts";
import { HttpError } from "../net/http_error.ts";

/** Answers `GET /api/v1/alerts` from `alerts` (none configured: an empty list). */
export function alertsResponse(req: Request, alerts: AlertsView | undefined): Response {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new HttpError(405, "Use GET", { headers: { allow: "GET, HEAD" } }).response();
  }
  const body = JSON.stringify({ alerts: alerts?.list() ?? [] }) + "\n";
  return new Response(req.method === "HEAD" ? null : body, {
    status: 200,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
}
