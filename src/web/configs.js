// Central agent configs: the configs the server hands to agents started with
// `logboom agent -server URL`, edited here as JSON; the server checks each one whole (a 400 lists
// every problem at its key) and the agents say whether they applied or refused it.

import { useEffect, useState } from "./vendor/hooks.js";
import {
  formatAgo,
  getJson,
  html,
  navigate,
  Problem,
  routeHref,
  sendJson,
  usePoll,
} from "./lib.js";

const EXAMPLE = {
  inputs: [{ paths: ["/var/log/app/*.log"], source: "app" }],
};

function splitList(text) {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

function Editor({ entry, isNew, onSaved }) {
  const [name, setName] = useState(entry?.name ?? "");
  const [ids, setIds] = useState((entry?.match?.ids ?? []).join(", "));
  const [hosts, setHosts] = useState((entry?.match?.hosts ?? []).join(", "));
  const [text, setText] = useState(JSON.stringify(entry?.config ?? EXAMPLE, null, 2));
  const [outcome, setOutcome] = useState(undefined);
  const [confirmDelete, setConfirmDelete] = useState(false);

  const save = async (e) => {
    e.preventDefault();
    let config;
    try {
      config = JSON.parse(text);
    } catch (err) {
      setOutcome({ kind: "error", message: `The config is not valid JSON: ${err.message}` });
      return;
    }
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
      setOutcome({ kind: "error", message: "A name is 1 to 64 letters, digits, '.', '_' or '-'" });
      return;
    }
    const match = {};
    if (splitList(ids).length > 0) match.ids = splitList(ids);
    if (splitList(hosts).length > 0) match.hosts = splitList(hosts);
    const result = await sendJson(`/api/v1/agent-configs/${encodeURIComponent(name)}`, "PUT", {
      match,
      config,
    });
    if (result.data !== undefined) {
      onSaved(name, `Saved "${name}" as version ${result.data.version ?? "?"}`);
    } else {
      setOutcome({ kind: "problems", result, problems: result.body?.problems ?? [] });
    }
  };
  const remove = async () => {
    if (!confirmDelete) {
      setConfirmDelete(true);
      return;
    }
    const result = await getJson(`/api/v1/agent-configs/${encodeURIComponent(name)}`, {
      method: "DELETE",
    });
    setConfirmDelete(false);
    if (result.error === undefined) onSaved(undefined, `Deleted "${name}"`);
    else setOutcome({ kind: "problems", result, problems: [] });
  };

  return html`<form class="editor" onSubmit=${save} aria-label="Agent config">
    <div class="filters">
      <label>Name <input name="name" value=${name} readonly=${!isNew}
        onInput=${(e) => setName(e.target.value)} placeholder="web-servers" /></label>
      <label>Agent ids <input name="ids" value=${ids} onInput=${(e) => setIds(e.target.value)}
        placeholder="comma-separated" /></label>
      <label>Hosts <input name="hosts" value=${hosts} onInput=${(e) => setHosts(e.target.value)}
        placeholder="globs: web-*, db-?" /></label>
    </div>
    <label for="config-text" class="muted">The agent's config (JSON: inputs, batch, ...; not
      id, token or state_dir, which are each agent's own). An empty match is for every agent.</label>
    <textarea id="config-text" name="config" rows="16" spellcheck="false"
      value=${text} onInput=${(e) => setText(e.target.value)}></textarea>
    <div class="tailbar">
      <button type="submit" class="primary">Check and save</button>
      ${
    !isNew
      ? html`<button type="button" onClick=${remove}>
        ${confirmDelete ? "Really delete?" : "Delete"}</button>`
      : ""
  }
    </div>
    ${
    outcome?.kind === "error"
      ? html`<p class="notice error" role="alert">${outcome.message}</p>`
      : ""
  }
    ${
    outcome?.kind === "problems"
      ? html`<div class="notice error" role="alert">
      <p>Refused: ${outcome.result.error}</p>
      ${
        outcome.problems.length > 0
          ? html`<ul class="problems">${
            outcome.problems.map((p) =>
              html`<li>
        <code>${p.key || "(the body)"}</code>: ${p.problem ?? p.message}</li>`
            )
          }</ul>`
          : ""
      }
    </div>`
      : ""
  }
  </form>`;
}

