import assert from "node:assert/strict";
import type { Fields } from "../pipeline/record.ts";
import { flattenJson } from "../protocols/fields.ts";
import { pickJson } from "./json_pick.ts";

function pick(line: string, names: string[]): { picked: string; fields: Fields } {
  const fields: Fields = {};
  const picked = pickJson(line, 0, line.length, names, fields);
  return { picked: picked === "none" ? "done" : picked, fields };
}

/** What a whole parse gives of `names`. */
function whole(line: string, names: string[]): Fields {
  const all: Fields = {};
  flattenJson(all, "", JSON.parse(line));
  const out: Fields = {};
  for (const name of names) if (Object.hasOwn(all, name)) out[name] = all[name];
  return out;
}

Deno.test("pickJson gives exactly the fields a whole parse gives, for the names asked", () => {
  const lines = [
    '{"level":"info","msg":"up"}',
    ' { "level" : "warn" , "msg" : "x" } ',
    '{"msg":"say \\"level\\":\\"error\\"","level":"debug"}',
    '{"msg":"ends with a backslash \\\\","level":"error"}',
    '{"level":"caf\\u00e9","n":-1.5e3,"ok":true,"no":false,"none":null}',
    '{"level":"a","level":"b"}',
    '{"level":"a","level":null}',
    '{"nested":{"level":"x","deep":[1,{"a":"}"}]},"level":"y"}',
    '{"le\\u0076el":"escaped key"}',
    '{"big":1e400,"level":"info"}',
    '{"emoji":"😀 ünïcode","level":"warn"}',
    "{}",
    '{"level":""}',
    '{"level":"x"}\r',
  ];
  const nameSets = [["level"], ["level", "msg"], ["n", "ok", "no", "none"], ["big"], ["emoji"], []];
  for (const line of lines) {
    for (const names of nameSets) {
      const { picked, fields } = pick(line, names);
      assert.equal(picked, "done", `${line} ${names}`);
      assert.deepEqual(fields, whole(line, names), `${line} ${names}`);
    }
  }
});

Deno.test("pickJson sends a line whose asked field is nested, or inside a nested value, to a whole parse", () => {
  assert.equal(pick('{"http":{"status":200}}', ["http.status"]).picked, "whole");
  assert.equal(pick('{"level":{"name":"x"}}', ["level"]).picked, "whole");
  assert.equal(pick('{"tags":["a"]}', ["tags"]).picked, "whole");
  // A flat dotted key is read as it is.
  assert.deepEqual(pick('{"http.status":200,"http":1}', ["http.status"]), {
    picked: "done",
    fields: { "http.status": 200 },
  });
  // Not asked for: skipped, checked for structure only.
  assert.equal(pick('{"http":{"status":200},"level":"x"}', ["level"]).picked, "done");
});

Deno.test("pickJson refuses what is not one JSON object", () => {
  const bad = [
    "",
    "not json",
    '{"a":1',
    '{"a" 1}',
    '{"a":"x}',
    '{"a":1}x',
    '{"a":1}{"b":2}',
    "{a:1}",
    '{"a":[1,}',
    '{"a":{"b":}}',
    '{"a":{"b" 1}}',
    '{"a":1,}',
    '{"a":}',
    '{,"a":1}',
    '{"a":1 "b":2}',
    '{"a":[1 2]}',
    '{"a":"b":1}',
    // An asked value is read exactly.
    '{"level":tru}',
    '{"level":01}',
    '{"level":"bad \\x escape"}',
  ];
  for (const line of bad) {
    assert.equal(pick(line, ["level"]).picked, "not-json", line);
    assert.throws(() => JSON.parse(line), SyntaxError, line);
  }
  // JSON, but not an object.
  for (const line of ["[1,2]", '"text"', "3"]) {
    assert.equal(pick(line, ["level"]).picked, "not-json", line);
  }
  // Deeper than the flattening allows, even unread.
  const deep = '{"a":' + "[".repeat(40) + "]".repeat(40) + ',"level":"x"}';
  assert.equal(pick(deep, ["level"]).picked, "not-json");
});

Deno.test("pickJson does not check the form of values nobody reads (documented)", () => {
  // `JSON.parse` refuses these; picking `level` alone does not look at `n`.
  for (
    const line of ['{"n":01,"level":"x"}', '{"n":tru,"level":"x"}', '{"n":"a\tb","level":"x"}']
  ) {
    assert.throws(() => JSON.parse(line));
    assert.deepEqual(pick(line, ["level"]), { picked: "done", fields: { level: "x" } });
  }
});

Deno.test("pickJson agrees with a whole parse on generated objects", () => {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pickOf = <T>(list: T[]) => list[Math.floor(random() * list.length)];
  const keys = ["level", "msg", "a", "b.c", "n", "__proto__", 'q"k', "x\\y"];
  const value = (depth: number): unknown => {
    const kind = Math.floor(random() * (depth > 2 ? 5 : 7));
    switch (kind) {
      case 0:
        return pickOf(["", "info", 'with "quotes"', "back\\slash\\", "tab\tnl\n", "ü😀", "}{]["]);
      case 1:
        return pickOf([0, -1, 3.25, 1e21, -2e-7]);
      case 2:
        return random() < 0.5;
      case 3:
        return null;
      case 4:
        return pickOf(["error", "warn"]);
      case 5:
        return Array.from({ length: Math.floor(random() * 3) }, () => value(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let k = Math.floor(random() * 4); k > 0; k--) o[pickOf(keys)] = value(depth + 1);
        return o;
      }
    }
  };
  for (let n = 0; n < 2000; n++) {
    const entries: string[] = [];
    for (let k = Math.floor(random() * 6); k > 0; k--) {
      const space = random() < 0.2 ? " " : "";
      entries.push(`${JSON.stringify(pickOf(keys))}${space}:${space}${JSON.stringify(value(0))}`);
    }
    const line = `{${entries.join(random() < 0.2 ? " , " : ",")}}`;
    const names = keys.filter(() => random() < 0.4);
    const { picked, fields } = pick(line, names);
    if (picked === "whole") continue;
    assert.equal(picked, "done", line);
    assert.deepEqual(fields, whole(line, names), `${line} ${names}`);
  }
});
