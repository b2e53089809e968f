// Sources and fleet: every source with its rates and a sparkline, every agent with its files,
// lag, failover, errors and config state, and the server's own state.

import { useState } from "./vendor/hooks.js";
import {
  formatAgo,
  formatBytes,
  formatNumber,
  formatTime,
  html,
  Json,
  navigate,
  Problem,
  Sparkline,
  usePoll,
} from "./lib.js";

function Sources() {
  const result = usePoll("/api/v1/sources", 2000);
  const sources = result?.data?.sources ?? [];
  return html`<section aria-label="Sources">
    <h2>Sources</h2>
    <${Problem} what="Sources" result=${result} />
    ${result?.data && sources.length === 0 ? html`<p class="muted">No line received yet.</p>` : ""}
    ${
    sources.length > 0
      ? html`
        <table class="sources">
          <thead>
            <tr>
              <th>source</th>
              <th class="num">lines/s</th>
              <th class="num">bytes/s</th>
              <th>last minute</th>
              <th class="num">lines</th>
              <th class="num">bytes</th>
              <th>last seen</th>
            </tr>
          </thead>
          <tbody>${sources.map((s) =>
            html`
              <tr>
                <td><a href=${`#/tail?source=${encodeURIComponent(s.source)}`}>${s.source}</a></td>
                <td class="num">${formatNumber(s.lines_per_second, 1)}</td>
                <td class="num">${formatBytes(s.bytes_per_second)}</td>
                <td>
                  <${Sparkline} values=${s.history} label=${`lines per second of ${s.source}`} />
                </td>
                <td class="num">${formatNumber(s.lines)}</td>
                <td class="num">${formatBytes(s.bytes)}</td>
                <td title=${s.last_seen ?? s.lastSeen}>${formatAgo(s.last_seen ?? s.lastSeen)}</td>
              </tr>
            `
          )}</tbody>
        </table>
      `
      : ""
  }
  </section>`;
}

function ConfigState({ config }) {
  if (config === undefined || config === null) return html`<span class="muted">-</span>`;
  const label = config.state === "local"
    ? "local file"
    : `${config.state}${config.version !== undefined ? ` v${config.version}` : ""}`;
  return html`<span class=${`badge ${config.state}`} title=${config.reason ?? ""}>${label}</span>
    ${
    config.reason
      ? html`
        <span class="muted">${config.reason}</span>
      `
      : ""
  }`;
}

function AgentRow({ agent, open, onToggle }) {
  const files = Array.isArray(agent.files) ? agent.files : [];
  const errors = Array.isArray(agent.errors) ? agent.errors : [];
  const failover = agent.failover;
  return html`<tbody>
    <tr class="agent">
      <td><button type="button" class="small" aria-expanded=${open} onClick=${onToggle}
        aria-label=${`${open ? "Hide" : "Show"} the files of ${agent.id}`}>${
    open ? "▾" : "▸"
  }</button>
        ${" "}${agent.id}</td>
      <td>${agent.host}</td>
      <td>${agent.version}</td>
      <td title=${agent.lastSeen}>${formatAgo(agent.lastSeen)}</td>
      <td class="num lag">${formatBytes(agent.lag)}</td>
      <td>${
    failover
      ? html`<span class=${`badge ${failover.failing ? "failing" : "ok"}`}>
          ${failover.failing ? "failing" : "ok"}</span> ${failover.active ?? ""}`
      : agent.server ?? ""
  }</td>
      <td>${
    errors.length === 0 ? "none" : html`<span class="badge failing">${errors.length}</span>`
  }</td>
      <td><${ConfigState} config=${agent.config} /></td>
    </tr>
    ${
    open
      ? html`
        <tr>
          <td colspan="8">
              <table class="files">
                <thead><tr><th>file</th><th class="num">offset</th><th class="num">size</th><th class="num">lag</th></tr></thead>
                <tbody>${files.map((f) =>
                  html`
                    <tr>
                      <td class="mono">${f.path}</td>
                      <td class="num">${formatNumber(f.offset)}</td>
                      <td class="num">${formatNumber(f.size)}</td>
                      <td class="num">${formatBytes(f.lag)}</td>
                    </tr>
                  `
                )}</tbody>
              </table>
              ${failover?.servers ? html`<p>Servers: ${failover.servers.join(", ")}</p>` : ""}
              ${errors.length > 0
                ? html`
                  <h3>Recent errors</h3>
                  <ul>${errors.map((e) =>
                    html`<li>
        ${formatTime(e.time)}: ${e.message}</li>`
                  )}</ul>
                `
                : ""}
              ${agent.stats
                ? html`<p class="muted">${
                  Object.entries(agent.stats).map(([k, v]) => `${k} ${formatNumber(v)}`).join(" · ")
                }</p>`
                : ""}
            </td>
        </tr>
      `
      : ""
  }
  </tbody>`;
}

function Agents({ params }) {
  const result = usePoll("/api/v1/agents", 2000);
  const agents = result?.data?.agents ?? [];
  const open = new Set((params.get("agent") ?? "").split(",").filter((s) => s !== ""));
  const toggle = (id) => {
    if (open.has(id)) open.delete(id);
    else open.add(id);
    const out = new URLSearchParams(params);
    if (open.size === 0) out.delete("agent");
    else out.set("agent", [...open].join(","));
    navigate("fleet", out, { replace: true });
  };
  return html`<section aria-label="Agents">
    <h2>Agents</h2>
    <${Problem} what="Agents" result=${result} />
    ${
    result?.data && agents.length === 0 ? html`<p class="muted">No agent has reported yet.</p>` : ""
  }
    ${
    agents.length > 0
      ? html`<table class="agents">
      <thead><tr><th>agent</th><th>host</th><th>version</th><th>last report</th>
        <th class="num">lag</th><th>failover</th><th>errors</th><th>config</th></tr></thead>
      ${
        agents.map((a) =>
          html`
            <${AgentRow} key=${a.id} agent=${a} open=${open.has(a.id)}
              onToggle=${() => toggle(a.id)} />
          `
        )
      }
    </table>`
      : ""
  }
  </section>`;
}

function Status() {
  const result = usePoll("/api/v1/status", 5000);
  const [showConfig, setShowConfig] = useState(false);
  const s = result?.data;
  const disk = s?.disk;
  const queues = s?.queues;
  return html`<section aria-label="Server">
    <h2>Server</h2>
    <${Problem} what="Server status" result=${result} />
    ${
    s
      ? html`
        <table class="status">
          <tbody>
            <tr>
              <th>version</th>
              <td>${s.version}</td>
            </tr>
            <tr>
              <th>started</th>
              <td>${formatTime(s.started)} (up ${formatNumber(s.uptime_s)} s)</td>
            </tr>
            <tr>
              <th>queues</th>
              <td>${queues
                ? `${formatBytes(queues.used_bytes)} used` +
                  (queues.limit_bytes ? ` of ${formatBytes(queues.limit_bytes)}` : "")
                : "-"}</td>
            </tr>
            <tr>
              <th>open files</th>
              <td>${formatNumber(s.open_files)}</td>
            </tr>
            <tr>
              <th>disk</th>
              <td>${disk === undefined
                ? "-"
                : disk.available === false
                ? `${disk.path ?? ""} (${disk.reason})`
                : `${disk.path}: ${formatBytes(disk.free_bytes)} free of ${
                  formatBytes(disk.total_bytes)
                }`}</td>
            </tr>
            <tr>
              <th>rotation</th>
              <td>${formatNumber(
                s.rotation?.pending_compress ?? 0,
              )} files waiting for compression</td>
            </tr>
            <tr>
              <th>live tails</th>
              <td>${formatNumber(s.live?.subscribers ?? 0)}</td>
            </tr>
          </tbody>
        </table>
            <button type="button" aria-expanded=${showConfig} onClick=${() =>
              setShowConfig(!showConfig)}>
              ${showConfig ? "Hide" : "Show"} the running config</button>
            ${showConfig ? html`<${Json} value=${s.config} />` : ""}
      `
      : ""
  }
  </section>`;
}

/** The sources and fleet view. */
export function FleetView({ params }) {
  return html`
    <div class="view fleet">
      <${Sources} />
      <${Agents} params=${params} />
      <${Status} />
    </div>
  `;
}
