import assert from "node:assert/strict";
import { compileFilter } from "./filter.ts";
import type { Run } from "./run.ts";
import { Subscriber, type SubscriberOptions } from "./subscriber.ts";
import type { LiveEvent } from "./subscription.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A run of `lines` numbered from `firstId`. */
function run(firstId: number, lines: string[], extra: Partial<Run> = {}): Run {
  const data = encoder.encode(lines.map((line) => line + "\n").join(""));
  return { data, firstId, count: lines.length, source: "app", host: "h", ts: 1000, ...extra };
}

function subscriber(options: Partial<SubscriberOptions> = {}) {
  const counters = { delivered: 0, dropped: 0 };
  const ended: string[] = [];
  const sub = new Subscriber(1, compileFilter({}, 8192), {
    after: 0,
    restarted: false,
    filterShare: undefined,
    queueBytes: 1024 * 1024,
    maxEventLines: 1000,
    noticeMs: 0,
    now: () => 0,
    counters,
    nextId: () => 1,
    onRoom: () => {},
    onEnd: (s) => ended.push(s.closeReason!),
    signal: undefined,
    ...options,
  });
  return { sub, counters, ended };
}

/** What a user would see of one event. */
function shown(event: LiveEvent): string[] {
  return event.type === "dropped"
    ? [`dropped ${event.count}`]
    : event.lines.map((l) => `${l.id} ${l.line}`);
}

function transcript(sub: Subscriber, options = {}): string[] {
  const out: string[] = [];
  for (let e = sub.poll(options); e !== undefined; e = sub.poll(options)) out.push(...shown(e));
  return out;
}

Deno.test("poll takes at most maxLines, across runs and in order; ready takes nothing", async () => {
  const { sub, counters } = subscriber();
  const ready = sub.ready();
  sub.push(run(1, ["keep 1"]));
  sub.push(run(3, ["keep 2", "keep 3"]));
  sub.push(run(5, ["keep 4", "keep 5"]));
  sub.wake();
  assert.equal(await ready, true);
  assert.equal(sub.queuedBytes, 5 * (6 + 64), "5 lines of 6 bytes queued");
  const sizes: number[] = [];
  for (let e = sub.poll({ maxLines: 2 }); e; e = sub.poll({ maxLines: 2 })) {
    sizes.push(shown(e).length);
  }
  assert.deepEqual(sizes, [2, 2, 1]);
  assert.equal(sub.queuedBytes, 0);
  assert.equal(counters.delivered, 5);
  assert.throws(() => sub.poll({ maxLines: 0.5 }), RangeError);
  sub.close();
  assert.equal(await sub.ready(), false, "ended with nothing queued");
});

Deno.test("maxEventLines bounds every event, whatever the reader asks", () => {
  const { sub } = subscriber({ maxEventLines: 2 });
  sub.push(run(1, ["a", "b", "c"]));
  assert.deepEqual(transcript(sub), ["1 a", "2 b", "3 c"]);
  sub.push(run(4, ["d", "e", "f"]));
  const first = sub.poll();
  assert.equal(first?.type === "lines" && first.lines.length, 2);
});

Deno.test("a dropped count sits where the gap is; one with no lines behind it waits noticeMs", () => {
  let clock = 1000;
  const { sub, counters } = subscriber({ noticeMs: 1000, now: () => clock });
  sub.push(run(1, ["line 01"]));
  sub.drop(2);
  sub.push(run(4, ["line 04"]));
  assert.deepEqual(transcript(sub), ["1 line 01", "dropped 2", "4 line 04"]);
  sub.drop(1);
  sub.drop(1);
  assert.equal(sub.poll(), undefined, "a notice right after the last one waits");
  clock += 999;
  assert.equal(sub.poll(), undefined);
  clock += 1;
  assert.deepEqual(transcript(sub), ["dropped 2"], "counts that follow one another merge");
  assert.equal(sub.droppedLines, 4);
  assert.equal(counters.dropped, 4);
});

Deno.test("keepLines drops the oldest live lines, never backlog, and counts them where the gap is", () => {
  const { sub } = subscriber();
  sub.preload([run(1, ["old 1", "old 2"], { backlog: true })], 0);
  sub.push(run(3, ["a", "b", "c"]));
  sub.push(run(6, ["d", "e"]));
  assert.deepEqual(transcript(sub, { keepLines: 2 }), [
    "1 old 1",
    "2 old 2",
    "dropped 3",
    "6 d",
    "7 e",
  ]);
  assert.equal(sub.droppedLines, 3);
  assert.equal(sub.queuedBytes, 0);

  // Notices next to the lines evicted join them; the run cut in two keeps its newest lines.
  const { sub: full } = subscriber();
  full.push(run(1, ["a", "b", "c"]));
  full.drop(1);
  full.push(run(5, ["e"]));
  assert.deepEqual(transcript(full, { keepLines: 1 }), ["dropped 4", "5 e"]);
  assert.throws(() => full.poll({ keepLines: -1 }), RangeError);
});

