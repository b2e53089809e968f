import assert from "node:assert/strict";
import { expectedPage, PAGE_URL } from "../../scripts/config_docs.ts";
import { parseServerConfig } from "./load.ts";
import { EXAMPLE_URL } from "./reference.ts";
import { INPUTS, SINKS } from "./registry.ts";

Deno.test("docs/config-reference.md is what the key tables make (else: deno task config-docs)", async () => {
  const page = await Deno.readTextFile(PAGE_URL);
  assert.ok(
    page === await expectedPage(),
    "docs/config-reference.md is stale: run `deno task config-docs` and commit the page",
  );
});

Deno.test("the reference's example config is valid and uses every component but those of outside services", async () => {
  const example = await Deno.readTextFile(EXAMPLE_URL);
  const config = parseServerConfig(example, "logboom.yaml");
  const inputs = new Set(Object.values(config.inputs).map((i) => i.type));
  if (config.http.address !== undefined) inputs.add("http");
  assert.deepEqual([...inputs].sort(), Object.keys(INPUTS).sort());
  const sinks = new Set(Object.values(config.sinks).map((s) => s.type));
  const own = Object.entries(SINKS).filter(([, sink]) => sink.service === undefined);
  assert.deepEqual([...sinks].sort(), own.map(([type]) => type).sort());
  assert.ok(own.length < Object.keys(SINKS).length, "nats and postgres are outside services");
});
