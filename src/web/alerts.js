import { html } from "./lib.js";

export function AlertsView() {
  return html`
    <section class="view">
      <p>Coming.</p>
    </section>
  `;
}
