import assert from "node:assert/strict";
import { until } from "../../tests/_http.ts";
import { bindFreePort } from "../../tests/_server.ts";
import { FakeClock } from "../_fake_clock.ts";
import { RetryPolicy } from "../retry.ts";
import { Receiver } from "./_receiver.ts";
import { type Notification, Webhook } from "./webhook.ts";

function note(count: number, state: Notification["state"] = "firing"): Notification {
  return {
    alert: "a",
    state,
    count,
    threshold: 1,
    window_s: 60,
    since: "2025-01-01T00:00:00.000Z",
    sample: [`line ${count}`],
  };
}

function webhook(url: string, clock: FakeClock, maxPending = 10): Webhook {
  return new Webhook({
    alert: "a",
    url,
    timeoutMs: 10_000,
    maxPending,
    clock,
    // Delays of exactly half the ceiling: 500 ms, 1 s, 2 s...
    policy: new RetryPolicy({ initialMs: 1000, maxMs: 60_000, random: () => 0 }),
  });
}

Deno.test("a webhook answered 500 is retried after its backoff, then delivered once", async () => {
  await using receiver = new Receiver();
  receiver.statuses.push(500, 503);
  const clock = new FakeClock();
  const hook = webhook(receiver.url, clock);
  try {
    hook.send(note(3));
    // The first attempt fails and waits on the clock: nothing more until time passes.
    await until(() => hook.counts.error === 1 && clock.waiting === 1, () => "no first failure");
    assert.equal(receiver.bodies.length, 1);
    clock.advance(499);
    assert.equal(clock.waiting, 1, "the backoff is 500 ms");
    clock.advance(1);
    await until(() => hook.counts.error === 2 && clock.waiting === 1, () => "no second failure");
    clock.advance(1000);
    await until(() => hook.counts.ok === 1, () => "never delivered");
    assert.equal(receiver.bodies.length, 3);
    for (const body of receiver.bodies) assert.deepEqual(body, note(3));
    assert.deepEqual(hook.counts, { ok: 1, error: 2, refused: 0, dropped: 0 });
    assert.equal(hook.lastStatus, 200);
    assert.equal(hook.lastError, undefined);
    assert.equal(hook.pending, 0);
  } finally {
    await hook.close();
  }
});

Deno.test("a webhook honours Retry-After; a 4xx is given up at once; notifications go in order", async () => {
  await using receiver = new Receiver();
  receiver.statuses.push(429, 404);
  receiver.headers = { "retry-after": "30" };
  const clock = new FakeClock();
  const hook = webhook(receiver.url, clock);
  try {
    hook.send(note(1));
    hook.send(note(2, "resolved"));
    await until(() => hook.counts.error === 1 && clock.waiting === 1, () => "no 429");
    assert.equal(hook.pending, 2);
    clock.advance(29_999);
    assert.equal(receiver.bodies.length, 1, "waits the 30 s asked");
    clock.advance(1);
    // The retry is refused for good (404): the next notification goes.
    await until(() => hook.counts.ok === 1, () => "the second notification never went");
    assert.deepEqual(receiver.bodies.map((b) => [b.count, b.state]), [
      [1, "firing"],
      [1, "firing"],
      [2, "resolved"],
    ]);
    assert.deepEqual(hook.counts, { ok: 1, error: 1, refused: 1, dropped: 0 });
  } finally {
    await hook.close();
  }
});

Deno.test("past max_pending the oldest notification is dropped and counted, its retries end", async () => {
  await using receiver = new Receiver();
  receiver.statuses.push(500);
  const clock = new FakeClock();
  const hook = webhook(receiver.url, clock, 2);
  try {
    hook.send(note(1));
    await until(() => hook.counts.error === 1 && clock.waiting === 1, () => "no failure");
    hook.send(note(2));
    hook.send(note(3));
    assert.deepEqual(hook.counts.dropped, 1);
    assert.equal(hook.pending, 2);
    // The dropped one's retry wait ended: the next one goes without time passing.
    await until(() => hook.counts.ok === 2, () => "the others never went");
    assert.deepEqual(receiver.bodies.map((b) => b.count), [1, 2, 3]);
    assert.equal(hook.pending, 0);
  } finally {
    await hook.close();
  }
});

Deno.test("a webhook that cannot connect or answers too late is retried; close ends it at once", async () => {
  const clock = new FakeClock();
  // A port nothing listens on: the receiver is gone.
  const gone = new Receiver();
  const url = gone.url;
  await gone[Symbol.asyncDispose]();
  const hook = webhook(url, clock);
  hook.send(note(1));
  await until(() => hook.counts.error === 1 && clock.waiting === 1, () => "no failure");
  assert.match(hook.lastError!, /^fetch failed: .*Connection refused/);
  assert.ok(!hook.lastError!.includes("/hook"), "the URL's path is not shown");
  await hook.close();
  assert.equal(hook.pending, 0);
  assert.equal(clock.waiting, 0, "no retry left waiting");
  // A receiver that never answers: the timeout (on the clock) ends the attempt.
  const { promise: never, resolve: release } = Promise.withResolvers<void>();
  const stuck = bindFreePort((port) =>
    Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async () => {
      await never;
      return new Response(null);
    })
  );
  const slow = webhook(`http://127.0.0.1:${stuck.addr.port}/`, clock);
  try {
    slow.send(note(1));
    await until(() => clock.waiting === 1, () => "no request under way");
    clock.advance(10_000);
    await until(() => slow.counts.error === 1, () => "the timeout did not end the attempt");
    assert.equal(slow.lastError, "no answer within 10000 ms");
  } finally {
    await slow.close();
    release();
    await stuck.shutdown();
  }
});
