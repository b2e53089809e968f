// Alerts: each alert of the config with its state, its count in the window and its webhook.

import { formatAgo, formatNumber, formatTime, html, Problem, usePoll } from "./lib.js";

function ruleText(rule) {
  if (rule === undefined || rule === null) return "";
  const parts = [];
  if (rule.source) parts.push(`source ${rule.source}`);
  if (rule.level) parts.push(`level >= ${rule.level}`);
  if (rule.grep) parts.push(`"${rule.grep}"`);
  if (rule.regex) parts.push(`/${rule.regex}/`);
  if (rule.fields) parts.push(Object.entries(rule.fields).map(([k, v]) => `${k}=${v}`).join(" "));
  return parts.join(", ") || "every line";
}

/** The alerts view. */
export function AlertsView() {
  const result = usePoll("/api/v1/alerts", 2000);
  const alerts = result?.data?.alerts ?? [];
  const firing = alerts.filter((a) => a.state === "firing").length;
  return html`<div class="view alerts">
    <h2>Alerts ${
    result?.data ? html`<span class="muted">(${firing} firing of ${alerts.length})</span>` : ""
  }</h2>
    <${Problem} what="Alerts" result=${result} />
    ${
    result?.data && alerts.length === 0
      ? html`<p class="muted">No alert configured: add an <code>alerts</code> section to the config.</p>`
      : ""
  }
    ${
    alerts.length > 0
      ? html`
        <table class="alert-list">
          <thead>
            <tr>
              <th>alert</th>
              <th>state</th>
              <th class="num">count / threshold</th>
              <th>window</th>
              <th>matches</th>
              <th>since</th>
              <th>last fired</th>
              <th>webhook</th>
            </tr>
          </thead>
          <tbody>${alerts.map((a) =>
            html`
              <tr class=${`alert-${a.state}`}>
                <td>${a.name}</td>
                <td><span class=${`badge ${a.state}`}>${a.state}</span></td>
                <td class="num">${formatNumber(a.count)} / ${formatNumber(a.threshold)}</td>
                <td>${formatNumber(a.window_s)} s</td>
                <td>${ruleText(a.rule)}</td>
                <td title=${a.since ?? ""}>${a.since ? formatTime(a.since) : "-"}</td>
                <td>${a.last_fired ? formatAgo(a.last_fired) : "never"}</td>
                <td>${a.webhook?.last_error
                  ? html`<span class="badge failing" title=${a.webhook.last_error}>error</span> ${a.webhook.last_error}`
                  : a.webhook?.last_status
                  ? `HTTP ${a.webhook.last_status}`
                  : "-"}
                        ${a.webhook?.pending ? ` (${a.webhook.pending} pending)` : ""}</td>
              </tr>
            `
          )}</tbody>
        </table>
      `
      : ""
  }
  </div>`;
}
