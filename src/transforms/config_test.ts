import assert from "node:assert/strict";
import { formatProblem, Problems } from "../config/keys.ts";
import { checkServerConfig } from "../config/server_config.ts";
import { compiledTransforms, readTransforms } from "./config.ts";

function problemsOf(doc: unknown): string[] {
  const problems = new Problems();
  readTransforms(doc, problems);
  return problems.list.map(formatProblem);
}

Deno.test("every problem of a transforms section is reported at its key path", () => {
  assert.deepEqual(
    problemsOf({
      "bad name!": { steps: [{ type: "set", field: "a", value: "b" }] },
      app: {
        source: ["x"],
        steps: [
          { type: "parse", format: "xml" },
          { type: "parse", format: "regex" },
          { type: "parse", format: "json", pattern: "x" },
          { type: "filtre", level: ">=warn" },
          { type: "filter", level: ">= loud" },
          { type: "filter", equals: "x" },
          { type: "filter" },
          { type: "filter", regex: "(" },
          { type: "route", to: "../etc", level: "error" },
          { type: "multiline", start: "^\\S", join: "\n" },
          { type: "level", gues: false },
          "parse",
        ],
      },
      empty: { steps: [] },
      none: {},
      scalar: 3,
    }),
    [
      "transforms.bad name!: a name is 1 to 64 letters, digits, _ or -",
      'transforms.app.source: unknown key; did you mean "sources"?',
      'transforms.app.steps[0].format: must be one of json, logfmt, regex, dissect, syslog, got "xml"',
      "transforms.app.steps[1].pattern: is required with format regex",
      "transforms.app.steps[2].pattern: is for format regex or dissect, not json",
      "transforms.app.steps[3].type: must be one of parse, level, timestamp, filter, route, set, " +
      'rename, delete, multiline, got "filtre"; did you mean "filter"?',
      "transforms.app.steps[4].level: Level condition must be a level, optionally after >=, <=, " +
      '>, <, = or != (levels: trace, debug, info, warn, error, fatal, none), e.g. ">=warn", got ' +
      '">= loud"',
      "transforms.app.steps[5].equals: needs field: the field to test",
      "transforms.app.steps[6].action: needs a condition: level, field or regex",
      'transforms.app.steps[7].regex: Invalid regex "(": missing closing ): `(`',
      "transforms.app.steps[8].to: must be 1 to 64 letters, digits, _, - or ., not starting " +
      "with . or -",
      "transforms.app.steps[9].join: must not hold a line break",
      'transforms.app.steps[10].gues: unknown key; did you mean "guess"?',
      'transforms.app.steps[11]: must be a mapping such as { type: parse, format: json }, got "parse"',
      "transforms.empty.steps: must be a list of steps (at least one), got []",
      "transforms.none.steps: is required: The steps, in order: a list of { type: <step>, <its " +
      "keys> } (required, at least one)",
      "transforms.scalar: must be a mapping with sources and steps, got 3",
    ],
  );
  assert.deepEqual(problemsOf([1]), [
    "transforms: must be a mapping of pipeline names to pipelines, got [1]",
  ]);
});

Deno.test("no section, an empty one, and steps compiled once when the config is read", () => {
  const problems = new Problems();
  assert.equal(readTransforms(undefined, problems), undefined);
  assert.deepEqual(readTransforms(null, problems), {});
  assert.deepEqual(readTransforms({}, problems), {});
  const config = readTransforms({
    app: { sources: ["app-*"], steps: [{ type: "parse", format: "json" }] },
  }, problems)!;
  assert.deepEqual(problems.list, []);
  assert.deepEqual(config, {
    app: {
      sources: ["app-*"],
      steps: [{
        type: "parse",
        format: "json",
        pattern: undefined,
        field: undefined,
        on_error: "keep",
      }],
    },
  });
  // The same compiled pipeline every time it is asked for: compiled once, by readTransforms.
  assert.equal(compiledTransforms(config).pipelines[0], compiledTransforms(config).pipelines[0]);
  assert.throws(
    () => compiledTransforms({ x: { sources: ["*"], steps: [] } }),
    /was not checked/,
  );
});

Deno.test("a server config carries its transforms section; logboom validate checks it with the rest", () => {
  const base = {
    http: { address: "off" },
    inputs: { tcp: { type: "tcp" } },
    sinks: { file: { type: "file", path: "out.log" } },
  };
  assert.equal(checkServerConfig(base).config.transforms, undefined);
  const { config, problems } = checkServerConfig({
    ...base,
    transforms: { app: { steps: [{ type: "level", fields: "level" }] } },
  });
  assert.deepEqual(problems.list.map(formatProblem), [
    'transforms.app.steps[0].fields: must be a list, got "level"',
  ]);
  assert.deepEqual(Object.keys(config.transforms!), ["app"]);
  const typo = checkServerConfig({ ...base, transform: {} });
  assert.deepEqual(typo.problems.list.map(formatProblem), [
    'transform: unknown key; did you mean "transforms"?',
  ]);
});