Deno.test("pollRaw hands lines as bytes, a run at a time, and notices where they are", () => {
  const { sub, counters } = subscriber();
  sub.push(run(1, ["a1", "a2"], { source: "web" }));
  sub.push(run(3, ["b1"], { source: "db" }));
  sub.drop(2);
  const first = sub.pollRaw({ maxLines: 1 });
  assert.ok(first?.type === "raw");
  assert.deepEqual(
    [decoder.decode(first.data), first.firstId, first.count, first.source],
    ["a1\n", 1, 1, "web"],
  );
  const second = sub.pollRaw();
  assert.ok(second?.type === "raw");
  assert.deepEqual([decoder.decode(second.data), second.firstId], ["a2\n", 2]);
  const third = sub.pollRaw();
  assert.ok(third?.type === "raw");
  assert.deepEqual([decoder.decode(third.data), third.source], ["b1\n", "db"]);
  assert.deepEqual(sub.pollRaw(), { type: "dropped", count: 2 });
  assert.equal(sub.pollRaw(), undefined);
  assert.equal(counters.delivered, 3);
});

Deno.test("an aborted signal ends a pending read, a for-await loop and the stream", async () => {
  const controller = new AbortController();
  const { sub, ended } = subscriber({ signal: controller.signal });
  const seen: string[] = [];
  const loop = (async () => {
    for await (const event of sub) {
      seen.push(...shown(event));
      if (seen.length === 2) controller.abort();
    }
  })();
  sub.push(run(1, ["one", "two"]));
  sub.wake();
  await loop;
  assert.deepEqual(seen, ["1 one", "2 two"]);
  assert.equal(sub.closeReason, "aborted");
  assert.deepEqual(ended, ["aborted"], "the hub is told once");

  const { sub: streamed } = subscriber();
  const reader = streamed.readable.getReader();
  const read = reader.read();
  streamed.push(run(3, ["three"]));
  streamed.wake();
  assert.equal((await read).value?.type, "lines");
  await reader.cancel();
  assert.equal(streamed.closeReason, "closed");

  const { sub: waiting } = subscriber();
  const cancelled = waiting.readable.getReader();
  const never = cancelled.read();
  await cancelled.cancel();
  assert.equal((await never).done, true);
});

Deno.test("leaving a for-await loop early closes the subscription", async () => {
  const { sub, ended } = subscriber();
  sub.push(run(1, ["a", "b"]));
  for await (const _ of sub) break;
  assert.equal(sub.closed, true);
  assert.deepEqual(ended, ["closed"]);
});

Deno.test("a second concurrent reader is refused", async () => {
  const { sub } = subscriber();
  const first = sub.read();
  await assert.rejects(sub.read(), TypeError);
  sub.close();
  assert.equal(await first, undefined);
});

Deno.test("at hub close the reader drains the queue; a stalled subscriber's queue counts as missed", async () => {
  const { sub: draining } = subscriber();
  draining.push(run(1, ["last"]));
  draining.end("hub closed");
  assert.deepEqual(transcript(draining), ["1 last"]);
  assert.equal(await draining.read(), undefined);

  const { sub: stalled, counters } = subscriber();
  stalled.push(run(1, ["a", "b"]));
  stalled.end("stalled");
  assert.equal(stalled.droppedLines, 2);
  assert.equal(counters.dropped, 2);
  assert.equal(await stalled.read(), undefined, "what it held is gone");
});

Deno.test("a parked subscriber misses every line ingested meanwhile, counted when it reads", () => {
  let nextId = 3;
  let roomCalls = 0;
  const { sub } = subscriber({ nextId: () => nextId, onRoom: () => roomCalls++ });
  sub.push(run(1, ["a", "b"]));
  sub.park(3);
  nextId = 10;
  assert.equal(sub.droppedLines, 7, "counted while it waits");
  assert.deepEqual(transcript(sub), ["1 a", "2 b", "dropped 7"]);
  assert.equal(roomCalls, 1, "the hub offers it lines again");
  assert.equal(sub.missedWhileParked, 0);
});
