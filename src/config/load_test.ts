import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, loadServerConfig, parseServerConfig } from "./load.ts";

const YAML = `
# one TCP input, the defaults elsewhere
inputs:
  edge: { type: tcp, address: "127.0.0.1:9000", max_line: 64KiB }
sinks:
  file: { type: file, path: "logs/{source}.log", rotate_every: 24h, keep: 7 }
`;

Deno.test("a YAML config and the same in JSON give the same config", () => {
  const fromYaml = parseServerConfig(YAML, "conf/logboom.yaml");
  const fromJson = parseServerConfig(
    JSON.stringify({
      inputs: { edge: { type: "tcp", address: "127.0.0.1:9000", max_line: "64KiB" } },
      sinks: { file: { type: "file", path: "logs/{source}.log", rotate_every: "24h", keep: 7 } },
    }),
    "conf/logboom.json",
  );
  assert.deepEqual(fromYaml, fromJson);
  assert.deepEqual(fromYaml.inputs.edge, {
    type: "tcp",
    address: { hostname: "127.0.0.1", port: 9000 },
    max_line: 65536,
    source: "tcp",
  });
  assert.equal(fromYaml.sinks.file.path, "conf/logs/{source}.log");
  assert.equal(fromYaml.sinks.file.rotate_every, 86_400_000);
});

function problems(text: string, file: string): string[] {
  try {
    parseServerConfig(text, file);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map((p) => `${p.path}|${p.message}`);
  }
  assert.fail("expected a ConfigError");
}

Deno.test("a file that does not parse says where", () => {
  assert.deepEqual(problems("inputs:\n  a: 1\n  a: 2\n", "x.yaml"), [
    "|not valid YAML: Map keys must be unique at line 3, column 3",
  ]);
  const [json] = problems("{ inputs: }", "x.json");
  assert.match(json, /^\|not valid JSON: /);
});

Deno.test("a ConfigError lists every problem under the file's name", () => {
  assert.throws(
    () => parseServerConfig("inputs:\n  tcp: { type: tcp, adress: x }\n", "logboom.yaml"),
    {
      name: "ConfigError",
      message: "logboom.yaml: 2 problems:\n" +
        '  inputs.tcp.adress: unknown key; did you mean "address"?\n' +
        "  sinks: needs a sink of type file, where lines are stored",
    },
  );
});

Deno.test("a config file that cannot be read is one problem naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = join(dir, "nope.yaml");
    await assert.rejects(() => loadServerConfig(missing), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /nope\.yaml: 1 problem:\n {2}cannot be read: /);
      return true;
    });
    await Deno.writeTextFile(join(dir, "ok.yaml"), YAML);
    const config = await loadServerConfig(join(dir, "ok.yaml"));
    assert.equal(config.sinks.file.path, join(dir, "logs/{source}.log"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
