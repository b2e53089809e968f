// Processing rules: the running transforms section, and a dry run of rules on sample lines
// (POST /api/v1/rules/test: nothing is stored and the running rules are not touched).

import { useEffect, useState } from "./vendor/hooks.js";
import { getJson, html, Json, Problem, sendJson } from "./lib.js";

const SAMPLE_RULES = `transforms:
  app:
    sources: ["*"]
    steps:
      - type: parse
        format: json
      - type: level
        fields: [level, severity]
`;

function Results({ answer }) {
  const results = answer?.results ?? [];
  return html`
    <table class="rule-results">
      <thead>
        <tr>
          <th class="num">#</th>
          <th>text</th>
          <th>pipelines</th>
          <th>level</th>
          <th>fields</th>
        </tr>
      </thead>
      <tbody>${results.map((r) =>
        html`
          <tr class=${r.dropped ? "dropped" : ""}>
            <td class="num">${r.line}</td>
            <td class="mono">${r.dropped
              ? html`<s>${r.text}</s> <span class="badge failing">dropped</span>`
              : r.text}</td>
            <td>${(r.pipelines ?? []).join(", ")}</td>
            <td>${r.level ?? ""}</td>
            <td class="mono">${r.fields === undefined ? "" : JSON.stringify(r.fields)}</td>
          </tr>
        `
      )}</tbody>
    </table>
  `;
}

/** The rules view. */
export function RulesView() {
  const [running, setRunning] = useState(undefined);
  const [rules, setRules] = useState(undefined);
  const [lines, setLines] = useState(
    '{"level":"error","msg":"card declined","service":"billing"}\nplain line',
  );
  const [source, setSource] = useState("app");
  const [answer, setAnswer] = useState(undefined);
  useEffect(() => {
    const stop = new AbortController();
    getJson("/api/v1/rules", { signal: stop.signal }).then((result) => {
      setRunning(result);
      const transforms = result.data?.transforms;
      setRules((r) => r ?? (transforms ? JSON.stringify({ transforms }, null, 2) : SAMPLE_RULES));
    }).catch(() => {});
    return () => stop.abort();
  }, []);
  const tryRules = async (e) => {
    e.preventDefault();
    const text = rules ?? SAMPLE_RULES;
    // JSON is sent parsed: the server reads YAML text only with --allow-env for the yaml package.
    let body = { config: text, text: lines, source };
    try {
      const doc = JSON.parse(text);
      if (doc !== null && typeof doc === "object" && "transforms" in doc) {
        body = { transforms: doc.transforms, text: lines, source };
      }
    } catch {
      // YAML: sent as text
    }
    setAnswer(await sendJson("/api/v1/rules/test", "POST", body));
  };
  const transforms = running?.data?.transforms;
  return html`<div class="view rules">
    <h2>Running rules</h2>
    <${Problem} what="The running rules" result=${running} />
    ${
    running?.data
      ? transforms === null || transforms === undefined
        ? html`<p class="muted">No transforms section: lines go to the outputs as received.</p>`
        : html`<${Json} value=${transforms} />`
      : ""
  }
    <h2>Dry run</h2>
    <form class="dryrun" onSubmit=${tryRules} aria-label="Dry run">
      <div class="grid2">
        <label>Rules (YAML or JSON with a transforms section)
          <textarea name="rules" rows="14" spellcheck="false" value=${rules ?? ""}
            onInput=${(e) => setRules(e.target.value)}></textarea></label>
        <label>Sample lines, one a line
          <textarea name="lines" rows="14" spellcheck="false" value=${lines}
            onInput=${(e) => setLines(e.target.value)}></textarea></label>
      </div>
      <div class="tailbar">
        <label>Source <input name="source" value=${source} onInput=${(e) =>
    setSource(e.target.value)} /></label>
        <button type="submit" class="primary">Try</button>
      </div>
    </form>
    ${
    answer?.error !== undefined
      ? html`<div class="notice error" role="alert">
      <p>${answer.error}</p>
      ${
        (answer.body?.problems ?? []).length > 0
          ? html`<ul>${
            answer.body.problems.map((p) =>
              html`<li>
        <code>${p.path}</code>: ${p.message}</li>`
            )
          }</ul>`
          : ""
      }
    </div>`
      : ""
  }
    ${answer?.data ? html`<${Results} answer=${answer.data} />` : ""}
  </div>`;
}
