import assert from "node:assert/strict";
import { columnsMatch, columnsMayMatch, compileFilter } from "./filter.ts";

const MAX_CHARS = 8192;

Deno.test("compileFilter: nothing asked matches every line without a test to run", () => {
  const filter = compileFilter({ source: "", grep: "", regex: "" }, MAX_CHARS);
  assert.deepEqual(filter, {
    source: undefined,
    test: undefined,
    needle: undefined,
    grepOnly: false,
    regex: false,
    minLevel: 0,
    fields: undefined,
    columns: false,
  });
});

Deno.test("compileFilter: grep alone is decided by the search, grep and regex must both match", () => {
  const grep = compileFilter({ grep: "ERROR" }, MAX_CHARS);
  assert.equal(grep.grepOnly, true);
  assert.equal(grep.needle, "ERROR");
  assert.equal(grep.regex, false);
  assert.equal(grep.test?.("an ERROR here"), true);
  assert.equal(grep.test?.("an error here"), false);

  const both = compileFilter({ grep: "ERROR", regex: /disk/gi }, MAX_CHARS);
  assert.equal(both.grepOnly, false);
  assert.equal(both.regex, true);
  const lines = ["ERROR Disk full", "ERROR disk slow", "ERROR net", "disk ok"];
  assert.deepEqual(
    lines.filter((line) => both.test!(line)),
    ["ERROR Disk full", "ERROR disk slow"],
    "a global RegExp must not skip lines through lastIndex",
  );
});

Deno.test("compileFilter: a grep text with a newline tests line by line", () => {
  // A match across a newline belongs to no line, so the batch-wide search cannot decide alone.
  const filter = compileFilter({ grep: "a\nb" }, MAX_CHARS);
  assert.equal(filter.grepOnly, false);
  assert.equal(filter.test?.("a"), false);
});

Deno.test("compileFilter: the regex looks at the first maxChars characters of a line", () => {
  const filter = compileFilter({ regex: "x$" }, 4);
  assert.equal(filter.test?.("abcx"), true);
  assert.equal(filter.test?.("abcdx"), false);
});

Deno.test("compileFilter: wrong types and invalid regexes are refused with a clear error", () => {
  assert.throws(() => compileFilter({ regex: "(unclosed" }, MAX_CHARS), {
    name: "SyntaxError",
    message: /^Invalid regex "\(unclosed": /,
  });
  assert.throws(
    () => compileFilter({ grep: 5 as unknown as string }, MAX_CHARS),
    { name: "TypeError", message: 'Grep filter must be a string, got "5"' },
  );
  assert.throws(() => compileFilter({ source: {} as unknown as string }, MAX_CHARS), TypeError);
  assert.throws(() => compileFilter({ regex: 7 as unknown as string }, MAX_CHARS), TypeError);
});

Deno.test("compileFilter: a level keeps that level and above; a line without a level never matches", () => {
  const filter = compileFilter({ level: "warn" }, MAX_CHARS);
  assert.equal(filter.columns, true);
  const levels = new Uint8Array([0, 1, 2, 3, 4, 5, 6]);
  const kept = [...levels.keys()].filter((i) => columnsMatch(filter, levels, undefined, i));
  assert.deepEqual(kept, [4, 5, 6]);
  assert.equal(columnsMayMatch(filter, undefined, [{}]), false, "a batch without levels");
  assert.equal(columnsMatch(filter, undefined, undefined, 0), false);
});

Deno.test("compileFilter: field filters compare values as text, all of them", () => {
  const filter = compileFilter({ fields: { service: "billing", status: "500" } }, MAX_CHARS);
  const fields = [
    { service: "billing", status: 500 },
    { service: "billing", status: "500", extra: true },
    { service: "billing" },
    { service: "auth", status: 500 },
    undefined,
    Object.create({ service: "billing", status: "500" }),
  ];
  const kept = fields.map((_, i) => columnsMatch(filter, undefined, fields, i));
  assert.deepEqual(kept, [true, true, false, false, false, false]);
  assert.equal(columnsMayMatch(filter, new Uint8Array(1), undefined), false);
  // With a grep, the search no longer decides alone: columns are looked at per line.
  assert.equal(compileFilter({ grep: "x", level: "info" }, MAX_CHARS).grepOnly, false);
  // No field asked is no filter.
  assert.equal(compileFilter({ fields: {} }, MAX_CHARS).columns, false);
});

Deno.test("compileFilter: an unknown level or a field value of the wrong type is refused", () => {
  assert.throws(
    () => compileFilter({ level: "warning" as "warn" }, MAX_CHARS),
    { name: "RangeError", message: /one of trace, debug, info, warn, error, fatal, got "warning"/ },
  );
  assert.throws(
    () => compileFilter({ fields: { status: 500 as unknown as string } }, MAX_CHARS),
    TypeError,
  );
});
