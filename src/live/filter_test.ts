import assert from "node:assert/strict";
import { compileFilter } from "./filter.ts";

const MAX_CHARS = 8192;

Deno.test("compileFilter: nothing asked matches every line without a test to run", () => {
  const filter = compileFilter({ source: "", grep: "", regex: "" }, MAX_CHARS);
  assert.deepEqual(filter, {
    source: undefined,
    test: undefined,
    needle: undefined,
    grepOnly: false,
    regex: false,
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
