// The live tail: lines as they arrive, newest at the bottom, filtered on the server.
//
// The list is drawn without Preact, and only the rows on screen exist: lines arrive at up to
// tens of thousands a second, so they are queued as they are read, and once per animation frame
// the last WINDOW of them are kept (everything else is counted) and the few dozen rows in view
// are filled in (a tall spacer gives the scroll bar its length). Scrolling up (or Pause) pauses:
// new lines wait (the last WINDOW of them) and are counted in "paused, N new lines" until
// Resume. The stream is the SSE tail read with fetch (EventSource cannot send the token); after
// a network cut it reconnects with the last cursor as Last-Event-ID, and the server tells how
// many lines were missed.

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

/** `text` cut or padded to `width` characters. */
function pad(text, width) {
  return text.length > width ? text.slice(0, width - 1) + "…" : text.padEnd(width);
}

function shortTime(ts) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.` +
    pad(date.getMilliseconds(), 3);
}

/** Characters of a line shown in its row. */
const MAX_ROW_CHARS = 2000;
/** Height of a row, in CSS pixels (the style sheet's `.lines .row`). */
const ROW = 18;

/** The tail's connection and the list it fills; independent of Preact. */
class TailEngine {
  /**
   * @param {HTMLElement} list the scrolling element the rows go into.
   * @param {(stats: object) => void} onStats called when the counters change (throttled).
   * @param {(item: object | null) => void} onSelect called when the selected line changes.
   */
  constructor(list, onStats, onSelect) {
    this.list = list;
    this.onStats = onStats;
    this.onSelect = onSelect;
    this.items = [];
    this.pending = [];
    this.paused = false;
    this.frame = 0;
    this.statsTimer = 0;
    this.columns = [];
    this.selected = null;
    this.spacer = document.createElement("div");
    this.spacer.className = "rows-height";
    this.pool = document.createElement("div");
    this.pool.className = "rows";
    list.replaceChildren(this.spacer, this.pool);
    this.viewHeight = list.clientHeight;
    this.resize = new ResizeObserver(() => {
      this.viewHeight = list.clientHeight;
      this.#schedule();
    });
    this.resize.observe(list);
    this.reset();
    // Only the user's own scrolling pauses (the list's own moves to the bottom never do): a wheel
    // or touch upwards, a press on the scroll bar, or keys (see TailView).
    this.onScroll = () => this.#scrolled();
    this.onWheel = (e) => e.deltaY < 0 && this.#scrollable() && this.pause();
    this.onPointer = (e) => e.target === list && this.#scrollable() && this.pause();
    this.onTouch = () => this.#scrollable() && this.pause();
    list.addEventListener("scroll", this.onScroll, { passive: true });
    list.addEventListener("wheel", this.onWheel, { passive: true });
    list.addEventListener("pointerdown", this.onPointer);
    list.addEventListener("touchmove", this.onTouch, { passive: true });
  }

  #scrollable() {
    return this.items.length * ROW > this.list.clientHeight;
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
    this.items = [];
    this.paused = false;
    this.select(null);
    this.reset();
    this.#render();
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
    this.resize.disconnect();
    this.list.removeEventListener("scroll", this.onScroll);
    this.list.removeEventListener("wheel", this.onWheel);
    this.list.removeEventListener("pointerdown", this.onPointer);
    this.list.removeEventListener("touchmove", this.onTouch);
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
    if (!this.paused) this.#schedule();
    this.#publish(false);
  }

  #schedule() {
    if (this.frame === 0) this.frame = requestAnimationFrame(() => this.#frame());
  }

  /** Once per frame: the queued lines join the window (unless paused), and the view is drawn. */
  #frame() {
    this.frame = 0;
    if (!this.paused && this.pending.length > 0) {
      const items = this.items;
      for (const item of this.pending) items.push(item);
      this.pending = [];
      if (items.length > WINDOW) items.splice(0, items.length - WINDOW);
      this.stats.shown = items.length;
      this.#publish(false);
    }
    this.#render();
  }

  /** Fills the rows in view; while following, keeps the view at the bottom. */
  #render() {
    // Read fresh: the banners above the list change its height before any resize event.
    this.viewHeight = this.list.clientHeight;
    const total = this.items.length;
    const height = total * ROW;
    this.spacer.style.height = `${height}px`;
    let top;
    if (this.paused) top = this.list.scrollTop;
    else {
      top = Math.max(0, height - this.viewHeight);
      if (this.list.scrollTop !== top) this.list.scrollTop = top;
    }
    const first = Math.min(Math.floor(top / ROW), Math.max(0, total - 1));
    const count = Math.max(0, Math.min(total - first, Math.ceil(this.viewHeight / ROW) + 1));
    this.pool.style.transform = `translateY(${first * ROW}px)`;
    const pool = this.pool;
    while (pool.childElementCount < count) pool.append(newRow());
    while (pool.childElementCount > count) pool.lastElementChild.remove();
    let row = pool.firstElementChild;
    for (let i = 0; i < count; i++, row = row.nextElementSibling) {
      this.#fill(row, this.items[first + i], first + i);
    }
  }

  #fill(row, item, index) {
    const selected = item === this.selected;
    row.dataset.index = String(index);
    if (row.item === item && row.selected === selected) return;
    row.item = item;
    row.selected = selected;
    const [head, text] = row.children;
    if (item.dropped !== undefined || item.note !== undefined) {
      row.className = "row marker";
      head.textContent = "";
      text.textContent = item.note ??
        `${formatNumber(item.dropped)} lines skipped here (dropped for this tail)`;
      return;
    }
    row.className = `row${item.level ? ` lv-${item.level}` : ""}${selected ? " sel" : ""}`;
    let meta = `${shortTime(item.ts)} ${pad(item.source ?? "", 10)} ${pad(item.level ?? "", 5)}`;
    if (this.columns.length > 0) {
      const fields = fieldsOf(item);
      for (const name of this.columns) meta += ` ${pad(fieldValue(fields, name), 16)}`;
    }
    head.textContent = meta + " ";
    // A row shows one line's start: shaping a megabyte of text would hold a frame (the selected
    // line's panel has it whole).
    text.textContent = item.line.length > MAX_ROW_CHARS
      ? `${item.line.slice(0, MAX_ROW_CHARS)}…`
      : item.line;
  }

  #scrolled() {
    const list = this.list;
    this.viewHeight = list.clientHeight;
    // Paused, the user scrolled back to the bottom: follow again.
    const atBottom = list.scrollTop + this.viewHeight >= this.items.length * ROW - 4;
    if (atBottom && this.paused && this.#scrollable()) this.resume();
    else this.#schedule();
  }

  pause() {
    if (this.paused) return;
    this.paused = true;
    this.stats.paused = true;
    this.stats.newWhilePaused = 0;
    this.#publish(true);
  }

  resume() {
    this.paused = false;
    this.stats.paused = false;
    this.stats.newWhilePaused = 0;
    this.#frame();
    this.#publish(true);
  }

  /** The line of a row element, or undefined (markers). */
  itemAt(row) {
    const item = row === null ? undefined : this.items[Number(row.dataset.index)];
    return item === undefined || item.line === undefined ? undefined : item;
  }

  select(item) {
    this.selected = item;
    this.onSelect(item);
    this.#schedule();
  }

  /** Selects the line `step` rows from the selected one (or the last), and shows it; pauses. */
  move(step) {
    this.pause();
    const items = this.items;
    let index = this.selected === null ? items.length : items.indexOf(this.selected);
    do index += step; while (index >= 0 && index < items.length && items[index].line === undefined);
    if (index < 0 || index >= items.length) return;
    this.select(items[index]);
    const top = this.list.scrollTop;
    if (index * ROW < top) this.list.scrollTop = index * ROW;
    else if ((index + 1) * ROW > top + this.viewHeight) {
      this.list.scrollTop = (index + 1) * ROW - this.viewHeight;
    }
  }

  #publish(now) {
    if (now) {
      clearTimeout(this.statsTimer);
      this.statsTimer = 0;
      this.onStats({ ...this.stats });
      return;
    }
    if (this.statsTimer !== 0) return;
    this.statsTimer = setTimeout(() => {
      this.statsTimer = 0;
      this.onStats({ ...this.stats });
    }, 250);
  }
}

function newRow() {
  const row = document.createElement("div");
  const head = document.createElement("span");
  head.className = "c-meta";
  const text = document.createElement("span");
  text.className = "c-line";
  row.append(head, text);
  return row;
}

/** The selected line: its fields (each can become a column), copy, open in search. */
function LineDetail({ item, columns, onColumn, onCopy, copied, onSearch, onClose }) {
  const fields = fieldsOf(item);
  const base = {
    time: new Date(item.ts).toISOString(),
    source: item.source,
    host: item.host,
    ...(item.level ? { level: item.level } : {}),
  };
  const show = (v) => (v !== null && typeof v === "object" ? JSON.stringify(v) : String(v ?? ""));
  return html`
    <div class="detail" role="region" aria-label="Selected line">
      <div class="tailbar">
        <strong>Selected line</strong>
        <button type="button" onClick=${onCopy} title="c">${copied || "Copy"}</button>
        <button type="button" onClick=${onSearch} title="s">Open in search</button>
        <span class="spacer"></span>
        <button type="button" onClick=${onClose} title="Escape">Close</button>
      </div>
      <pre class="line-text">${item.line.length > 100_000
        ? `${item.line.slice(0, 100_000)}… (${
          formatNumber(item.line.length - 100_000)
        } more characters: Copy takes them all)`
        : item.line}</pre>
      <dl>
          ${Object.entries(base).map(([k, v]) =>
            html`
              <dt>${k}</dt>
              <dd>${show(v)}</dd>
            `
          )}
          ${fields === undefined
            ? html`
              <dt>fields</dt>
              <dd class="muted">none (a plain line)</dd>
            `
            : Object.entries(fields).map(([k, v]) =>
              html`
                <dt>${k}</dt>
                <dd>${show(v)}
                          <button type="button" class="small" onClick=${() => onColumn(k)}>
                            ${columns.includes(k) ? "remove column" : "as column"}</button></dd>
              `
            )}
        </dl>
    </div>
  `;
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
  const [selected, setSelected] = useState(null);
  const [detail, setDetail] = useState(true);
  const [copied, setCopied] = useState("");
  const query = tailQuery(params);
  const columns = columnsOf(params);
  const colsKey = columns.join(",");

  useEffect(() => {
    engine.current = new TailEngine(listRef.current, setStats, setSelected);
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
  const copy = async () => {
    if (selected === null) return;
    setCopied((await copyText(selected.line)) ? "Copied" : "Copy failed");
    setTimeout(() => setCopied(""), 1500);
  };
  const openInSearch = () => {
    if (selected === null) return;
    const ts = Number(selected.ts);
    navigate("search", {
      q: selected.line.slice(0, 500),
      source: selected.source,
      from: new Date(ts - 60_000).toISOString(),
      to: new Date(ts + 60_000).toISOString(),
      open: "first",
    });
  };
  const onClick = (e) => {
    const item = engine.current.itemAt(e.target.closest(".row"));
    if (item === undefined) return;
    if (item === selected) setDetail(!detail);
    else {
      // A line picked stays put: the tail pauses until Resume.
      setDetail(true);
      engine.current.pause();
      engine.current.select(item);
    }
  };
  const onKey = (e) => {
    const eng = engine.current;
    if (e.key === "ArrowDown") eng.move(1);
    else if (e.key === "ArrowUp") eng.move(-1);
    else if (e.key === "Enter") setDetail(!detail);
    else if (e.key === "c") copy();
    else if (e.key === "s") openInSearch();
    else if (e.key === "p") eng.paused ? eng.resume() : eng.pause();
    else if (e.key === "End") eng.resume();
    else if (e.key === "PageUp" || e.key === "Home") {
      eng.pause();
      return; // the list scrolls as usual
    } else if (e.key === "Escape") eng.select(null);
    else return;
    e.preventDefault();
  };

  return html`<section class="view tail" aria-label="Live tail">
    <${TailFilters} key=${query + "|" + colsKey} params=${params} />
    <div class="tailbar">
      <span class=${`state st-${stats.state}`} role="status">${stateText(stats)}</span>
      <span class="counts" aria-live="off">
        ${formatNumber(stats.received)} lines received; showing the last ${
    formatNumber(stats.shown)
  }
        ${stats.dropped > 0 ? html`; <strong>${formatNumber(stats.dropped)} dropped</strong>` : ""}
      </span>
      ${columns.length > 0 ? html`<span class="muted">columns: ${columns.join(", ")}</span>` : ""}
      <span class="spacer"></span>
      <button type="button" class="pause" title="p" onClick=${() =>
    stats.paused ? engine.current.resume() : engine.current.pause()}>
        ${stats.paused ? "Resume" : "Pause"}
      </button>
    </div>
    <div class="paused" role="status" hidden=${!stats.paused}>
      Paused, ${formatNumber(stats.newWhilePaused ?? 0)} new lines.
      <button type="button" class="resume" onClick=${() => engine.current.resume()}>Resume</button>
    </div>
    <div class="lines" key="lines" ref=${listRef} tabindex="0" role="log" aria-live="off"
      aria-label="Lines; arrows select, Enter shows fields, c copies, s opens in search, p pauses"
      onClick=${onClick} onKeyDown=${onKey}></div>
    ${
    selected !== null && detail
      ? html`
        <${LineDetail} key="detail" item=${selected}
          columns=${columns} onColumn=${toggleColumn} onCopy=${copy} copied=${copied}
          onSearch=${openInSearch} onClose=${() => engine.current.select(null)} />
      `
      : ""
  }
  </section>`;
}
