/**
 * Test helpers for the file tailer: an in-memory target with the server's idempotency rule, a
 * writer of unique lines and their tally, a bounded poll, and a state folder as kill -9 leaves it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { FakeClock } from "../_fake_clock.ts";
import type { DeliveredBatch, StreamTarget } from "./tailer.ts";

const decoder = new TextDecoder();

/**
 * Copies the agent's state folder `stateDir` into `copy` as kill -9 leaves it: every file as it
 * is on disk now, the lock aside.
 */
export async function copyState(stateDir: string, copy: string): Promise<void> {
  await Deno.mkdir(copy, { recursive: true });
  for (const entry of Deno.readDirSync(stateDir)) {
    if (entry.isFile && entry.name !== "lock") {
      await Deno.copyFile(join(stateDir, entry.name), join(copy, entry.name));
    }
  }
}

/** A target that stores lines in memory and refuses replays as the server does. */
export class MemoryTarget implements StreamTarget {
  /** Lines stored, in order. */
  readonly lines: string[] = [];
  /** High-water mark per stream. */
  readonly marks = new Map<string, number>();
  /** Batches delivered (duplicates included). */
  readonly batches: DeliveredBatch[] = [];
  #paused: { promise: Promise<void>; resolve: () => void } | undefined;

  /** Holds deliveries until {@linkcode resume}, as a server that does not answer. */
  pause(): void {
    this.#paused ??= Promise.withResolvers<void>();
  }

  /** Lets deliveries through again. */
  resume(): void {
    this.#paused?.resolve();
    this.#paused = undefined;
  }

  /** Copies the batch: the data is borrowed. */
  prepare(data: Uint8Array): Promise<unknown> {
    return Promise.resolve(data.slice());
  }

  /** Stores the batch unless its stream's mark is already at or past its offset. */
  async deliver(payload: unknown, batch: DeliveredBatch, signal: AbortSignal): Promise<void> {
    while (this.#paused !== undefined) {
      const { promise } = this.#paused;
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        promise.then(() => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    }
    signal.throwIfAborted();
    this.batches.push(batch);
    const mark = this.marks.get(batch.stream);
    if (mark !== undefined && batch.offset <= mark) return;
    this.marks.set(batch.stream, batch.offset);
    const text = decoder.decode(payload as Uint8Array);
    for (const line of text.split("\n")) if (line !== "") this.lines.push(line);
  }
}

/** Polls `condition` every 10 ms until it holds; fails with `message()` after `timeoutMs`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  message: () => string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`Timed out after ${timeoutMs} ms: ${message()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Lines `from` to `to - 1` of writer `id`: `w<id> <n> <filler>`. */
export function lines(id: number, from: number, to: number): string {
  let text = "";
  for (let i = from; i < to; i++) text += `w${id} ${i} ${"x".repeat(20 + (i % 7))}\n`;
  return text;
}

/** Counts each expected line of writer `id` (0 to `count`) in `seen`: missing and duplicated. */
export function tally(
  seen: readonly string[],
  id: number,
  count: number,
): { missing: number[]; duplicated: number[]; other: number } {
  const counts = new Map<number, number>();
  let other = 0;
  for (const line of seen) {
    const match = /^w(\d+) (\d+) x+$/.exec(line);
    if (!match || Number(match[1]) !== id) {
      other++;
      continue;
    }
    const n = Number(match[2]);
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  const missing: number[] = [];
  const duplicated: number[] = [];
  for (let i = 0; i < count; i++) {
    const c = counts.get(i) ?? 0;
    if (c === 0) missing.push(i);
    if (c > 1) duplicated.push(i);
  }
  return { missing, duplicated, other };
}

/**
 * Polls `condition` as {@linkcode until} does, moving `clock` `stepMs` forward before each look:
 * time passes for the code under test only while the test looks, never during its own steps.
 */
export async function drive(
  clock: FakeClock,
  condition: () => boolean | Promise<boolean>,
  message: () => string,
  stepMs = 100,
): Promise<void> {
  await until(async () => {
    if (await condition()) return true;
    clock.advance(stepMs);
    return false;
  }, message);
}

/**
 * Awaits `done` (a stop, a close) while moving `clock` forward as {@linkcode drive} does: what it
 * waits for on the clock (a grace period for batches in flight) comes, as time would pass for a
 * real stop, instead of leaving the test waiting on a clock nobody moves.
 */
export async function whileDriving<T>(clock: FakeClock, done: Promise<T>): Promise<T> {
  let settled = false;
  const result = done.finally(() => settled = true);
  await drive(clock, () => settled, () => "still waiting");
  return await result;
}

/**
 * Moves `clock` `ms` forward at once, then waits until `tasks()` timers wait again: every task the
 * jump woke looked at the new time and went back to sleep (or ended, when `tasks` counts only the
 * tasks still running).
 */
export async function jump(clock: FakeClock, ms: number, tasks: () => number): Promise<void> {
  clock.advance(ms);
  await until(() => clock.waiting >= tasks(), () => `${clock.waiting} of ${tasks()} tasks wait`);
}
