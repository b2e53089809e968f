import assert from "node:assert/strict";
import { FlagError, parseFlags } from "./flags.ts";
import { HTTP_FLAGS, parseHttpFlags } from "./http_flags.ts";

const parse = (...args: string[]) => parseHttpFlags(parseFlags(args, HTTP_FLAGS).values);

Deno.test("HTTP flags: defaults, off, and the values they take", () => {
  assert.deepEqual(parse(), {
    address: { hostname: "127.0.0.1", port: 8081 },
    token: "",
    maxBody: 16 * 1024 * 1024,
    maxSubscribers: 1000,
    allowedOrigins: [],
    tailRate: 200_000,
    headerTimeoutMs: 10_000,
    bodyTimeoutMs: 30_000,
  });
  assert.equal(parse("-http", "off").address, undefined);
  const set = parse(
    "-maxBody",
    "1MiB",
    "-allowOrigin",
    "https://a.example, http://b:8",
    "-tailRate",
    "0",
  );
  assert.equal(set.maxBody, 1024 * 1024);
  assert.deepEqual(set.allowedOrigins, ["https://a.example", "http://b:8"]);
  assert.equal(set.tailRate, Infinity);
  assert.equal(parse("-headerTimeout", "1500ms").headerTimeoutMs, 1500);
  assert.equal(parse("-bodyTimeout", "2m").bodyTimeoutMs, 120_000);
  for (
    const bad of [
      ["-http", "8081"],
      ["-maxSubscribers", "0"],
      ["-allowOrigin", "a.example"],
      ["-tailRate", "x"],
      ["-headerTimeout", "0"],
      ["-bodyTimeout", "5"],
    ]
  ) {
    assert.throws(() => parse(...bad), FlagError, bad.join(" "));
  }
});
