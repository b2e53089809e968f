import assert from "node:assert/strict";
import { colourLevel, droppedMarker, escapeControl, safeJson } from "./terminal_text.ts";

Deno.test("escapeControl shows escape sequences, C1 and bidi controls instead of obeying them", () => {
  assert.equal(escapeControl("\x1b]0;pwned\x07title"), "\\x1b]0;pwned\\x07title");
  assert.equal(escapeControl("a\rb\x00c\x7f\x9bd"), "a\\x0db\\x00c\\x7f\\x9bd");
  assert.equal(escapeControl("user \u202eexe.txt"), "user \\u202eexe.txt");
  assert.equal(escapeControl("tab\tstays, é and 日本 too"), "tab\tstays, é and 日本 too");
});

Deno.test("safeJson stays valid JSON with no raw control characters", () => {
  const value = { line: "\x1b[31m\x9b\u202e\x7f" };
  const text = safeJson(value);
  // deno-lint-ignore no-control-regex
  assert.ok(!/[\x00-\x1f\x7f-\x9f\u202e]/.test(text), text);
  assert.deepEqual(JSON.parse(text), value);
});

Deno.test("colourLevel colours the first level word only", () => {
  assert.equal(colourLevel("x ERROR y WARN"), "x \x1b[31mERROR\x1b[0m y WARN");
  assert.equal(colourLevel("[WRN] low disk"), "[\x1b[33mWRN\x1b[0m] low disk");
  assert.equal(colourLevel("information"), "information");
  assert.match(droppedMarker(3, false), /3 lines dropped/);
  assert.match(droppedMarker(1, false), /1 line dropped/);
});
