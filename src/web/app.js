// The control centre's shell: navigation, light/dark, the token, and the view the URL names.

import { useEffect, useState } from "./vendor/hooks.js";
import { getToken, html, render, routeHref, setToken, tokenWanted, useRoute } from "./lib.js";
import { TailView } from "./tail.js";
import { SearchView } from "./search.js";
import { FleetView } from "./fleet.js";
import { ConfigsView } from "./configs.js";
import { RulesView } from "./rules.js";
import { AlertsView } from "./alerts.js";

const VIEWS = [
  { id: "tail", title: "Live tail", view: TailView },
  { id: "search", title: "Search", view: SearchView },
  { id: "fleet", title: "Sources & fleet", view: FleetView },
  { id: "configs", title: "Agent configs", view: ConfigsView },
  { id: "rules", title: "Rules", view: RulesView },
  { id: "alerts", title: "Alerts", view: AlertsView },
];

// ---- light and dark: the system's choice, or the one picked here (kept in localStorage) ------

const THEME_KEY = "logboom.theme";

function applyTheme(theme) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function ThemeToggle() {
  const [theme, setTheme] = useState(localStorage.getItem(THEME_KEY) ?? "auto");
  useEffect(() => applyTheme(theme), [theme]);
  const next = { auto: "light", light: "dark", dark: "auto" }[theme] ?? "auto";
  const pick = () => {
    if (next === "auto") localStorage.removeItem(THEME_KEY);
    else localStorage.setItem(THEME_KEY, next);
    setTheme(next);
  };
  return html`
    <button type="button" class="theme" onClick=${pick}
      title="Colours: ${theme} (click for ${next})"
      aria-label="Colours: ${theme}; switch to ${next}">
        ${theme === "dark" ? "Dark" : theme === "light" ? "Light" : "Auto"}
      </button>
  `;
}

// ---- the token: asked once, kept for the browser session -------------------------------------

function Login() {
  const [value, setValue] = useState("");
  const [problem, setProblem] = useState("");
  const submit = async (e) => {
    e.preventDefault();
    if (value === "") return;
    setProblem("");
    // Checked on a route that needs it, without the token ever being in a URL.
    const res = await fetch("/api/v1/sources", {
      headers: { authorization: `Bearer ${value}` },
      cache: "no-store",
    }).catch((err) => ({ ok: false, status: 0, statusText: String(err) }));
    if (res.ok) setToken(value);
    else if (res.status === 401) setProblem("That token is not the server's.");
    else setProblem(`The server answered ${res.status} ${res.statusText}`);
  };
  return html`
    <main class="login">
      <form onSubmit=${submit} aria-label="Token">
          <h1>logboom</h1>
          <p>This server wants its API token. It is kept for this browser session only.</p>
          <label>Token <input type="password" name="token" autocomplete="current-password"
            autofocus value=${value} onInput=${(e) => setValue(e.target.value)} /></label>
          <button type="submit">Sign in</button>
          ${problem ? html`<p class="notice error" role="alert">${problem}</p>` : ""}
        </form>
    </main>
  `;
}

function useToken() {
  const [token, set] = useState(getToken);
  useEffect(() => {
    const update = () => set(getToken());
    globalThis.addEventListener("logboom:token", update);
    return () => globalThis.removeEventListener("logboom:token", update);
  }, []);
  return token;
}

function App() {
  const token = useToken();
  const route = useRoute();
  const current = VIEWS.find((v) => v.id === route.view) ?? VIEWS[0];
  useEffect(() => {
    document.title = `${current.title} · logboom`;
  }, [current.title]);
  if (tokenWanted() && token === "") return html`<${Login} />`;
  const View = current.view;
  return html`
    <div class="shell">
      <header>
          <a class="brand" href="#/tail">logboom</a>
          <nav aria-label="Views">
            ${VIEWS.map((v) =>
              html`
                <a href=${routeHref(v.id)}
                  aria-current=${v.id === current.id ? "page" : undefined}>${v.title}</a>
              `
            )}
          </nav>
          <span class="spacer"></span>
          <${ThemeToggle} />
          ${tokenWanted()
            ? html`<button type="button" onClick=${() => setToken("")}>Sign out</button>`
            : ""}
        </header>
      <main>
        <${View} key=${current.id} params=${route.params} />
      </main>
    </div>
  `;
}

applyTheme(localStorage.getItem(THEME_KEY));
render(html`<${App} />`, document.getElementById("app"));
