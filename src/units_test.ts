import assert from "node:assert/strict";
import { formatHostPort, isLoopback, parseDuration, parseHostPort, parseSize } from "./units.ts";

Deno.test("parseDuration reads each unit and compound durations", () => {
  assert.equal(parseDuration("200ms"), 200);
  assert.equal(parseDuration("5s"), 5_000);
  assert.equal(parseDuration("1m"), 60_000);
  assert.equal(parseDuration("24h"), 86_400_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("7d"), 604_800_000);
  assert.equal(parseDuration("1.5s"), 1_500);
  assert.equal(parseDuration("1m200ms"), 60_200);
  assert.equal(parseDuration("0"), 0);
});

Deno.test("parseDuration rejects what is not a duration, quoting it", () => {
  for (const bad of ["", "5", "h", "-5s", "5 s", "1h 30m", "5S", "1w", "1e3s", "5s!", "0.5ms"]) {
    assert.throws(
      () => parseDuration(bad),
      (err: unknown) => err instanceof RangeError && err.message.includes(`"${bad}"`),
      bad,
    );
  }
  assert.throws(() => parseDuration("9".repeat(20) + "d"), RangeError);
});

Deno.test("parseSize reads binary units, case-blind", () => {
  assert.equal(parseSize("1048576"), 1048576);
  assert.equal(parseSize("64KiB"), 65536);
  assert.equal(parseSize("1mib"), 1048576);
  assert.equal(parseSize("2g"), 2 * 1024 ** 3);
  assert.equal(parseSize(" 1 MiB "), 1048576);
  assert.equal(parseSize("0"), 0);
  for (const bad of ["", "big", "1.5MiB", "-1", "1TiB", "9".repeat(20)]) {
    assert.throws(
      () => parseSize(bad),
      (err: unknown) => err instanceof RangeError && err.message.includes(`"${bad}"`),
      bad,
    );
  }
});

Deno.test("parseHostPort reads host:port, [v6]:port and :port", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:8081"), { hostname: "127.0.0.1", port: 8081 });
  assert.deepEqual(parseHostPort("[::1]:9000"), { hostname: "::1", port: 9000 });
  assert.deepEqual(parseHostPort("localhost:1"), { hostname: "localhost", port: 1 });
  assert.deepEqual(parseHostPort(":8081"), { hostname: "0.0.0.0", port: 8081 });
  for (const bad of ["8081", "host:", "host:0", "host:65536", "::1:80", "a:b"]) {
    assert.throws(() => parseHostPort(bad), RangeError, bad);
  }
  assert.equal(formatHostPort({ hostname: "::1", port: 1 }), "[::1]:1");
  assert.equal(formatHostPort({ hostname: "a", port: 1 }), "a:1");
});

Deno.test("isLoopback knows loopback names and addresses, and nothing else", () => {
  for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "app.localhost", "::1"]) {
    assert.equal(isLoopback(host), true, host);
  }
  assert.equal(isLoopback("[::1]"), true);
  assert.equal(isLoopback("::ffff:127.0.0.1"), true);
  for (
    const host of ["0.0.0.0", "10.0.0.1", "::", "example.com", "127.0.0.256", "localhost.evil"]
  ) {
    assert.equal(isLoopback(host), false, host);
  }
});
