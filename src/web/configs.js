import { html } from "./lib.js";

export function ConfigsView() {
  return html`
    <section class="view">
      <p>Coming.</p>
    </section>
  `;
}
