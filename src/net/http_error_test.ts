import assert from "node:assert/strict";
import { HttpError } from "./http_error.ts";

Deno.test("HttpError builds its response: status, JSON reason and the headers it was given", async () => {
  const err = new HttpError(503, 'The queue is "full"', { headers: { "retry-after": "5" } });
  const res = err.response();
  assert.equal(res.status, 503);
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
  assert.equal(res.headers.get("retry-after"), "5");
  assert.equal(await res.text(), '{"error":"The queue is \\"full\\""}\n');
  assert.equal(err.name, "HttpError");
  assert.ok(err instanceof Error);
});

Deno.test("HttpError keeps its cause and refuses a status that is not an error", () => {
  const cause = new Error("inner");
  assert.equal(new HttpError(400, "bad", { cause }).cause, cause);
  assert.deepEqual(new HttpError(404, "gone").headers, {});
  for (const status of [200, 302, 600, 400.5]) {
    assert.throws(() => new HttpError(status, "x"), RangeError, String(status));
  }
});
