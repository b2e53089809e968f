// Search over stored logs: a time range (relative or absolute), filters, results streamed as the
// server finds them (newest file first) and cancellable, a volume histogram over the range, the
// lines around a result, and a history of queries in localStorage.

import { useEffect, useRef, useState } from "./vendor/hooks.js";
import {
  api,
  fieldFilters,
  fieldText,
  formatNumber,
  formatTime,
  getJson,
  html,
  LEVELS,
  navigate,
  parseFieldText,
  Problem,
  readNdjson,
  routeHref,
} from "./lib.js";

/** Results kept in the page; the server's `limit` caps what it sends. */
const MAX_SHOWN = 5000;
const HISTORY_KEY = "logboom.searchHistory";
const HISTORY_SIZE = 20;
const RANGES = ["now-15m", "now-1h", "now-6h", "now-24h", "now-7d"];
/** The parameters of a search, as in the URL and the API. */
const KEYS = ["q", "regex", "from", "to", "source", "level", "limit"];

function searchQuery(params) {
  const query = new URLSearchParams();
  for (const key of KEYS) {
    const value = params.get(key);
    if (value) query.set(key, value);
  }
  for (const [name, value] of fieldFilters(params)) query.append(`field.${name}`, value);
  return query;
}

function loadHistory() {
  try {
    const list = JSON.parse(localStorage.getItem(HISTORY_KEY) ?? "[]");
    return Array.isArray(list) ? list.filter((s) => typeof s === "string") : [];
  } catch {
    return [];
  }
}

function remember(query) {
  const text = query.toString();
  const list = [text, ...loadHistory().filter((q) => q !== text)].slice(0, HISTORY_SIZE);
  localStorage.setItem(HISTORY_KEY, JSON.stringify(list));
}

function describeQuery(text) {
  const q = new URLSearchParams(text);
  const parts = [];
  if (q.get("q")) parts.push(`"${q.get("q")}"`);
  if (q.get("regex")) parts.push(`/${q.get("regex")}/`);
  if (q.get("source")) parts.push(`source ${q.get("source")}`);
  if (q.get("level")) parts.push(`>= ${q.get("level")}`);
  parts.push(`${q.get("from") ?? "now-1h"} .. ${q.get("to") ?? "now"}`);
  return parts.join(" ");
}

function SearchForm({ params }) {
  const [form, setForm] = useState(() => ({
    q: params.get("q") ?? "",
    regex: params.get("regex") ?? "",
    from: params.get("from") ?? "now-1h",
    to: params.get("to") ?? "now",
    source: params.get("source") ?? "",
    level: params.get("level") ?? "",
    limit: params.get("limit") ?? "",
    fields: fieldText(fieldFilters(params)),
  }));
  const set = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  const submit = (e, changes = {}) => {
    e?.preventDefault();
    const next = { ...form, ...changes };
    const out = new URLSearchParams();
    for (const key of KEYS) if (next[key]) out.set(key, next[key]);
    for (const [name, value] of parseFieldText(next.fields)) out.append(`field.${name}`, value);
    out.set("run", String(Date.now() % 1e6)); // a new run even for the same query
    navigate("search", out);
  };
  return html`
    <form class="filters" onSubmit=${submit} aria-label="Search">
      <label>Text <input name="q" value=${form.q} onInput=${set(
        "q",
      )} placeholder="substring" /></label>
      <label>Regex <input name="regex" value=${form.regex} onInput=${set("regex")}
          placeholder="RE2 (linear time)" /></label>
      <label>From <input name="from" value=${form.from} onInput=${set("from")}
          placeholder="now-1h or 2026-11-30T10:00:00Z" /></label>
      <label>To <input name="to" value=${form.to} onInput=${set("to")} placeholder="now" /></label>
      <label>Source <input name="source" value=${form.source} onInput=${set("source")}
          placeholder="glob" /></label>
      <label>Level <select name="level" value=${form.level} onChange=${set("level")}>
          <option value="">any</option>
          ${LEVELS.map((l) => html`<option value=${l}>${l} and above</option>`)}
        </select></label>
      <label>Fields <input name="fields" value=${form.fields} onInput=${set("fields")}
          placeholder="service=billing" /></label>
      <label>Limit <input name="limit" value=${form.limit} onInput=${set("limit")} size="6"
          placeholder="1000" inputmode="numeric" /></label>
      <button type="submit" class="primary">Search</button>
      <span class="ranges" role="group" aria-label="Quick ranges">
          ${RANGES.map((r) =>
            html`
              <button type="button" class="small"
                onClick=${() => {
                  setForm({ ...form, from: r, to: "now" });
                  submit(undefined, { from: r, to: "now" });
                }}>${r.slice(4)}</button>
            `
          )}
        </span>
    </form>
  `;
}

