import assert from "node:assert/strict";
import { join } from "node:path";
import { runRules } from "../cli/rules.ts";
import { rulesTestRoute } from "../api/rules.ts";

function stdin(text: string): ReadableStream<Uint8Array> {
  return ReadableStream.from([new TextEncoder().encode(text)]);
}

async function rules(args: string[], sample: string) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runRules(args, {
    stdin: stdin(sample),
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  });
  return { code, out: out.map((line) => JSON.parse(line)), err };
}

const CONFIG = `
inputs: { tcp: { type: tcp } }     # not read by rules test
transforms:
  java:
    sources: ["svc-*"]
    steps:
      - { type: multiline, start: "^\\\\d{4}-" }
      - { type: level }
      - { type: filter, action: exclude, level: debug }
`;

Deno.test("rules test: each line's fate, joined events and drops included; a summary on stderr", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "rules.yaml");
    await Deno.writeTextFile(file, CONFIG);
    const sample = "2026-11-22 DEBUG tick\n2026-11-22 ERROR boom\n\tat A.b(A.java:1)\n\n" +
      "2026-11-22 INFO ok\n";
    const { code, out, err } = await rules(["test", "-config", file, "-source", "svc-a"], sample);
    assert.equal(code, 0);
    assert.deepEqual(out, [
      {
        line: 1,
        text: "2026-11-22 DEBUG tick",
        pipelines: ["java"],
        dropped: true,
        dropped_by: "java.steps[2] (filter)",
      },
      {
        line: 2,
        text: "2026-11-22 ERROR boom\\n\tat A.b(A.java:1)",
        pipelines: ["java"],
        dropped: false,
        joined: [3],
        level: "error",
      },
      {
        line: 3,
        text: "\tat A.b(A.java:1)",
        pipelines: ["java"],
        dropped: false,
        joined_into: 2,
      },
      { line: 5, text: "2026-11-22 INFO ok", pipelines: ["java"], dropped: false, level: "info" },
    ]);
    assert.deepEqual(err, [
      "4 lines: 2 stored, 1 dropped, 1 joined into events, 0 did not parse (kept with _parse_error)",
    ]);
    // A source no pipeline takes: lines as received, and a hint.
    const other = await rules(["test", "-config", file], "x\n");
    assert.deepEqual(other.out, [{ line: 1, text: "x", pipelines: [], dropped: false }]);
    assert.match(other.err[0], /No pipeline takes source "tcp".*-source/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rules test: a config with problems, or without transforms, exits 2 naming them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = join(dir, "bad.yaml");
    await Deno.writeTextFile(
      bad,
      "transforms:\n  a:\n    steps: [{ type: level, guess: maybe }]\n",
    );
    const res = await rules(["test", "-config", bad], "");
    assert.equal(res.code, 2);
    assert.match(res.err.join("\n"), /transforms\.a\.steps\[0\]\.guess: must be true or false/);
    const none = join(dir, "none.json");
    await Deno.writeTextFile(none, '{"inputs": {}}');
    const missing = await rules(["test", "-config", none], "");
    assert.equal(missing.code, 2);
    assert.match(missing.err.join("\n"), /transforms: is missing/);
    assert.equal((await rules(["check", "-config", none], "")).code, 2);
    assert.equal((await rules(["test"], "")).code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const post = (body: unknown, method = "POST") =>
  rulesTestRoute(
    new Request("http://localhost/api/v1/rules/test", {
      method,
      body: method === "POST" ? JSON.stringify(body) : undefined,
    }),
  );

Deno.test("POST /api/v1/rules/test: YAML or an object, lines or text; the same results as the command", async () => {
  const res = await post({
    config: CONFIG,
    lines: ["2026-11-22 WARN w", "  more"],
    source: "svc-b",
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    pipelines: ["java"],
    results: [
      {
        line: 1,
        text: "2026-11-22 WARN w\\n  more",
        pipelines: ["java"],
        dropped: false,
        joined: [2],
        level: "warn",
      },
      { line: 2, text: "  more", pipelines: ["java"], dropped: false, joined_into: 1 },
    ],
  });
  const object = await post({
    transforms: { app: { steps: [{ type: "parse", format: "logfmt" }] } },
    text: "a=1 b=2",
  });
  assert.deepEqual((await object.json()).results[0].fields, { a: "1", b: "2" });
});

Deno.test("POST /api/v1/rules/test: bad requests are clear 4xx answers", async () => {
  const problems = await post({ transforms: { app: { steps: [{ type: "nope" }] } }, lines: [] });
  assert.equal(problems.status, 400);
  const body = await problems.json();
  assert.match(body.error, /1 problem/);
  assert.equal(body.problems[0].path, "transforms.app.steps[0].type");
  for (
    const [request, pattern] of [
      [{ lines: ["x"] }, /Give config or transforms/],
      [{ config: "transforms: {}", transforms: {}, lines: [] }, /Give config or transforms/],
      [{ config: "transforms: {}" }, /Give lines \(a list\) or text/],
      [{ config: "transforms: {}", lines: [1] }, /lines must be a list of strings/],
      [{ config: "a: [", lines: [] }, /not valid YAML/],
      [{ config: 5, lines: [] }, /config must be text/],
      [{ config: "transforms: {}", lines: [], source: "" }, /source must be a non-empty/],
    ] as const
  ) {
    const res = await post(request);
    assert.equal(res.status, 400);
    assert.match((await res.json()).error, pattern);
  }
  const notJson = await rulesTestRoute(
    new Request("http://localhost/api/v1/rules/test", { method: "POST", body: "{" }),
  );
  assert.equal(notJson.status, 400);
  assert.equal((await post(undefined, "GET")).status, 405);
  const huge = await post({ config: "transforms: {}", text: "x".repeat(1024 * 1024) });
  assert.equal(huge.status, 413);
});
