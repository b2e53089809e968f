import assert from "node:assert/strict";
import { encodeJsonLines } from "./json_lines.ts";

Deno.test("json format carries time, source and host, and survives quotes and control bytes", () => {
  const data = new TextEncoder().encode('plain\nsays "hi"\tthen \x1b[31mred\n');
  const out = new TextDecoder().decode(encodeJsonLines({
    data,
    lines: 2,
    meta: { source: "web/1", host: "10.0.0.5", input: "tcp" },
    receivedAt: Date.UTC(2026, 10, 21, 23, 54, 55, 123),
  }));
  const records = out.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(records, [
    { ts: "2026-11-21T23:54:55.123Z", source: "web/1", host: "10.0.0.5", line: "plain" },
    {
      ts: "2026-11-21T23:54:55.123Z",
      source: "web/1",
      host: "10.0.0.5",
      line: 'says "hi"\tthen \x1b[31mred',
    },
  ]);
});

Deno.test("json format adds a batch's labels and each line's own time where it has one", () => {
  const data = new TextEncoder().encode("<11>1 first\nunparsed\n<11>1 third\n");
  const sent = Date.UTC(2026, 10, 30, 10, 34, 18, 155);
  const out = new TextDecoder().decode(encodeJsonLines({
    data,
    lines: 3,
    meta: {
      source: "syslog",
      host: "vm",
      input: "syslog",
      // A label cannot take the place of the object's own keys.
      labels: { app: "myapp", facility: "user", severity: "err", line: "x" },
    },
    receivedAt: Date.UTC(2026, 10, 30, 10, 34, 19),
    times: new Float64Array([sent, NaN, 1e300]),
  }));
  const lines = out.trimEnd().split("\n");
  assert.equal(
    lines[0],
    '{"ts":"2026-11-30T10:34:19.000Z","source":"syslog","host":"vm","app":"myapp",' +
      '"facility":"user","severity":"err","time":"2026-11-30T10:34:18.155Z","line":"<11>1 first"}',
  );
  // No stated time (or none a date can hold): no "time" key, the receive time is in "ts".
  assert.deepEqual(JSON.parse(lines[1]), {
    ts: "2026-11-30T10:34:19.000Z",
    source: "syslog",
    host: "vm",
    app: "myapp",
    facility: "user",
    severity: "err",
    line: "unparsed",
  });
  assert.equal(JSON.parse(lines[2]).time, undefined);
});

Deno.test("json format puts a line's level after ts and its fields after line, where it has them", () => {
  const data = new TextEncoder().encode("slow request\nplain\nboom\n");
  const out = new TextDecoder().decode(encodeJsonLines({
    data,
    lines: 3,
    meta: { source: "api", host: "10.0.0.7", input: "otlp", labels: { level: "x", fields: "y" } },
    receivedAt: Date.UTC(2026, 11, 1, 8, 0, 0, 5),
    times: new Float64Array([Date.UTC(2026, 11, 1, 7, 59, 59, 999), NaN, NaN]),
    levels: new Uint8Array([4, 0, 6]),
    fields: [{ "service.name": "billing", ms: 912, cached: false }, undefined, {}],
  }));
  const lines = out.trimEnd().split("\n");
  // Byte for byte: the order of keys is part of the format.
  assert.equal(
    lines[0],
    '{"ts":"2026-12-01T08:00:00.005Z","level":"warn","source":"api","host":"10.0.0.7",' +
      '"time":"2026-12-01T07:59:59.999Z","line":"slow request",' +
      '"fields":{"service.name":"billing","ms":912,"cached":false}}',
  );
  // No level (code 0), no fields: neither key; labels never take the place of either.
  assert.equal(
    lines[1],
    '{"ts":"2026-12-01T08:00:00.005Z","source":"api","host":"10.0.0.7","line":"plain"}',
  );
  // Empty fields are no fields.
  assert.deepEqual(JSON.parse(lines[2]), {
    ts: "2026-12-01T08:00:00.005Z",
    level: "fatal",
    source: "api",
    host: "10.0.0.7",
    line: "boom",
  });
});

Deno.test("json format of a batch with only a fields column keeps the other lines' shape", () => {
  const data = new TextEncoder().encode('a "quoted" \\ line\nb\n');
  const out = new TextDecoder().decode(encodeJsonLines({
    data,
    lines: 2,
    meta: { source: "s", host: "h", input: "loki" },
    receivedAt: 0,
    fields: [undefined, { 'we"ird\nkey': "v\u2028" }],
  }));
  const [first, second] = out.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(first, {
    ts: "1970-01-01T00:00:00.000Z",
    source: "s",
    host: "h",
    line: 'a "quoted" \\ line',
  });
  assert.deepEqual(second.fields, { 'we"ird\nkey': "v\u2028" });
  assert.equal(out.split("\n").length, 3, "one record per line, whatever the fields hold");
});