/** The volume histogram, drawn with uPlot (loaded as a classic script: globalThis.uPlot). */
function Histogram({ data, onRange }) {
  const box = useRef(null);
  useEffect(() => {
    const UPlot = globalThis.uPlot;
    if (data === undefined || box.current === null || UPlot === undefined) return;
    const from = new Date(data.from).getTime();
    const xs = data.counts.map((_, i) => (from + i * data.step_ms) / 1000);
    const style = getComputedStyle(document.documentElement);
    const accent = style.getPropertyValue("--accent").trim() || "#0969da";
    const fg = style.getPropertyValue("--muted").trim() || "#666";
    const plot = new UPlot(
      {
        width: Math.max(300, box.current.clientWidth),
        height: 140,
        legend: { show: false },
        cursor: { drag: { x: true, y: false } },
        scales: { x: { time: true } },
        axes: [{ stroke: fg, grid: { show: false } }, { stroke: fg, size: 50 }],
        series: [{}, {
          label: "lines",
          fill: accent,
          stroke: accent,
          paths: UPlot.paths.bars({ size: [0.9, 100] }),
          points: { show: false },
        }],
        hooks: {
          setSelect: [(u) => {
            if (u.select.width < 2) return;
            const lo = u.posToVal(u.select.left, "x");
            const hi = u.posToVal(u.select.left + u.select.width, "x");
            onRange(new Date(lo * 1000).toISOString(), new Date(hi * 1000).toISOString());
          }],
        },
      },
      [xs, data.counts],
      box.current,
    );
    return () => plot.destroy();
  }, [data]);
  if (data === undefined) return null;
  const total = data.counts.reduce((a, b) => a + b, 0);
  return html`
    <div>
      <div class="chart" ref=${box} role="img"
        aria-label="Matching lines over time: ${formatNumber(total)} in ${data.counts
          .length} buckets"></div>
      <p class="muted">${`${formatNumber(total)} matching lines from ${formatTime(data.from)} to ${
        formatTime(data.to)
      }; drag over the chart to narrow the range.`}</p>
    </div>
  `;
}

/** The lines around a result. */
function Context({ hit, onClose }) {
  const [result, setResult] = useState({ state: "loading", lines: [] });
  useEffect(() => {
    const stop = new AbortController();
    const query = new URLSearchParams({
      file: hit.file,
      offset: String(hit.offset),
      before: "20",
      after: "20",
    });
    (async () => {
      try {
        const res = await api(`/api/v1/search/context?${query}`, { signal: stop.signal });
        if (!res.ok) {
          const body = await res.json().catch(() => ({}));
          setResult({
            state: "error",
            status: res.status,
            error: body.error ?? res.statusText,
            lines: [],
          });
          return;
        }
        const lines = [];
        await readNdjson(res.body, (o) => lines.push(o));
        setResult({ state: "done", lines });
      } catch (err) {
        if (err?.name !== "AbortError") {
          setResult({ state: "error", error: String(err), lines: [] });
        }
      }
    })();
    return () => stop.abort();
  }, [hit.file, hit.offset]);
  return html`<div class="context" role="region" aria-label="Lines around the result">
    <div class="tailbar"><strong>Around ${hit.file} @ ${formatNumber(hit.offset)}</strong>
      <span class="spacer"></span><button type="button" onClick=${onClose}>Close</button></div>
    ${
    result.state === "error"
      ? html`<${Problem} what="The lines around a result" result=${result} />`
      : ""
  }
    ${result.state === "loading" ? html`<p class="muted">Loading…</p>` : ""}
    <div class="results">
      ${
    result.lines.map((l) =>
      html`
        <div class=${`row ctx ${l.hit ? "hit" : ""} ${l.level ? `lv-${l.level}` : ""}`}>
          <span class="c-time">${formatTime(l.ts)}</span>
          <span class="c-line">${shortLine(l.line)}</span>
        </div>
      `
    )
  }
    </div>
  </div>`;
}

/** A line as a row shows it: its first 2,000 characters (a megabyte would hold a frame). */
function shortLine(line) {
  return line.length > 2000 ? `${line.slice(0, 2000)}…` : line;
}

function doneText(done) {
  return `${formatNumber(done.files)} files, ${formatNumber(done.scanned_bytes)} bytes read, ` +
    `${formatNumber(done.skipped_bytes)} skipped by the time index, ${formatNumber(done.ms)} ms` +
    (done.truncated ? "; stopped at the limit" : "");
}

