import { html } from "./lib.js";

export function SearchView() {
  return html`
    <section class="view">
      <p>Coming.</p>
    </section>
  `;
}
