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