/** The search view. */
export function SearchView({ params }) {
  const query = searchQuery(params);
  const queryText = query.toString();
  const ran = params.has("run") || queryText !== "";
  const open = params.get("open") ?? "";
  const [state, setState] = useState({ phase: "idle", hits: [], done: undefined });
  const [histogram, setHistogram] = useState(undefined);
  const [problem, setProblem] = useState(undefined);
  const stopRef = useRef(null);
  const runKey = `${queryText}|${params.get("run") ?? ""}`;

  useEffect(() => {
    if (!ran) return;
    const stop = new AbortController();
    stopRef.current = stop;
    setProblem(undefined);
    setHistogram(undefined);
    setState({ phase: "running", hits: [], done: undefined });
    remember(query);
    const q = new URLSearchParams(query);
    if (!q.has("from")) q.set("from", "now-1h");
    if (!q.has("to")) q.set("to", "now");
    (async () => {
      const hits = [];
      let frame = 0;
      const show = () => {
        frame = 0;
        setState((s) => ({ ...s, hits: hits.slice(0, MAX_SHOWN) }));
      };
      try {
        const res = await api(`/api/v1/search?${q}`, { signal: stop.signal });
        if (!res.ok) {
          const body = await res.json().catch(() => ({}));
          setProblem({
            status: res.status,
            error: body.error ?? `${res.status} ${res.statusText}`,
          });
          setState({ phase: "failed", hits: [], done: undefined });
          return;
        }
        let done;
        await readNdjson(res.body, (o) => {
          if (o.done) {
            done = o;
            return;
          }
          if (hits.length < MAX_SHOWN) hits.push(o);
          if (frame === 0) frame = requestAnimationFrame(show);
        });
        cancelAnimationFrame(frame);
        setState({ phase: "done", hits: hits.slice(0, MAX_SHOWN), done });
      } catch (err) {
        cancelAnimationFrame(frame);
        if (err?.name === "AbortError") {
          setState((s) => ({ ...s, hits: hits.slice(0, MAX_SHOWN), phase: "cancelled" }));
        } else {
          setProblem({ status: 0, error: String(err?.message ?? err) });
          setState((s) => ({ ...s, phase: "failed" }));
        }
      }
    })();
    const hq = new URLSearchParams(q);
    hq.delete("limit");
    hq.set("buckets", "60");
    getJson(`/api/v1/search/histogram?${hq}`, { signal: stop.signal })
      .then((r) => r.data !== undefined && setHistogram(r.data))
      .catch(() => {}); // aborted
    return () => stop.abort();
  }, [runKey]);

  const ctx = params.get("ctx");
  let ctxHit;
  if (ctx) {
    const at = ctx.lastIndexOf(":");
    ctxHit = { file: ctx.slice(0, at), offset: Number(ctx.slice(at + 1)) };
  }
  const setCtx = (hit) => {
    const out = new URLSearchParams(params);
    if (hit === undefined) out.delete("ctx");
    else out.set("ctx", `${hit.file}:${hit.offset}`);
    out.delete("open");
    navigate("search", out, { replace: true });
  };
  // "Open in search" from the tail: the first result's neighbours, once it is there.
  useEffect(() => {
    if (open === "first" && state.hits.length > 0 && !ctx) setCtx(state.hits[0]);
  }, [open, state.hits.length > 0]);
  const narrow = (from, to) => {
    const out = new URLSearchParams(params);
    out.set("from", from);
    out.set("to", to);
    out.set("run", String(Date.now() % 1e6));
    out.delete("ctx");
    navigate("search", out);
  };
  const history = loadHistory();
  const { done } = state;

  return html`<section class="view search" aria-label="Search">
    <${SearchForm} key=${runKey} params=${params} />
    ${
    history.length > 0
      ? html`<div class="history" aria-label="Recent searches">
      <span class="muted">Recent:</span>
      ${
        history.slice(0, 8).map((h) =>
          html`<a href=${routeHref("search", new URLSearchParams(h))}>${describeQuery(h)}</a>`
        )
      }
    </div>`
      : ""
  }
    <${Problem} what="Search" result=${problem} />
    <div class="tailbar">
      ${
    state.phase === "running"
      ? html`
        <span class="state st-connecting" role="status">Searching… ${formatNumber(
          state.hits.length,
        )} found</span>
        <button type="button" onClick=${() => stopRef.current?.abort()}>Cancel</button>
      `
      : ""
  }
      ${
    state.phase === "cancelled"
      ? html`<span class="state st-reconnecting" role="status">Cancelled after ${
        formatNumber(state.hits.length)
      } results</span>`
      : ""
  }
      ${
    done
      ? html`
        <span class="state st-live" role="status">${formatNumber(done.matched)} matched</span>
        <span class="muted">${doneText(done)}</span>
      `
      : ""
  }
    </div>
    <${Histogram} data=${histogram} onRange=${narrow} />
    ${ctxHit ? html`<${Context} hit=${ctxHit} onClose=${() => setCtx(undefined)} />` : ""}
    <div class="results" role="list" aria-label="Results, newest first">
      ${
    state.hits.map((hit) =>
      html`
        <div role="listitem" tabindex="0"
          class=${`row ${hit.level ? `lv-${hit.level}` : ""}`}
          title="Enter: the lines around it"
          onClick=${() => setCtx(hit)}
          onKeyDown=${(e) => e.key === "Enter" && setCtx(hit)}>
          <span class="c-time">${formatTime(hit.ts)}</span>
          <span class="c-source">${hit.source ?? ""}</span>
          <span class="c-level">${hit.level ?? ""}</span>
          <span class="c-line">${shortLine(hit.line)}</span>
        </div>
      `
    )
  }
    </div>
    ${
    !ran
      ? html`<p class="muted">Search the stored logs: type text or a regex, pick a range, press Enter.</p>`
      : ""
  }
  </section>`;
}
