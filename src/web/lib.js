// Shared pieces of the page: rendering (Preact + htm), the token, API calls, the view's state
// in the URL, stream readers (SSE over fetch, NDJSON) and formatting.

import { h, render } from "./vendor/preact.js";
import { useEffect, useRef, useState } from "./vendor/hooks.js";
import htm from "./vendor/htm.js";

/** JSX-like templates without a build step: html`<div class=${c}>${text}</div>`. */
export const html = htm.bind(h);
export { render };

// ---- the token --------------------------------------------------------------------------------

const TOKEN_KEY = "logboom.token";

/** Whether the server wants a token (it says so in the page; the token itself is never there). */
export function tokenWanted() {
  return document.querySelector('meta[name="logboom-auth"]')?.content === "token";
}

/** The token given for this browser session, or "" (kept in sessionStorage, never in a URL). */
export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function setToken(token) {
  if (token === "") sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
  globalThis.dispatchEvent(new Event("logboom:token"));
}

/** The headers every API call carries: the token as a bearer header. */
export function authHeaders(extra = {}) {
  const token = getToken();
  return token === "" ? { ...extra } : { ...extra, authorization: `Bearer ${token}` };
}

/**
 * Calls the API. A 401 forgets the token (the page asks again). Rejects only on a network
 * error or an abort, as fetch does.
 */
export async function api(path, options = {}) {
  const { headers = {}, ...rest } = options;
  const res = await fetch(path, { ...rest, headers: authHeaders(headers), cache: "no-store" });
  if (res.status === 401 && tokenWanted()) setToken("");
  return res;
}

/**
 * GETs (or sends) JSON: `{ status, data }` on 2xx, `{ status, error }` otherwise (the server's
 * `{"error"}` text, or the status text), `{ status: 0, error }` on a network error. Never
 * rejects, except on an abort.
 */
export async function getJson(path, options = {}) {
  let res;
  try {
    res = await api(path, options);
  } catch (err) {
    if (err?.name === "AbortError") throw err;
    return { status: 0, error: `Cannot reach the server: ${err?.message ?? err}` };
  }
  let body;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  if (res.ok) return { status: res.status, data: body };
  return { status: res.status, error: body?.error ?? `${res.status} ${res.statusText}`, body };
}

/** Sends a JSON body with `method`; the answer as {@link getJson} gives it. */
export function sendJson(path, method, value, options = {}) {
  return getJson(path, {
    ...options,
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(value),
  });
}

// ---- the view's state, in the URL's hash: #/view?key=value ----------------------------------

/** The view and its parameters, read from `location.hash`. */
export function currentRoute() {
  const hash = location.hash.replace(/^#\/?/, "");
  const q = hash.indexOf("?");
  const view = (q < 0 ? hash : hash.slice(0, q)) || "tail";
  const params = new URLSearchParams(q < 0 ? "" : hash.slice(q + 1));
  return { view, params };
}

/** The hash of a view with parameters (empty values left out). */
export function routeHref(view, params = {}) {
  const search = new URLSearchParams();
  const entries = params instanceof URLSearchParams ? params.entries() : Object.entries(params);
  for (const [key, value] of entries) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) { for (const v of value) search.append(key, v); }
    else search.append(key, String(value));
  }
  const text = search.toString();
  return `#/${view}${text === "" ? "" : `?${text}`}`;
}

/**
 * Goes to a view: a new history entry (`replace: false`, the default) so Back returns, or the
 * same one replaced (typing in a filter).
 */
export function navigate(view, params = {}, { replace = false } = {}) {
  const href = routeHref(view, params);
  if (href === location.hash) return;
  if (replace) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  globalThis.dispatchEvent(new Event("logboom:route"));
}

/** The current route, re-rendered when it changes (links, Back, navigate). */
export function useRoute() {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const update = () => setRoute(currentRoute());
    globalThis.addEventListener("hashchange", update);
    globalThis.addEventListener("popstate", update);
    globalThis.addEventListener("logboom:route", update);
    return () => {
      globalThis.removeEventListener("hashchange", update);
      globalThis.removeEventListener("popstate", update);
      globalThis.removeEventListener("logboom:route", update);
    };
  }, []);
  return route;
}

/** The `field.NAME=VALUE` filters of `params`, as pairs. */
export function fieldFilters(params) {
  const out = [];
  for (const [key, value] of params) if (key.startsWith("field.")) out.push([key.slice(6), value]);
  return out;
}

/** `name=value, other=x` typed in a box, as pairs (blank parts skipped). */
export function parseFieldText(text) {
  const out = [];
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    out.push([part.slice(0, eq).trim(), part.slice(eq + 1).trim()]);
  }
  return out;
}

export function fieldText(pairs) {
  return pairs.map(([k, v]) => `${k}=${v}`).join(", ");
}

