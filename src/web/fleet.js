import { html } from "./lib.js";

export function FleetView() {
  return html`
    <section class="view">
      <p>Coming.</p>
    </section>
  `;
}
