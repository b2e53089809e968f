// The web page's npm packages, imported so that Deno fetches them (checked against deno.lock)
// before scripts/vendor_web.ts resolves their files. Their type declarations are replaced by an
// empty one: Preact's bring the DOM library, which clashes with Deno's types wherever this file
// is in a type-checked graph. Preact and htm touch no DOM when loaded; uplot's CSS is text.
// @ts-types="./_no_types.d.ts"
import "preact";
// @ts-types="./_no_types.d.ts"
import "preact/hooks";
// @ts-types="./_no_types.d.ts"
import "htm";
import "uplot/dist/uPlot.min.css" with { type: "text" };
