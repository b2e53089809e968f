// The live tail: lines as they arrive, newest at the bottom, filtered on the server.
//
// The list is drawn without Preact: lines arrive at up to tens of thousands a second, so they
// are queued as they are read and put in the page once per animation frame, at most WINDOW of
// them, and the oldest rows are removed past WINDOW; everything else is counted. Scrolling up
// (or Pause) pauses: new lines wait (the last WINDOW of them) and are counted in "paused, N new
// lines" until Resume. The stream is the SSE tail read with fetch (EventSource cannot send the
// token); after a network cut it reconnects with the last cursor as Last-Event-ID, and the
// server tells how many lines were missed.

import { useEffect, useRef, useState } from "./vendor/hooks.js";
import {
  api,
  copyText,
  fieldFilters,
  fieldText,
  formatNumber,
  html,
  LEVELS,
  navigate,
  parseFieldText,
  readSse,
} from "./lib.js";

/** Rows kept in the page. */
export const WINDOW = 2000;
/** Lines asked for when a tail starts (backfill). */
const BACKFILL = 200;

/** The query string of the tail API for the view's parameters. */
function tailQuery(params) {
  const query = new URLSearchParams();
  for (const key of ["source", "level", "grep", "regex"]) {
    const value = params.get(key);
    if (value) query.set(key, value);
  }
  for (const [name, value] of fieldFilters(params)) query.append(`field.${name}`, value);
  return query.toString();
}

function columnsOf(params) {
  return (params.get("cols") ?? "").split(",").map((c) => c.trim()).filter((c) => c !== "");
}

/** A line's fields: its own, else those of its text when that is a JSON object. */
function fieldsOf(item) {
  if (item.fields !== undefined) return item.fields;
  if (item.parsed === undefined) {
    item.parsed = null;
    const text = item.line;
    if (typeof text === "string" && text.startsWith("{") && text.endsWith("}")) {
      try {
        const value = JSON.parse(text);
        if (value !== null && typeof value === "object" && !Array.isArray(value)) {
          item.parsed = value;
        }
      } catch {
        // not JSON: no fields
      }
    }
  }
  return item.parsed ?? undefined;
}

