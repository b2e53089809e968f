import assert from "node:assert/strict";
import { formatCursor, newEpoch, parseCursor } from "./cursor.ts";

Deno.test("a cursor is the run's epoch and the line id; a bare id has no epoch", () => {
  const epoch = newEpoch();
  assert.match(epoch, /^[0-9a-z]{12,}$/);
  assert.notEqual(newEpoch(), epoch);
  assert.deepEqual(parseCursor(formatCursor(epoch, 42)), { epoch, id: 42 });
  assert.deepEqual(parseCursor("17"), { epoch: undefined, id: 17 });
  for (const bad of ["", "x", "a-", "-1", "A-1", "a-1.5", "a-b", "a-1-2", "a-" + "9".repeat(16)]) {
    assert.throws(() => parseCursor(bad), { name: "RangeError", message: /Last-Event-ID/ }, bad);
  }
});