function AgentStates({ name }) {
  const result = usePoll("/api/v1/agents", 2000);
  const agents = (result?.data?.agents ?? []).filter((a) =>
    name === undefined || a.config?.name === name || a.config?.state === "local"
  );
  return html`<section aria-label="Agents and their configs">
    <h2>Agents</h2>
    <${Problem} what="Agents" result=${result} />
    ${
    agents.length === 0 ? html`<p class="muted">No agent reports this config yet.</p>` : html`
      <table class="agent-configs">
        <thead>
          <tr>
            <th>agent</th>
            <th>host</th>
            <th>config</th>
            <th>state</th>
            <th>last report</th>
          </tr>
        </thead>
        <tbody>${agents.map((a) =>
          html`
            <tr>
              <td>${a.id}</td>
              <td>${a.host}</td>
              <td>${a.config?.name ?? (a.config?.state === "local" ? "local file" : "-")}
                      ${a.config?.version !== undefined ? ` v${a.config.version}` : ""}</td>
              <td><span class=${`badge ${a.config?.state ?? ""}`}>${a.config?.state ?? "-"}</span>
                      ${a.config?.reason
                        ? html`
                          <span class="reason">${a.config.reason}</span>
                        `
                        : ""}</td>
              <td>${formatAgo(a.lastSeen)}</td>
            </tr>
          `
        )}</tbody>
      </table>
    `
  }
  </section>`;
}

/** The agent configs view. */
export function ConfigsView({ params }) {
  const [list, setList] = useState(undefined);
  const [reload, setReload] = useState(0);
  const selected = params.get("name") ?? undefined;
  const isNew = params.get("new") === "1";
  useEffect(() => {
    const stop = new AbortController();
    getJson("/api/v1/agent-configs", { signal: stop.signal }).then(setList).catch(() => {});
    return () => stop.abort();
  }, [reload]);
  const configs = list?.data?.configs ?? [];
  const entry = configs.find((c) => c.name === selected);
  const [notice, setNotice] = useState("");
  const onSaved = (name, message) => {
    setNotice(message);
    setReload(reload + 1);
    navigate("configs", name === undefined ? {} : { name }, { replace: true });
  };
  return html`<div class="view configs">
    <h2>Agent configs</h2>
    <${Problem} what="Central agent configs" result=${list} />
    ${
    list?.data
      ? html`
        <table class="config-list">
          <thead>
            <tr>
              <th>name</th>
              <th>for</th>
              <th class="num">version</th>
              <th>changed</th>
            </tr>
          </thead>
          <tbody>${configs.map((c) =>
            html`
              <tr aria-selected=${c.name === selected}>
                <td><a href=${routeHref("configs", { name: c.name })}>${c.name}</a></td>
                <td>${[
                  ...(c.match?.ids ?? []).map((i) => `id ${i}`),
                  ...(c.match?.hosts ?? []).map((h) => `host ${h}`),
                ]
                  .join(", ") || "every agent"}</td>
                <td class="num">${c.version}</td>
                <td>${formatAgo(c.updated)}</td>
              </tr>
            `
          )}</tbody>
        </table>
            <a href=${routeHref("configs", {
              new: "1",
            })} role="button" class="button">New config</a>
            ${notice ? html`<p class="notice saved" role="status">${notice}</p>` : ""}
            ${isNew || entry !== undefined
              ? html`
                <${Editor} key=${isNew ? "new" : entry.name}
                  entry=${isNew ? undefined : entry} isNew=${isNew} onSaved=${onSaved} />
              `
              : ""}
            <${AgentStates} name=${selected} />
      `
      : ""
  }
  </div>`;
}