function fieldValue(fields, name) {
  if (fields === undefined) return "";
  let value = fields[name];
  if (value === undefined && name.includes(".")) {
    value = name.split(".").reduce(
      (v, k) => (v !== null && typeof v === "object" ? v[k] : undefined),
      fields,
    );
  }
  if (value === undefined || value === null) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function shortTime(ts) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.` +
    pad(date.getMilliseconds(), 3);
}

/** The tail's connection and the list it fills; independent of Preact. */
class TailEngine {
  /**
   * @param {HTMLElement} list the scrolling element rows go into.
   * @param {(stats: object) => void} onStats called when the counters change (throttled).
   */
  constructor(list, onStats) {
    this.list = list;
    this.onStats = onStats;
    this.rows = new WeakMap();
    this.pending = [];
    this.paused = false;
    this.frame = 0;
    this.statsTimer = 0;
    this.columns = [];
    this.selected = null;
    this.reset();
    this.onScroll = () => this.#scrolled();
    list.addEventListener("scroll", this.onScroll, { passive: true });
  }

  reset() {
    this.stats = {
      state: "connecting",
      message: "",
      received: 0,
      shown: 0,
      dropped: 0,
      newWhilePaused: 0,
      paused: this.paused,
      reconnects: 0,
    };
  }

  /** Starts (again) with a query and columns: the list is emptied. */
  start(query, columns) {
    this.stop();
    this.columns = columns;
    this.pending = [];
    this.list.replaceChildren();
    this.selected = null;
    this.paused = false;
    this.reset();
    this.#publish(true);
    this.abort = new AbortController();
    this.#run(query, this.abort.signal);
  }

  stop() {
    this.abort?.abort();
    cancelAnimationFrame(this.frame);
    this.frame = 0;
  }

  destroy() {
    this.stop();
    clearTimeout(this.statsTimer);
    this.list.removeEventListener("scroll", this.onScroll);
  }

  async #run(query, signal) {
    let cursor;
    let delay = 1000;
    while (!signal.aborted) {
      try {
        const headers = cursor === undefined ? {} : { "last-event-id": cursor };
        const backfill = cursor === undefined ? `${query === "" ? "" : "&"}n=${BACKFILL}` : "";
        const res = await api(`/api/v1/tail?${query}${backfill}`, { signal, headers });
        if (!res.ok) {
          const body = await res.json().catch(() => ({}));
          const message = body.error ?? `${res.status} ${res.statusText}`;
          if (res.status >= 400 && res.status < 500) {
            // A bad filter or a wrong token: asking again would give the same answer.
            this.#setState("error", message);
            return;
          }
          throw new Error(message);
        }
        this.#setState("live", "");
        delay = 1000;
        await readSse(res.body, (event) => {
          if (event.id) cursor = event.id;
          this.#event(event);
        });
        if (signal.aborted) return;
        this.#setState("reconnecting", "the server ended the stream");
      } catch (err) {
        if (signal.aborted) return;
        this.#setState("reconnecting", err?.message ?? String(err));
      }
      this.stats.reconnects++;
      const wait = delay;
      delay = Math.min(delay * 2, 10_000);
      this.#setState("reconnecting", `${this.stats.message}; again in ${wait / 1000} s`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, wait);
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
    }
  }

  #setState(state, message) {
    this.stats.state = state;
    this.stats.message = message;
    this.#publish(true);
  }

  #event({ event, data }) {
    if (event === "message") {
      const item = JSON.parse(data);
      this.stats.received++;
      if (this.paused) this.stats.newWhilePaused++;
      this.#queue(item);
    } else if (event === "dropped") {
      const { count } = JSON.parse(data);
      this.stats.dropped += count;
      this.#queue({ dropped: count });
    } else if (event === "ready") {
      const ready = JSON.parse(data);
      if (ready.restarted) {
        this.#queue({ note: "The server restarted: resuming from the oldest line it holds" });
      }
    }
  }

  #queue(item) {
    this.pending.push(item);
    // Only the last WINDOW can ever be shown: older ones are counted, not kept.
    if (this.pending.length > 2 * WINDOW) this.pending.splice(0, this.pending.length - WINDOW);
    if (!this.paused && this.frame === 0) this.frame = requestAnimationFrame(() => this.#flush());
    this.#publish(false);
  }

  /** Puts the queued lines in the page: one DOM update per frame. */
  #flush() {
    this.frame = 0;
    if (this.paused || this.pending.length === 0) return;
    const items = this.pending.length > WINDOW ? this.pending.slice(-WINDOW) : this.pending;
    this.pending = [];
    const fragment = document.createDocumentFragment();
    for (const item of items) fragment.append(this.#row(item));
    const list = this.list;
    list.append(fragment);
    let extra = list.childElementCount - WINDOW;
    while (extra-- > 0) {
      const first = list.firstElementChild;
      if (first === this.selected) this.selected = null;
      first.remove();
    }
    this.programmatic = true;
    list.scrollTop = list.scrollHeight;
    this.stats.shown = list.childElementCount;
    this.#publish(false);
  }

  #row(item) {
    const row = document.createElement("div");
    if (item.dropped !== undefined) {
      row.className = "row marker";
      row.textContent = `${formatNumber(item.dropped)} lines skipped here (dropped for this tail)`;
      return row;
    }
    if (item.note !== undefined) {
      row.className = "row marker";
      row.textContent = item.note;
      return row;
    }
    row.className = item.level ? `row lv-${item.level}` : "row";
    const time = document.createElement("span");
    time.className = "c-time";
    time.textContent = shortTime(item.ts);
    const source = document.createElement("span");
    source.className = "c-source";
    source.textContent = item.source ?? "";
    const level = document.createElement("span");
    level.className = "c-level";
    level.textContent = item.level ?? "";
    row.append(time, source, level);
    if (this.columns.length > 0) {
      const fields = fieldsOf(item);
      for (const name of this.columns) {
        const cell = document.createElement("span");
        cell.className = "c-field";
        cell.textContent = fieldValue(fields, name);
        row.append(cell);
      }
    }
    const text = document.createElement("span");
    text.className = "c-line";
    text.textContent = item.line;
    row.append(text);
    this.rows.set(row, item);
    return row;
  }

  #scrolled() {
    const list = this.list;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 4;
    if (this.programmatic) {
      this.programmatic = false;
      if (atBottom) return;
    }
    if (!atBottom && !this.paused) this.pause();
    else if (atBottom && this.paused) this.resume();
  }

  pause() {
    if (this.paused) return;
    this.paused = true;
    this.stats.paused = true;
    this.stats.newWhilePaused = 0;
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.#publish(true);
  }

  resume() {
    this.paused = false;
    this.stats.paused = false;
    this.stats.newWhilePaused = 0;
    this.#flush();
    this.programmatic = true;
    this.list.scrollTop = this.list.scrollHeight;
    this.#publish(true);
  }

  /** The line of a row element, or undefined (markers). */
  itemOf(row) {
    return row === null ? undefined : this.rows.get(row);
  }

  select(row) {
    this.selected?.classList.remove("sel");
    this.selected = row;
    if (row !== null) {
      row.classList.add("sel");
      row.scrollIntoView({ block: "nearest" });
    }
    this.#publish(true);
  }

  /** Shows (or hides) a row's fields under it, with a button per field to make it a column. */
  toggleDetail(row, onColumn) {
    const open = row.querySelector(".detail");
    if (open !== null) {
      open.remove();
      return;
    }
    const item = this.itemOf(row);
    if (item === undefined) return;
    const detail = document.createElement("div");
    detail.className = "detail";
    const fields = fieldsOf(item);
    const entries = Object.entries({
      source: item.source,
      host: item.host,
      time: new Date(item.ts).toISOString(),
      ...(item.level ? { level: item.level } : {}),
    });
    const table = document.createElement("dl");
    const add = (key, value, column) => {
      const dt = document.createElement("dt");
      dt.textContent = key;
      const dd = document.createElement("dd");
      dd.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
      if (column) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "small";
        button.textContent = this.columns.includes(key) ? "remove column" : "as column";
        button.addEventListener("click", (e) => {
          e.stopPropagation();
          onColumn(key);
        });
        dd.append(" ", button);
      }
      table.append(dt, dd);
    };
    for (const [key, value] of entries) add(key, value, false);
    if (fields === undefined) add("fields", "none (a plain line)", false);
    else for (const [key, value] of Object.entries(fields)) add(key, value ?? "", true);
    detail.append(table);
    row.append(detail);
  }

  #publish(now) {
    if (now) {
      clearTimeout(this.statsTimer);
      this.statsTimer = 0;
      this.onStats({ ...this.stats, selected: this.selected !== null });
      return;
    }
    if (this.statsTimer !== 0) return;
    this.statsTimer = setTimeout(() => {
      this.statsTimer = 0;
      this.onStats({ ...this.stats, selected: this.selected !== null });
    }, 250);
  }
}

/** The filters form; its inputs start from the URL and apply on submit (Enter). */
function TailFilters({ params }) {
  const [source, setSource] = useState(params.get("source") ?? "");
  const [level, setLevel] = useState(params.get("level") ?? "");
  const [grep, setGrep] = useState(params.get("grep") ?? "");
  const [regex, setRegex] = useState(params.get("regex") ?? "");
  const [fields, setFields] = useState(fieldText(fieldFilters(params)));
  const [cols, setCols] = useState(params.get("cols") ?? "");
  const apply = (e, changes = {}) => {
    e?.preventDefault();
    const next = { source, level, grep, regex, cols, ...changes };
    const out = new URLSearchParams();
    for (const [key, value] of Object.entries(next)) if (value) out.set(key, value);
    for (const [name, value] of parseFieldText(fields)) out.append(`field.${name}`, value);
    navigate("tail", out);
  };
  return html`
    <form class="filters" onSubmit=${apply} aria-label="Live tail filters">
      <label>Source <input name="source" value=${source} placeholder="glob, e.g. web*"
          onInput=${(e) => setSource(e.target.value)} /></label>
      <label>Level <select name="level" value=${level}
          onChange=${(e) => {
            setLevel(e.target.value);
            apply(undefined, { level: e.target.value });
          }}>
          <option value="">any</option>
          ${LEVELS.map((l) => html`<option value=${l}>${l} and above</option>`)}
        </select></label>
      <label>Text <input name="grep" value=${grep} placeholder="substring"
          onInput=${(e) => setGrep(e.target.value)} /></label>
      <label>Regex <input name="regex" value=${regex} placeholder="RE2, e.g. ^GET .* 5\\d\\d"
          onInput=${(e) => setRegex(e.target.value)} /></label>
      <label>Fields <input name="fields" value=${fields} placeholder="service=billing, code=500"
          onInput=${(e) => setFields(e.target.value)} /></label>
      <label>Columns <input name="cols" value=${cols} placeholder="field names, comma-separated"
          onInput=${(e) => setCols(e.target.value)} /></label>
      <button type="submit">Apply</button>
    </form>
  `;
}

function stateText(stats) {
  if (stats.state === "live") return "live";
  if (stats.state === "connecting") return "connecting";
  if (stats.state === "error") return `stopped: ${stats.message}`;
  return `disconnected (${stats.message})`;
}

/** The live tail view. */
export function TailView({ params }) {
  const listRef = useRef(null);
  const engine = useRef(null);
  const [stats, setStats] = useState({ state: "connecting", received: 0, shown: 0, dropped: 0 });
  const [copied, setCopied] = useState("");
  const query = tailQuery(params);
  const columns = columnsOf(params);
  const colsKey = columns.join(",");

  useEffect(() => {
    engine.current = new TailEngine(listRef.current, setStats);
    return () => engine.current.destroy();
  }, []);
  useEffect(() => {
    engine.current.start(query, columns);
  }, [query, colsKey]);

  const toggleColumn = (name) => {
    const next = columns.includes(name) ? columns.filter((c) => c !== name) : [...columns, name];
    const out = new URLSearchParams(params);
    if (next.length === 0) out.delete("cols");
    else out.set("cols", next.join(","));
    navigate("tail", out);
  };
  const selectedItem = () => engine.current?.itemOf(engine.current.selected);
  const copy = async () => {
    const item = selectedItem();
    if (item === undefined) return;
    setCopied((await copyText(item.line)) ? "Copied" : "Copy failed");
    setTimeout(() => setCopied(""), 1500);
  };
  const openInSearch = () => {
    const item = selectedItem();
    if (item === undefined) return;
    const ts = Number(item.ts);
    navigate("search", {
      q: item.line.slice(0, 500),
      source: item.source,
      from: new Date(ts - 60_000).toISOString(),
      to: new Date(ts + 60_000).toISOString(),
      open: "first",
    });
  };
  const expand = () => {
    const row = engine.current?.selected;
    if (row) engine.current.toggleDetail(row, toggleColumn);
  };
  const onClick = (e) => {
    const row = e.target.closest(".row");
    if (row === null || row.classList.contains("marker") || e.target.closest(".detail")) return;
    if (engine.current.selected === row) expand();
    else engine.current.select(row);
  };
  const onKey = (e) => {
    const eng = engine.current;
    const move = (row) => {
      while (row !== null && row.classList.contains("marker")) {
        row = e.key === "ArrowUp" ? row.previousElementSibling : row.nextElementSibling;
      }
      if (row !== null) eng.select(row);
    };
    if (e.key === "ArrowDown") {
      move(eng.selected?.nextElementSibling ?? listRef.current.firstElementChild);
    } else if (e.key === "ArrowUp") {
      move(eng.selected?.previousElementSibling ?? listRef.current.lastElementChild);
    } else if (e.key === "Enter") expand();
    else if (e.key === "c") copy();
    else if (e.key === "s") openInSearch();
    else if (e.key === "p") eng.paused ? eng.resume() : eng.pause();
    else if (e.key === "End") eng.resume();
    else if (e.key === "Escape") eng.select(null);
    else return;
    e.preventDefault();
  };

  return html`
    <section class="view tail" aria-label="Live tail">
      <${TailFilters} key=${query + "|" + colsKey} params=${params} />
      <div class="tailbar">
          <span class=${`state st-${stats.state}`} role="status">${stateText(stats)}</span>
          <span class="counts" aria-live="off">
            ${formatNumber(stats.received)} lines received; showing the last ${formatNumber(
              stats.shown,
            )}
            ${stats.dropped > 0
              ? html`; <strong>${formatNumber(stats.dropped)} dropped</strong>`
              : ""}
          </span>
          ${columns.length > 0
            ? html`<span class="muted">columns: ${columns.join(", ")}</span>`
            : ""}
          <span class="spacer"></span>
          ${stats.selected
            ? html`
              <span class="actions">
                <button type="button" onClick=${expand} title="Enter">Fields</button>
                <button type="button" onClick=${copy} title="c">${copied || "Copy"}</button>
                <button type="button" onClick=${openInSearch} title="s">Open in search</button>
              </span>
            `
            : ""}
          <button type="button" class="pause" onClick=${() =>
            stats.paused ? engine.current.resume() : engine.current.pause()} title="p">
            ${stats.paused ? "Resume" : "Pause"}
          </button>
        </div>
      <div class="paused" role="status" hidden=${!stats.paused}>
          Paused, ${formatNumber(stats.newWhilePaused ?? 0)} new lines.
          <button type="button" class="resume" onClick=${() =>
            engine.current.resume()}>Resume</button>
        </div>
      <div class="lines" key="lines" ref=${listRef} tabindex="0" role="log" aria-live="off"
        aria-label="Lines; arrows select, Enter shows fields, c copies, s opens in search, p pauses"
        onClick=${onClick} onKeyDown=${onKey}></div>
    </section>
  `;
}
