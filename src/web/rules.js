import { html } from "./lib.js";

export function RulesView() {
  return html`
    <section class="view">
      <p>Coming.</p>
    </section>
  `;
}
