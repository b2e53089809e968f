import assert from "node:assert/strict";
import type { Batch } from "./batch.ts";
import { Router } from "./router.ts";
import { TestSink } from "./_test_sink.ts";

/** Keeps lines, stores them only when the test says so (`store()`), and drains on close. */
class SlowSink extends TestSink {
  readonly name: string;
  readonly lines: string[] = [];
  readonly stored: string[] = [];
  #waiters: (() => void)[] = [];
  closed = false;

  constructor(name: string) {
    super();
    this.name = name;
  }

  write(batch: Batch): boolean {
    if (this.closed) throw new Error(`${this.name} is closed`);
    this.lines.push(new TextDecoder().decode(batch.data));
    return !this.full;
  }

  /** Stores everything taken so far. */
  store(): void {
    this.stored.push(...this.lines.splice(0));
    for (const wake of this.#waiters.splice(0)) wake();
  }

  override flush(): Promise<void> {
    if (this.lines.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Closing waits until the test stores what is left. */
  override async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}

function batch(text: string): Batch {
  return {
    data: new TextEncoder().encode(text),
    lines: 1,
    meta: { source: "s", host: "h", input: "i" },
    receivedAt: 0,
  };
}

/** Whether `promise` has settled after the microtasks queued now ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => done = true, () => done = true);
  await new Promise((resolve) => setTimeout(resolve, 0));
  return done;
}

Deno.test("after a swap new batches go to the new sinks; the old one drains and closes", async () => {
  const [old, next, both] = [new SlowSink("old"), new SlowSink("new"), new SlowSink("both")];
  const router = new Router([old, both]);
  router.write(batch("a\n"));
  const swapped = router.swap([next, both]);
  assert.ok(old.closed, "the sink that left is closing");
  assert.ok(!both.closed, "a sink in both sets goes on");
  router.write(batch("b\n"));
  assert.deepEqual([old.lines, next.lines, both.lines], [["a\n"], ["b\n"], ["a\n", "b\n"]]);
  old.store();
  await swapped;
  assert.deepEqual(router.sinks, [next, both]);
  next.store();
  both.store();
  await router.close();
});

Deno.test("an acknowledgement after a swap waits for the sink that left to store its batches", async () => {
  const [old, next] = [new SlowSink("old"), new SlowSink("new")];
  const router = new Router([old]);
  const first = batch("taken by the old sink\n");
  router.write(first);
  const swapped = router.swap([next]);
  // The new sink never saw `first`: its flush resolves at once, the router's must not.
  const ack = router.flush([first]);
  assert.equal(await settled(ack), false, "acknowledged before the old sink stored the batch");
  old.store();
  await ack;
  await swapped;
  assert.deepEqual(old.stored, ["taken by the old sink\n"]);
  // Once the old sink has closed, acknowledgements wait for the new one only.
  assert.equal(await settled(router.flush()), true);
  await router.close();
});

Deno.test("a leaving sink whose queue is full holds producers back until it drains", async () => {
  const [old, next] = [new SlowSink("old"), new SlowSink("new")];
  const router = new Router([old]);
  old.full = true;
  const swapped = router.swap([next]);
  assert.equal(router.full, true);
  assert.equal(router.write(batch("x\n")), false, "room while the old queue is at its bound");
  old.full = false;
  assert.equal(router.full, false);
  old.store();
  await swapped;
  next.store();
  await router.close();
});

Deno.test("closing the router waits for the sinks swapped out", async () => {
  const [old, next] = [new SlowSink("old"), new SlowSink("new")];
  const router = new Router([old]);
  router.write(batch("a\n"));
  const swapped = router.swap([next]);
  const closed = router.close();
  assert.equal(await settled(closed), false);
  old.store();
  await closed;
  await swapped;
});