// ---- polling and data --------------------------------------------------------------------------

/**
 * GETs `path` now and every `ms` while the page is visible: `{ status, data, error }` of the
 * last answer (`undefined` before the first).
 */
export function usePoll(path, ms) {
  const [result, setResult] = useState(undefined);
  useEffect(() => {
    if (path === undefined) return;
    const stop = new AbortController();
    let timer;
    const tick = async () => {
      if (document.visibilityState !== "hidden") {
        try {
          setResult(await getJson(path, { signal: stop.signal }));
        } catch {
          return; // aborted: the view went away
        }
      }
      timer = setTimeout(tick, ms);
    };
    tick();
    return () => {
      stop.abort();
      clearTimeout(timer);
    };
  }, [path, ms]);
  return result;
}

// ---- streams -----------------------------------------------------------------------------------

/**
 * Reads a Server-Sent Events body (fetch streaming: EventSource cannot send the token as a
 * header). Calls `onEvent({ id, event, data })` for each event; resolves when the body ends.
 */
export async function readSse(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  let id;
  let event;
  let data = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += value;
      let start = 0;
      for (;;) {
        const nl = rest.indexOf("\n", start);
        if (nl < 0) break;
        let line = rest.slice(start, nl);
        start = nl + 1;
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (data.length > 0) onEvent({ id, event: event ?? "message", data: data.join("\n") });
          event = undefined;
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (name === "data") data.push(value);
        else if (name === "id") id = value;
        else if (name === "event") event = value;
      }
      rest = rest.slice(start);
    }
  } finally {
    reader.releaseLock();
  }
}

/** Reads an NDJSON body, calling `onObject` with each parsed line; resolves at its end. */
export async function readNdjson(body, onObject) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += value;
      const lines = rest.split("\n");
      rest = lines.pop();
      for (const line of lines) if (line.trim() !== "") onObject(JSON.parse(line));
    }
    if (rest.trim() !== "") onObject(JSON.parse(rest));
  } finally {
    reader.releaseLock();
  }
}

// ---- formatting --------------------------------------------------------------------------------

/** A time (epoch ms or ISO text) as local `YYYY-MM-DD HH:MM:SS.mmm`. */
export function formatTime(value) {
  if (value === undefined || value === null || value === "") return "";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.` +
    pad(date.getMilliseconds(), 3);
}

/** How long ago a time was: `5 s ago`, `3 min ago`. */
export function formatAgo(value, now = Date.now()) {
  if (value === undefined || value === null) return "never";
  const ms = now - new Date(value).getTime();
  if (Number.isNaN(ms)) return String(value);
  if (ms < 1000) return "just now";
  if (ms < 60_000) return `${Math.round(ms / 1000)} s ago`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min ago`;
  if (ms < 86_400_000) return `${Math.round(ms / 3_600_000)} h ago`;
  return `${Math.round(ms / 86_400_000)} d ago`;
}

export function formatBytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

export function formatNumber(n, digits = 0) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "";
  return n.toLocaleString("en-US", { maximumFractionDigits: digits });
}

/** Copies text to the clipboard (with a fallback where the Clipboard API is not allowed). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

// ---- small shared components -------------------------------------------------------------------

/** What a view shows for a failed call: "not available" for a 404, the error otherwise. */
export function Problem({ what, result }) {
  if (result === undefined || result.error === undefined) return null;
  if (result.status === 404) {
    return html`<p class="notice unavailable" role="status">
      ${what} is not available on this server (HTTP 404): it runs an older logboom, or this part
      is turned off.
    </p>`;
  }
  return html`<p class="notice error" role="alert">${what}: ${result.error}</p>`;
}

/** A small line chart of numbers, as SVG (no script in the markup). */
export function Sparkline({ values, width = 120, height = 24, label }) {
  if (!Array.isArray(values) || values.length < 2) return html`<span class="muted">-</span>`;
  const max = Math.max(1, ...values);
  const step = width / (values.length - 1);
  const points = values
    .map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - (v / max) * (height - 2)).toFixed(1)}`)
    .join(" ");
  return html`
    <svg class="spark" width=${width} height=${height} viewBox="0 0 ${width} ${height}"
      role="img" aria-label=${label ?? `peak ${formatNumber(max)}`}>
      <polyline points=${points} fill="none" stroke="currentColor" stroke-width="1.5" />
    </svg>
  `;
}

/** A pretty-printed JSON value in a <pre>. */
export function Json({ value }) {
  return html`<pre class="json">${JSON.stringify(value, null, 2)}</pre>`;
}

/** A ref to the latest value, for callbacks that outlive a render. */
export function useLatest(value) {
  const ref = useRef(value);
  ref.current = value;
  return ref;
}

/** The level names, least to most severe. */
export const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"];
