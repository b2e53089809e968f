import assert from "node:assert/strict";
import type { Fields } from "../pipeline/record.ts";
import { compileCapture } from "./capture.ts";
import { compileDissect } from "./dissect.ts";
import { guessLevel } from "./level_guess.ts";
import { parseLogfmt } from "./logfmt.ts";
import { compileSourceGlob, globMatch } from "./source_glob.ts";

Deno.test("logfmt: bare and quoted values, escapes, flags; what is not logfmt", () => {
  const fields: Fields = {};
  assert.equal(
    parseLogfmt('level=warn msg="disk \\"sda\\" at 93%" pct=93 empty= retry  path=/a=b', fields),
    6,
  );
  assert.deepEqual(fields, {
    level: "warn",
    msg: 'disk "sda" at 93%',
    pct: "93",
    empty: "",
    retry: true,
    path: "/a=b",
  });
  assert.equal(parseLogfmt('msg="never closed', {}), -1);
  assert.equal(parseLogfmt("=value", {}), -1);
  assert.equal(parseLogfmt("   ", {}), -1);
  const proto: Fields = {};
  parseLogfmt("__proto__=x", proto);
  assert.equal(Object.hasOwn(proto, "__proto__"), true);
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
});

Deno.test("dissect: an access log, skipped keys, padding; a line that does not fit", () => {
  const d = compileDissect(
    '%{client} %{?ident} %{user} [%{ts}] "%{method} %{path} %{proto}" %{status} %{bytes}',
  );
  assert.deepEqual(d.keys, ["client", "user", "ts", "method", "path", "proto", "status", "bytes"]);
  const fields: Fields = {};
  assert.ok(d.apply(
    '10.0.0.5 - bob [22/Nov/2026:10:00:00 +0000] "GET /a?b=1 HTTP/1.1" 404 512',
    fields,
  ));
  assert.deepEqual(fields, {
    client: "10.0.0.5",
    user: "bob",
    ts: "22/Nov/2026:10:00:00 +0000",
    method: "GET",
    path: "/a?b=1",
    proto: "HTTP/1.1",
    status: "404",
    bytes: "512",
  });
  assert.equal(d.apply("not an access log", {}), false);
  const padded = compileDissect("%{level->} %{msg}");
  const out: Fields = {};
  assert.ok(padded.apply("INFO     started", out));
  assert.deepEqual(out, { level: "INFO", msg: "started" });
  // A literal after the last key must end the line.
  assert.equal(compileDissect("[%{a}]").apply("[x] and more", {}), false);
  assert.throws(() => compileDissect("%{a}%{b}"), /no text between them/);
  assert.throws(() => compileDissect("no keys"), /no %\{key\}/);
  assert.throws(() => compileDissect("%{a b}"), /not a field name/);
});

Deno.test("regex captures: named groups on RE2; a pattern without names or too large is refused", () => {
  const re = compileCapture('^(?<ip>\\S+) .*" (?P<status>\\d{3}) (?<size>\\d+|-)?');
  const fields: Fields = {};
  assert.ok(re.apply('1.2.3.4 - - [x] "GET / HTTP/1.1" 200 17', fields));
  assert.deepEqual(fields, { ip: "1.2.3.4", status: "200", size: "17" });
  assert.equal(re.apply("nothing", {}), false);
  assert.throws(() => compileCapture("a+b"), /names no group/);
  assert.throws(() => compileCapture("(?<x>a{1000})(?<y>b{1000})"), /too large/);
  // Linear time: the classic catastrophic pattern answers at once.
  const evil = compileCapture("^(?<a>(a+)+)$");
  assert.equal(evil.apply("a".repeat(5000) + "!", {}), false);
});

Deno.test("level words: the first one in the text, any case; ambiguous words are not levels", () => {
  assert.equal(guessLevel("2026-11-22 10:00:01 ERROR [main] boom"), "error");
  assert.equal(guessLevel("[warn] disk low"), "warn");
  assert.equal(guessLevel("ts=1 level=debug msg=x"), "debug");
  assert.equal(guessLevel("Error: Database connection failed"), "error");
  assert.equal(guessLevel("INFO retried after error"), "info");
  assert.equal(guessLevel("CRIT kernel panic"), "fatal");
  assert.equal(guessLevel("    at Foo.bar (foo.js:10)"), undefined);
  assert.equal(guessLevel("errors were found; informational"), undefined);
  assert.equal(guessLevel("E1122 glog style, log line"), undefined);
  assert.equal(guessLevel("x".repeat(200) + " ERROR"), undefined);
});

Deno.test("source globs: * and ? over whole names, without backtracking blow-up", () => {
  assert.ok(compileSourceGlob("app-*").test("app-billing"));
  assert.ok(!compileSourceGlob("app-*").test("nginx"));
  assert.ok(compileSourceGlob("*").test(""));
  assert.ok(compileSourceGlob("web?").test("web1"));
  assert.ok(!compileSourceGlob("web?").test("web12"));
  assert.ok(compileSourceGlob("nginx").test("nginx"));
  assert.ok(globMatch("*a*b*c", "xxaxxbxxc"));
  assert.ok(!globMatch("*a*a*a*a*a*b", "a".repeat(10_000)));
});
