import assert from "node:assert/strict";
import {
  automatonBudget,
  compileLinearRegex,
  DEFAULT_MAX_CHARS,
  MAX_PROGRAM_SIZE,
} from "./linear_regex.ts";

Deno.test("a pattern that backtracks for minutes in RegExp answers at once on the linear engine", () => {
  // JavaScript's RegExp takes about 2^30 steps here: the test would not end.
  const evil = compileLinearRegex("(a+)+$");
  assert.equal(evil.test("a".repeat(30) + "!"), false);
  assert.equal(evil.test("a".repeat(30)), true);
  assert.equal(compileLinearRegex("(\\w+\\s?)+$").test("word ".repeat(40) + "!"), false);
});

Deno.test("JavaScript syntax and RegExp flags are understood", () => {
  assert.equal(compileLinearRegex("^user=\\d+$").test("user=42"), true);
  assert.equal(compileLinearRegex("(?<word>\\w+) end").test("the end"), true);
  assert.equal(compileLinearRegex(/disk/gi).test("DISK full"), true);
  assert.equal(compileLinearRegex("disk").test("DISK full"), false);
  assert.equal(compileLinearRegex("caf\\u{e9}").test("café"), true);
  assert.equal(compileLinearRegex("a.b").test("a\nb"), false);
  assert.equal(compileLinearRegex(/a.b/s).test("a\nb"), true);
  assert.equal(compileLinearRegex("x").source, "x");
  assert.equal(compileLinearRegex(/x/i).source, "/x/i");
});

Deno.test("what the engine cannot run is a SyntaxError that names the pattern and the reason", () => {
  const cases: [string, RegExp][] = [
    ["(unclosed", /^Invalid regex "\(unclosed": missing closing \)/],
    ["(?=ahead)", /^Invalid regex "\(\?=ahead\)": invalid or unsupported Perl syntax/],
    ["(a)\\1", /^Invalid regex "\(a\)\\1": invalid escape sequence/],
    ["a{2,1}", /^Invalid regex "a\{2,1\}": invalid repeat count/],
  ];
  for (const [pattern, message] of cases) {
    assert.throws(() => compileLinearRegex(pattern), { name: "SyntaxError", message }, pattern);
  }
});

Deno.test("a pattern too large to run cheaply is refused", () => {
  const huge = ".{1000}".repeat(3);
  assert.throws(() => compileLinearRegex(huge), {
    name: "SyntaxError",
    message: new RegExp(`too large \\(\\d+ instructions, at most ${MAX_PROGRAM_SIZE}\\)`),
  });
  assert.ok(compileLinearRegex("a{1000}").programSize <= MAX_PROGRAM_SIZE);
});

Deno.test("a pattern looks at the first maxChars characters of a line only", () => {
  const line = "x".repeat(100) + "NEEDLE";
  assert.equal(compileLinearRegex("NEEDLE").test(line), true);
  assert.equal(compileLinearRegex("NEEDLE", { maxChars: 100 }).test(line), false);
  assert.equal(compileLinearRegex("NEEDLE", { maxChars: 106 }).test(line), true);
  assert.equal(
    compileLinearRegex("x$", { maxChars: 50 }).test(line),
    true,
    "the cut end is an end",
  );
  assert.equal(compileLinearRegex("x").maxChars, DEFAULT_MAX_CHARS);
  assert.throws(() => compileLinearRegex("x", { maxChars: 0 }), RangeError);
});

Deno.test("the automaton's memory is capped (re2js internals still where this module expects)", () => {
  const budget = automatonBudget("(a|b)*a.{30}b$");
  assert.ok(budget !== undefined && budget <= 256 * 1024, `budget ${budget}`);
});
