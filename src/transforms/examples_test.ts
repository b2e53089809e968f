import assert from "node:assert/strict";
import { parseServerConfig } from "../config/load.ts";
import { runRules } from "../cli/rules.ts";

const EXAMPLES = new URL("./examples/", import.meta.url);

/** Each example: its config, sample, the source its comment names, and the expected output. */
const CASES = [
  { name: "json_app", source: "app" },
  { name: "access_log", source: "nginx" },
  { name: "logfmt", source: "worker" },
];

for (const { name, source } of CASES) {
  Deno.test(`example ${name}.yaml: a valid serve config; rules test prints ${name}.out as written`, async () => {
    const file = new URL(`${name}.yaml`, EXAMPLES).pathname;
    const yaml = await Deno.readTextFile(file);
    // The command its comment gives, exactly.
    assert.ok(
      yaml.includes(`logboom rules test -config ${name}.yaml -source ${source} < ${name}.log`),
    );
    parseServerConfig(yaml, file);
    const out: string[] = [];
    const err: string[] = [];
    const code = await runRules(["test", "-config", file, "-source", source], {
      stdin: (await Deno.open(new URL(`${name}.log`, EXAMPLES))).readable,
      out: (line) => out.push(line),
      err: (line) => err.push(line),
    });
    assert.equal(code, 0, err.join("\n"));
    const expected = await Deno.readTextFile(new URL(`${name}.out`, EXAMPLES));
    assert.deepEqual(out, expected.trimEnd().split("\n"));
  });
}

Deno.test("every example in examples/ has a case here", async () => {
  const configs = [];
  for await (const entry of Deno.readDir(EXAMPLES)) {
    if (entry.name.endsWith(".yaml")) configs.push(entry.name.slice(0, -5));
  }
  assert.deepEqual(configs.sort(), CASES.map((c) => c.name).sort());
});
