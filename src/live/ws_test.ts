import assert from "node:assert/strict";
import { encodeWsEvent } from "./ws.ts";

Deno.test("encodeWsEvent sends the record's wire fields only, and dropped counts", () => {
  const extra = { id: 1, source: "s", host: "h", ts: 2, line: "a\nb", secret: "no" };
  assert.deepEqual(JSON.parse(encodeWsEvent({ type: "lines", lines: [extra] })), {
    type: "lines",
    lines: [{ id: 1, source: "s", host: "h", ts: 2, line: "a\nb" }],
  });
  assert.equal(encodeWsEvent({ type: "dropped", count: 3 }), '{"type":"dropped","count":3}');
});

Deno.test("encodeWsEvent carries a line's level and fields, and plain lines as before", () => {
  const lines = [
    { id: 1, source: "s", host: "h", ts: 2, level: "warn" as const, line: "a", fields: { n: 1 } },
    { id: 2, source: "s", host: "h", ts: 2, line: "b" },
  ];
  assert.equal(
    encodeWsEvent({ type: "lines", lines }),
    '{"type":"lines","lines":[{"id":1,"source":"s","host":"h","ts":2,"level":"warn","line":"a",' +
      '"fields":{"n":1}},{"id":2,"source":"s","host":"h","ts":2,"line":"b"}]}',
  );
});
