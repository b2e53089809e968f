import assert from "node:assert/strict";
import { watchConfig } from "./config_watch.ts";

/** A watcher whose events the test sends, and whose iterator the test can make fail. */
class FakeWatcher implements Deno.FsWatcher {
  readonly #queue: Deno.FsEvent[] = [];
  #wake = Promise.withResolvers<void>();
  #error: Error | undefined;
  #closed = false;
  emit(event: Deno.FsEvent): void {
    this.#queue.push(event);
    this.#wake.resolve();
  }
  fail(): void {
    this.#error = new Error("the watch went away");
    this.#wake.resolve();
  }
  close(): void {
    this.#closed = true;
    this.#wake.resolve();
  }
  [Symbol.dispose](): void {
    this.close();
  }
  async *[Symbol.asyncIterator](): AsyncIterableIterator<Deno.FsEvent> {
    for (;;) {
      const event = this.#queue.shift();
      if (event !== undefined) {
        yield event;
        continue;
      }
      if (this.#error) throw this.#error;
      if (this.#closed) return;
      await this.#wake.promise;
      this.#wake = Promise.withResolvers<void>();
    }
  }
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("Timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("config watch watches again when its watcher fails, and reads the file then", async () => {
  const stop = new AbortController();
  const made: FakeWatcher[] = [];
  const calls: string[] = [];
  const watching = watchConfig("/etc/logboom/agent.yaml", (why) => calls.push(why), {
    signal: stop.signal,
    quietMs: 1,
    retryMs: 1,
    watchFs: (path) => {
      assert.equal(path, "/etc/logboom");
      const watcher = new FakeWatcher();
      made.push(watcher);
      return watcher;
    },
  });
  try {
    await until(() => made.length === 1);
    made[0].emit({ kind: "modify", paths: ["/etc/logboom/agent.yaml"] });
    await until(() => calls.length === 1);
    made[0].fail();
    await until(() => made.length === 2);
    // It may have changed while nobody watched: read again.
    await until(() => calls.length === 2);
    made[1].emit({ kind: "create", paths: ["/etc/logboom/agent.yaml"] });
    await until(() => calls.length === 3);
    // The folder replaced: watched anew as well.
    made[1].emit({ kind: "remove", paths: ["/etc/logboom"] });
    await until(() => made.length === 3);
    assert.deepEqual(calls.slice(0, 3), ["file", "file", "file"]);
  } finally {
    stop.abort();
    await watching;
  }
});
