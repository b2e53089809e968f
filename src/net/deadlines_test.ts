import assert from "node:assert/strict";
import { Deadlines } from "./deadlines.ts";

Deno.test("a deadline expires once its time passed, with its phase; unset or removed ones never", () => {
  let now = 1000;
  const deadlines = new Deadlines({ now: () => now });
  const expired: string[] = [];
  const a = deadlines.watch((phase) => expired.push(`a:${phase}`));
  const b = deadlines.watch((phase) => expired.push(`b:${phase}`));
  const c = deadlines.watch((phase) => expired.push(`c:${phase}`));
  a.phase = "header";
  a.at = now + 100;
  b.phase = "body";
  b.at = now + 500;
  c.at = now + 10;
  deadlines.unwatch(c);
  now += 99;
  deadlines.sweep();
  assert.deepEqual(expired, []);
  now += 1;
  deadlines.sweep();
  assert.deepEqual(expired, ["a:header"]);
  b.at = Infinity; // the body read completed
  now += 10_000;
  deadlines.sweep();
  deadlines.sweep();
  assert.deepEqual(expired, ["a:header"]);
  b.at = now;
  deadlines.sweep();
  assert.deepEqual(expired, ["a:header", "b:body"]);
  deadlines.close();
});
