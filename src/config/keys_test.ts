import assert from "node:assert/strict";
import {
  defaultValues,
  formatProblem,
  type KeyTable,
  nearest,
  Problems,
  readKeys,
} from "./keys.ts";

const TABLE = {
  name: { type: "string", nonEmpty: true, doc: "a name" },
  path: { type: "string", path: true, default: "out.log", doc: "a file" },
  on: { type: "bool", default: false, doc: "a switch" },
  count: { type: "count", default: 3, min: 1, max: 10, doc: "a count" },
  size: { type: "size", default: "1MiB", doc: "a size" },
  wait: { type: "duration", default: "10s", doc: "a duration" },
  mode: { type: "choice", choices: ["a", "b"], default: "a", doc: "a choice" },
  address: { type: "address", default: "127.0.0.1:8081", off: true, doc: "an address" },
  globs: { type: "list", default: [], path: true, doc: "a list" },
  needed: { type: "count", required: true, doc: "a required count" },
} as const satisfies KeyTable;

Deno.test("readKeys converts each type and fills in the defaults", () => {
  const problems = new Problems();
  const values = readKeys(
    TABLE,
    {
      name: "x",
      on: true,
      size: "64KiB",
      wait: "1h30m",
      mode: "b",
      address: "[::1]:9000",
      globs: ["logs/*.log", "/abs/x"],
      needed: 5,
    },
    "inputs.x",
    problems,
    { base: "conf" },
  );
  assert.deepEqual(problems.list, []);
  assert.deepEqual(values, {
    name: "x",
    path: "out.log",
    on: true,
    count: 3,
    size: 65536,
    wait: 5_400_000,
    mode: "b",
    address: { hostname: "::1", port: 9000 },
    globs: ["conf/logs/*.log", "/abs/x"],
    needed: 5,
  });
  assert.equal(readKeys(TABLE, { address: "off", needed: 1 }, "", problems).address, undefined);
  assert.equal(readKeys(TABLE, { size: 2048, needed: 1 }, "", problems).size, 2048);
});

Deno.test("readKeys reports every problem at once, each at its key path", () => {
  const problems = new Problems();
  readKeys(
    TABLE,
    {
      name: "",
      on: "yes",
      count: 11,
      size: "big",
      wait: "10",
      mode: "c",
      address: "8081",
      globs: "x",
      sise: 1,
      zzzzzz: 1,
    },
    "sinks.s",
    problems,
  );
  assert.deepEqual(problems.list.map(formatProblem), [
    'sinks.s.sise: unknown key; did you mean "size"?',
    "sinks.s.zzzzzz: unknown key (known: name, path, on, count, size, wait, mode, address, " +
    "globs, needed)",
    "sinks.s.name: must not be empty",
    'sinks.s.on: must be true or false, got "yes"',
    "sinks.s.count: must be a whole number from 1 to 10, got 11",
    'sinks.s.size: must be a size above zero such as 1048576 or "1MiB", got "big"',
    'sinks.s.wait: must be a duration above zero such as "30s", "15m" or "7d", got "10"',
    'sinks.s.mode: must be one of a, b, got "c"',
    'sinks.s.address: must be host:port such as "127.0.0.1:8081", or off (port 1-65535), got ' +
    '"8081"',
    'sinks.s.globs: must be a list, got "x"',
    "sinks.s.needed: is required",
  ]);
});

Deno.test("defaultValues reads each default as a value would be", () => {
  assert.deepEqual(defaultValues(TABLE), {
    name: undefined,
    path: "out.log",
    on: false,
    count: 3,
    size: 1024 * 1024,
    wait: 10_000,
    mode: "a",
    address: { hostname: "127.0.0.1", port: 8081 },
    globs: [],
    needed: undefined,
  });
  const broken = { size: { type: "size", default: "lots", doc: "x" } } as const;
  assert.throws(() => defaultValues(broken), TypeError);
});

Deno.test("nearest suggests a key two edits away at most", () => {
  assert.equal(nearest("max_lines", ["max_line", "address"]), "max_line");
  assert.equal(nearest("adress", ["max_line", "address"]), "address");
  assert.equal(nearest("colour", ["max_line", "address"]), undefined);
});
