import assert from "node:assert/strict";
import type { Batch } from "../pipeline/batch.ts";
import { HubClosedError, LiveHub, TooManySubscribersError } from "./hub.ts";
import type { LiveEvent, LiveLine, Subscription } from "./subscription.ts";

const encoder = new TextEncoder();

function batch(lines: string[], source = "app", receivedAt = 1000): Batch {
  return {
    data: encoder.encode(lines.map((line) => line + "\n").join("")),
    lines: lines.length,
    meta: { source, host: "10.0.0.1", input: "test" },
    receivedAt,
  };
}

function numbered(from: number, to: number, prefix = "line"): string[] {
  const out: string[] = [];
  for (let i = from; i <= to; i++) out.push(`${prefix} ${i}`);
  return out;
}

/** Every event queued right now, without waiting for more. */
function drain(sub: Subscription): LiveEvent[] {
  const events: LiveEvent[] = [];
  for (let event = sub.poll(); event !== undefined; event = sub.poll()) events.push(event);
  return events;
}

/** What a user would see: line texts, and `dropped N` where lines are missing. */
function transcript(sub: Subscription): string[] {
  return drain(sub).flatMap((event) =>
    event.type === "dropped" ? [`dropped ${event.count}`] : event.lines.map((l) => l.line)
  );
}

function ids(events: LiveEvent[]): number[] {
  return events.flatMap((event) => event.type === "lines" ? event.lines.map((l) => l.id) : []);
}

Deno.test("LiveHub numbers lines and delivers them with their origin", async () => {
  const hub = new LiveHub();
  assert.equal(hub.write(batch(["before"])), true, "true with nobody listening");
  const sub = hub.subscribe();
  assert.equal(hub.write(batch(["a", "b"], "nginx", 5000)), true);
  const event = await sub.read();
  const expected: LiveLine[] = [
    { id: 2, source: "nginx", host: "10.0.0.1", ts: 5000, line: "a" },
    { id: 3, source: "nginx", host: "10.0.0.1", ts: 5000, line: "b" },
  ];
  assert.deepEqual(event, { type: "lines", lines: expected });
  assert.equal(hub.stats.lastId, 3);
  assert.equal(hub.stats.linesDelivered, 2);
  sub.close();
  await hub.close();
});

Deno.test("LiveHub copies what it keeps: the input may reuse its buffer after write", async () => {
  const hub = new LiveHub();
  const sub = hub.subscribe();
  const b = batch(["hello"]);
  hub.write(b);
  b.data.fill(0x3f);
  const late = hub.subscribe({ backfill: 10 });
  assert.deepEqual(ids([(await sub.read())!]), [1]);
  const [event] = drain(late);
  assert.equal(event.type === "lines" && event.lines[0].line, "hello");
  sub.close();
  late.close();
  await hub.close();
});

Deno.test("LiveHub wakes a waiting reader and decodes invalid UTF-8 without failing", async () => {
  const hub = new LiveHub();
  const sub = hub.subscribe();
  const waiting = sub.read();
  hub.write({ ...batch([]), data: new Uint8Array([0x61, 0xff, 0x0a]), lines: 1 });
  const event = await waiting;
  assert.equal(event?.type === "lines" && event.lines[0].line, "a\ufffd");
  sub.close();
  await hub.close();
});

Deno.test("a slow subscriber misses lines and is told exactly how many; a fast one misses none", async () => {
  const hub = new LiveHub({ maxEventLines: 10_000 });
  const fast = hub.subscribe();
  // Room for 10 lines of "line NN" (7 + 64 bytes each).
  const slow = hub.subscribe({ queueBytes: 710 });
  const fastIds: number[] = [];
  for (let i = 0; i < 10; i++) {
    assert.equal(hub.write(batch(numbered(i * 10 + 1, i * 10 + 10))), true);
    fastIds.push(...ids(drain(fast)));
  }
  assert.deepEqual(fastIds, numbered(1, 100).map((_, i) => i + 1), "fast subscriber unaffected");

  const first = transcript(slow);
  assert.deepEqual(first, [...numbered(1, 10), "dropped 90"]);
  assert.equal(slow.droppedLines, 90);
  hub.write(batch(["after"]));
  const after = drain(slow);
  assert.deepEqual(after.length === 1 && after[0].type === "lines" && after[0].lines, [
    { id: 101, source: "app", host: "10.0.0.1", ts: 1000, line: "after" },
  ]);
  assert.equal(hub.stats.linesDropped, 90);
  assert.equal(hub.stats.linesDelivered, 100 + 10 + 1);
  fast.close();
  slow.close();
  await hub.close();
});

Deno.test("a dropped event sits where the gap is, between the lines around it", async () => {
  let clock = 1000;
  const hub = new LiveHub({ now: () => clock });
  const sub = hub.subscribe({ queueBytes: 142 }); // two lines of 7 characters
  hub.write(batch(["line 01", "line 02", "line 03"]));
  assert.deepEqual((await sub.read())?.type, "lines", "first run read: room again");
  hub.write(batch(["line 04", "line 05", "line 06"]));
  assert.deepEqual(transcript(sub), ["dropped 1", "line 04", "line 05"]);
  // A notice with no lines behind it waits a second after the previous one, so a subscriber
  // kept over its budget is not sent one per batch.
  assert.equal(sub.poll(), undefined);
  clock += 999;
  assert.equal(sub.poll(), undefined);
  clock += 1;
  assert.deepEqual(transcript(sub), ["dropped 1"]);
  sub.close();
  await hub.close();
});

Deno.test("a held-back dropped notice is delivered even if no batch follows", async () => {
  const hub = new LiveHub({ noticeMs: 250 });
  const sub = hub.subscribe({ queueBytes: 71 });
  hub.write(batch(["line 01", "line 02"]));
  assert.deepEqual(transcript(sub), ["line 01", "dropped 1"]);
  hub.write(batch(["line 03", "line 04"]));
  assert.deepEqual(transcript(sub), ["line 03"]);
  const started = Date.now();
  assert.deepEqual(await sub.read(), { type: "dropped", count: 1 });
  assert.ok(Date.now() - started >= 200, "it came after the pause, by the timer");
  sub.close();
  await hub.close();
});

Deno.test("LiveHub filters by source, substring and regex", async () => {
  const hub = new LiveHub();
  const bySource = hub.subscribe({ source: "db" });
  const byGrep = hub.subscribe({ grep: "ERROR" });
  const byRegex = hub.subscribe({ regex: "^user=\\d+$" });
  const both = hub.subscribe({ grep: "ERROR", regex: /disk/gi });
  hub.write(batch(["ERROR disk full", "user=12", "ok"], "app"));
  hub.write(batch(["ERROR Disk slow", "user=x"], "db"));
  assert.deepEqual(transcript(bySource), ["ERROR Disk slow", "user=x"]);
  assert.deepEqual(transcript(byGrep), ["ERROR disk full", "ERROR Disk slow"]);
  assert.deepEqual(transcript(byRegex), ["user=12"]);
  assert.deepEqual(
    transcript(both),
    ["ERROR disk full", "ERROR Disk slow"],
    "a global RegExp must not skip lines through lastIndex",
  );
  for (const sub of [bySource, byGrep, byRegex, both]) sub.close();
  await hub.close();
});

Deno.test("an invalid regex or option is refused with a clear error", async () => {
  const hub = new LiveHub();
  assert.throws(() => hub.subscribe({ regex: "(unclosed" }), {
    name: "SyntaxError",
    message: /^Invalid regex "\(unclosed": /,
  });
  assert.throws(() => hub.subscribe({ backfill: -1 }), RangeError);
  assert.throws(() => hub.subscribe({ lastEventId: 1.5 }), RangeError);
  assert.throws(() => hub.subscribe({ queueBytes: 0 }), RangeError);
  assert.throws(() => hub.subscribe({ grep: 5 as unknown as string }), TypeError);
  assert.throws(() => new LiveHub({ maxSubscribers: 0 }), RangeError);
  assert.equal(hub.stats.subscribers, 0, "a refused subscription takes no slot");
  await hub.close();
});

Deno.test("backfill gives the last n matching lines still in memory, then live lines", async () => {
  const hub = new LiveHub({ ringLines: 50 });
  for (let i = 1; i <= 100; i += 10) hub.write(batch(numbered(i, i + 9)));
  const sub = hub.subscribe({ backfill: 3, regex: "[05]$" });
  hub.write(batch(["line 110", "line 111"]));
  assert.deepEqual(transcript(sub), ["line 90", "line 95", "line 100", "line 110"]);
  const all = hub.subscribe({ backfill: 1000 });
  // At least the newest 50 lines; the ring drops whole batches, so here 51 to 102.
  assert.deepEqual(ids(drain(all)), numbered(51, 102).map((_, i) => i + 51));
  sub.close();
  all.close();
  await hub.close();
});

Deno.test("backfill is limited by the subscriber's queue and keeps the newest lines", async () => {
  const hub = new LiveHub();
  hub.write(batch(numbered(10, 29)));
  const sub = hub.subscribe({ backfill: 20, queueBytes: 71 * 3 });
  assert.deepEqual(transcript(sub), ["line 27", "line 28", "line 29"]);
  sub.close();
  await hub.close();
});

Deno.test("resume by last event id sends what followed it, after a dropped count for what is gone", async () => {
  const hub = new LiveHub({ ringLines: 10 });
  hub.write(batch(numbered(1, 25)));
  const resumed = hub.subscribe({ lastEventId: 12, backfill: 2 });
  const events = drain(resumed);
  assert.deepEqual(events[0], { type: "dropped", count: 3 }, "lines 13 to 15 fell out");
  assert.deepEqual(ids(events), numbered(16, 25).map((_, i) => i + 16), "backfill is ignored");

  const inRing = hub.subscribe({ lastEventId: 22 });
  assert.deepEqual(transcript(inRing), ["line 23", "line 24", "line 25"]);
  const upToDate = hub.subscribe({ lastEventId: 25 });
  const foreign = hub.subscribe({ lastEventId: 9999, backfill: 1 });
  hub.write(batch(["line 26"]));
  assert.deepEqual(transcript(upToDate), ["line 26"]);
  assert.deepEqual(transcript(foreign), ["line 25", "line 26"], "unknown id: backfill");
  assert.equal(hub.stats.linesDropped, 3);
  for (const sub of [resumed, inRing, upToDate, foreign]) sub.close();
  await hub.close();
});

Deno.test("resume with a filter counts only matching lines it could not queue", async () => {
  const hub = new LiveHub();
  hub.write(batch(["x 1", "y 2", "x 3", "y 4", "x 5", "x 6"]));
  const sub = hub.subscribe({ lastEventId: 1, grep: "x", queueBytes: 67 * 2 });
  assert.deepEqual(transcript(sub), ["dropped 1", "x 5", "x 6"]);
  sub.close();
  await hub.close();
});

Deno.test("the subscriber cap refuses with TooManySubscribersError until a slot frees", async () => {
  const hub = new LiveHub({ maxSubscribers: 2 });
  const a = hub.subscribe();
  const b = hub.subscribe();
  assert.throws(() => hub.subscribe(), (err: unknown) => {
    assert.ok(err instanceof TooManySubscribersError);
    assert.equal(err.name, "TooManySubscribersError");
    assert.equal(err.limit, 2);
    return true;
  });
  a.close();
  const c = hub.subscribe();
  assert.equal(hub.stats.subscribers, 2);
  b.close();
  c.close();
  await hub.close();
  assert.throws(() => hub.subscribe(), HubClosedError);
});

Deno.test("a subscriber whose queue stays full past the stall time is closed; others go on", async () => {
  let now = 0;
  const hub = new LiveHub({ stallMs: 15_000, now: () => now });
  const stuck = hub.subscribe({ queueBytes: 71 });
  const live = hub.subscribe();
  hub.write(batch(["line 01", "line 02"]));
  now = 15_000;
  hub.write(batch(["line 03"]));
  assert.equal(stuck.closed, false, "full for exactly the stall time: still open");
  now = 15_001;
  hub.write(batch(["line 04"]));
  assert.equal(stuck.closeReason, "stalled");
  assert.equal(await stuck.read(), undefined);
  assert.equal(stuck.droppedLines, 3, "the line it held is lost too");
  assert.equal(hub.stats.subscribersStalled, 1);
  assert.deepEqual(transcript(live), ["line 01", "line 02", "line 03", "line 04"]);
  live.close();
  await hub.close();
});

Deno.test("a subscriber that reads again is not stalled, however long it was full before", async () => {
  let now = 0;
  const hub = new LiveHub({ stallMs: 100, now: () => now });
  const sub = hub.subscribe({ queueBytes: 71 });
  hub.write(batch(["line 01", "line 02"]));
  now = 1000;
  await sub.read();
  hub.write(batch(["line 03"]));
  assert.equal(sub.closed, false);
  assert.deepEqual(transcript(sub), ["dropped 1", "line 03"]);
  sub.close();
  await hub.close();
});

Deno.test("at the cap, stalled subscribers are closed to make room", async () => {
  let now = 0;
  const hub = new LiveHub({ maxSubscribers: 1, stallMs: 10, now: () => now });
  const stuck = hub.subscribe({ queueBytes: 71 });
  hub.write(batch(["line 01", "line 02"]));
  now = 11;
  const fresh = hub.subscribe();
  assert.equal(stuck.closeReason, "stalled");
  fresh.close();
  await hub.close();
});

Deno.test("closing the hub lets readers drain what is queued, then ends them", async () => {
  const hub = new LiveHub();
  const sub = hub.subscribe();
  const idle = hub.subscribe();
  const waiting = idle.read();
  hub.write(batch(["last"]));
  await waiting;
  const waitingAgain = idle.read();
  await hub.close();
  assert.equal(await waitingAgain, undefined);
  assert.equal(hub.write(batch(["ignored"])), true, "still true after close");
  assert.deepEqual(transcript(sub), ["last"]);
  assert.equal(await sub.read(), undefined);
  assert.equal(sub.closeReason, "hub closed");
  assert.equal(hub.stats.subscribers, 0);
});

Deno.test("writes with no subscribers touch only the ring", async () => {
  const hub = new LiveHub({ ringLines: 3 });
  for (let i = 0; i < 10; i++) assert.equal(hub.write(batch(numbered(1, 100))), true);
  assert.equal(hub.stats.ringLines, 3);
  assert.equal(hub.stats.lastId, 1000);
  assert.equal(hub.stats.linesDelivered, 0);
  await hub.writable();
  await hub.flush();
  await hub.close();
});

Deno.test("LiveHub counts exactly what a full subscriber misses, per filter, with no holes", async () => {
  const hub = new LiveHub({ queueBytes: 64 + 64 + 10 });
  const subs = [
    hub.subscribe(),
    hub.subscribe({ grep: "ERR" }),
    hub.subscribe({ grep: "ERR", regex: "7$" }),
    hub.subscribe({ regex: "^x" }),
  ];
  const lines = Array.from({ length: 30 }, (_, i) => `${i % 3 ? "x" : "ERR"} ${i}`);
  hub.write(batch(lines.slice(0, 10)));
  hub.write(batch(lines.slice(10)));
  const matching = [
    lines,
    lines.filter((l) => l.includes("ERR")),
    lines.filter((l) => l.includes("ERR") && /7$/.test(l)),
    lines.filter((l) => l.startsWith("x")),
  ];
  for (const [i, sub] of subs.entries()) {
    const seen = transcript(sub);
    // Two lines fit the queue; everything after the first line that did not is counted.
    const kept = matching[i].slice(0, 2);
    const expected = matching[i].length > kept.length
      ? [...kept, `dropped ${matching[i].length - kept.length}`]
      : kept;
    assert.deepEqual(seen, expected, `subscriber ${i}`);
    assert.equal(sub.droppedLines, matching[i].length - kept.length);
  }
  await hub.close();
});

Deno.test("a full subscriber with no filter misses exactly what passes while it waits, counted at once", async () => {
  const hub = new LiveHub();
  const sub = hub.subscribe({ queueBytes: 71 }); // room for one line of 7 characters
  const other = hub.subscribe({ grep: "line" });
  hub.write(batch(["line 01", "line 02"]));
  for (let i = 0; i < 5; i++) hub.write(batch(["x", "y"]));
  assert.equal(sub.droppedLines, 11, "counted while it waits, not only once it reads");
  assert.equal(hub.stats.linesDropped, 11);
  assert.deepEqual(transcript(sub), ["line 01", "dropped 11"]);
  hub.write(batch(["line 03"]));
  assert.deepEqual(transcript(sub), ["line 03"], "offered lines again once it read");
  assert.equal(hub.stats.linesDropped, 11);
  assert.deepEqual(transcript(other), ["line 01", "line 02", "line 03"]);
  sub.close();
  other.close();
  await hub.close();
});

Deno.test("a regex filter gets its share of filter time: lines it has no time for are counted as dropped, nobody waits", async () => {
  // Each reading of the filter clock is 2 ms later: a line costs 2 ms of filtering.
  let t = 0;
  const hub = new LiveHub({
    filterMsPerSecond: 1,
    filterBurstMs: 5,
    filterClock: () => t += 2,
    now: () => t,
    noticeMs: 0,
  });
  const filtered = hub.subscribe({ regex: "^line" });
  const plain = hub.subscribe();
  hub.write(batch(numbered(1, 20)));
  // 5 ms of burst: three lines are looked at (the third overran it by 1 ms, which is owed), the
  // other seventeen are counted where they are, not dropped silently.
  assert.deepEqual(transcript(filtered), [...numbered(1, 3), "dropped 17"]);
  assert.equal(hub.stats.linesUnfiltered, 17);
  assert.equal(transcript(plain).length, 20, "a subscriber without a regex loses nothing");
  // In debt, the next batch is not looked at; the subscriber is not taken for stalled.
  hub.write(batch(numbered(21, 30)));
  assert.deepEqual(transcript(filtered), ["dropped 10"]);
  assert.equal(filtered.closed, false);
  // Later, earned time filters again (1 ms per second).
  t += 20_000;
  hub.write(batch(["line 31"]));
  assert.deepEqual(transcript(filtered), ["line 31"]);
  assert.equal(transcript(plain).length, 11);
  for (const sub of [filtered, plain]) sub.close();
  await hub.close();
});

Deno.test("backfill and resume through a regex stay within its filter time", async () => {
  let t = 0;
  const hub = new LiveHub({
    filterMsPerSecond: 1,
    filterBurstMs: 3,
    filterClock: () => t++,
    now: () => t,
  });
  hub.write(batch(numbered(1, 10)));
  const backfill = hub.subscribe({ regex: "line", backfill: 10 });
  const lines = transcript(backfill);
  assert.ok(lines.length >= 2 && lines.length <= 4, `${lines}`);
  assert.deepEqual(lines, numbered(11 - lines.length, 10), "the newest, without holes");
  t += 10_000;
  const resumed = hub.subscribe({ regex: "line", lastEventId: `${hub.epoch}-2` });
  const events = transcript(resumed);
  const got = events.length - 1;
  assert.deepEqual(events, [`dropped ${8 - got}`, ...numbered(11 - got, 10)]);
  for (const sub of [backfill, resumed]) sub.close();
  await hub.close();
});

Deno.test("cursors carry the run's epoch: another run's cursor resumes from this run's first line", async () => {
  const hub = new LiveHub({ ringLines: 5, epoch: "run2" });
  assert.equal(hub.epoch, "run2");
  assert.match(new LiveHub().epoch, /^[0-9a-z]{8,24}$/);
  assert.notEqual(new LiveHub().epoch, new LiveHub().epoch);
  hub.write(batch(numbered(1, 3)));
  // The previous run had reached line 40: a bare id would resume after line 40 and skip these.
  const restarted = hub.subscribe({ lastEventId: "run1-40" });
  assert.equal(restarted.restarted, true);
  assert.equal(restarted.after, 0);
  assert.deepEqual(transcript(restarted), numbered(1, 3));
  const legacy = hub.subscribe({ lastEventId: "2" });
  assert.equal(legacy.restarted, true, "a bare id comes from a server without epochs");
  assert.deepEqual(transcript(legacy), numbered(1, 3));
  const same = hub.subscribe({ lastEventId: "run2-2" });
  assert.equal(same.restarted, false);
  assert.equal(same.after, 2);
  assert.deepEqual(transcript(same), ["line 3"]);
  const fresh = hub.subscribe();
  assert.equal(fresh.after, 3);
  // More than the ring holds: the lines of this run no longer there are counted first.
  hub.write(batch(numbered(4, 10)));
  const late = hub.subscribe({ lastEventId: "run1-99" });
  assert.deepEqual(transcript(late), ["dropped 5", ...numbered(6, 10)]);
  for (const bad of ["run1-", "-3", "RUN-1", "run 1-2", "1.5", "a-b"]) {
    assert.throws(() => hub.subscribe({ lastEventId: bad }), RangeError, bad);
  }
  for (const sub of [restarted, legacy, same, fresh, late]) sub.close();
  await hub.close();
});

Deno.test("the ring copies within its rate; a resume counts what it skipped where it was", async () => {
  let now = 0;
  // 1,000 bytes per second, and a burst of the ring's 100 bytes: 8-byte lines.
  const hub = new LiveHub({ ringBytes: 100, ringBytesPerSecond: 1000, now: () => now });
  hub.write(batch(numbered(1, 5, "idle")));
  hub.write(batch(numbered(6, 10, "idle"))); // 50 + 50 bytes: the burst is spent
  hub.write(batch(numbered(11, 15, "idle"))); // skipped
  now += 60; // 60 bytes earned: one more batch
  hub.write(batch(numbered(16, 20, "idle")));
  assert.equal(hub.stats.lastId, 20);
  assert.equal(hub.stats.ringLines, 10, "lines 11 to 15 were not copied, 1 to 5 evicted");
  const resumed = hub.subscribe({ lastEventId: `${hub.epoch}-7` });
  assert.deepEqual(transcript(resumed), [
    "idle 8",
    "idle 9",
    "idle 10",
    "dropped 5",
    ...numbered(16, 20, "idle"),
  ]);
  const backfill = hub.subscribe({ backfill: 3 });
  assert.deepEqual(transcript(backfill), numbered(18, 20, "idle"));
  // A subscriber gets every line from the batches, whatever the ring keeps.
  for (let i = 0; i < 5; i++) hub.write(batch(numbered(21 + i * 5, 25 + i * 5, "busy")));
  assert.deepEqual(transcript(backfill), numbered(21, 45, "busy"));
  // Below the rate, the ring keeps every batch.
  now += 1000;
  for (let i = 0; i < 2; i++) hub.write(batch(numbered(46 + i * 5, 50 + i * 5, "calm")));
  const later = hub.subscribe({ lastEventId: `${hub.epoch}-45` });
  assert.deepEqual(transcript(later), numbered(46, 55, "calm"));
  for (const sub of [resumed, backfill, later]) sub.close();
  await hub.close();
});

Deno.test("a subscription that ends leaves the hub; an already aborted signal is refused", async () => {
  const hub = new LiveHub();
  const controller = new AbortController();
  const aborted = hub.subscribe({ signal: controller.signal });
  const pending = aborted.read();
  controller.abort();
  assert.equal(await pending, undefined);
  const left = hub.subscribe({ backfill: 5 });
  hub.write(batch(["a"]));
  for await (const _ of left) break;
  assert.equal(left.closed, true);
  assert.equal(hub.stats.subscribers, 0);
  assert.throws(
    () => hub.subscribe({ signal: AbortSignal.abort(new Error("gone")) }),
    { message: "gone" },
  );
  assert.equal(hub.stats.subscribers, 0);
  await hub.close();
});

Deno.test("keepLines on a parked subscriber: the gap it left when full joins the one keepLines makes only if adjacent", async () => {
  const hub = new LiveHub({ noticeMs: 0 });
  const full = hub.subscribe({ queueBytes: 3 * 65 }); // three one-character lines
  hub.write(batch(["a", "b", "c", "d"]));
  hub.write(batch(["e"]));
  const events: LiveEvent[] = [];
  for (let e = full.poll({ keepLines: 1 }); e; e = full.poll({ keepLines: 1 })) events.push(e);
  assert.deepEqual(
    events.map((e) => e.type === "dropped" ? `dropped ${e.count}` : e.lines.map((l) => l.line)),
    ["dropped 2", ["c"], "dropped 2"],
  );
  assert.equal(full.droppedLines, 4);
  assert.equal(hub.stats.linesDropped, 4);
  full.close();
  await hub.close();
});

/** A batch whose lines carry a level code and fields each (`undefined`: none). */
function recordBatch(
  lines: [text: string, level: number, fields?: Record<string, string | number>][],
  source = "api",
): Batch {
  return {
    ...batch(lines.map(([text]) => text), source),
    levels: new Uint8Array(lines.map(([, level]) => level)),
    fields: lines.map(([, , fields]) => fields),
  };
}

Deno.test("lines carry their level and fields to subscribers; plain lines have neither key", async () => {
  const hub = new LiveHub();
  const sub = hub.subscribe();
  hub.write(recordBatch([["slow", 4, { service: "billing", ms: 912 }], ["plain", 0]]));
  hub.write(batch(["from tcp"]));
  const lines = drain(sub).flatMap((event) => event.type === "lines" ? event.lines : []);
  assert.deepEqual(lines, [
    {
      id: 1,
      source: "api",
      host: "10.0.0.1",
      ts: 1000,
      level: "warn",
      line: "slow",
      fields: { service: "billing", ms: 912 },
    },
    { id: 2, source: "api", host: "10.0.0.1", ts: 1000, line: "plain" },
    { id: 3, source: "app", host: "10.0.0.1", ts: 1000, line: "from tcp" },
  ]);
  sub.close();
  await hub.close();
});

Deno.test("a level filter keeps that level and above; lines and batches without a level never match", async () => {
  const hub = new LiveHub();
  const warn = hub.subscribe({ level: "warn" });
  const billing = hub.subscribe({ fields: { service: "billing", status: "500" } });
  const both = hub.subscribe({ level: "error", fields: { service: "billing" }, grep: "pay" });
  hub.write(recordBatch([
    ["debug pay", 2, { service: "billing", status: 500 }],
    ["warn login", 4, { service: "auth", status: 500 }],
    ["error pay", 5, { service: "billing", status: 500 }],
    ["error refund", 5, { service: "billing", status: "500" }],
    ["no level", 0, { service: "billing", status: 200 }],
    ["fatal pay", 6],
  ]));
  // Plain lines: no level, no fields.
  hub.write(batch(["ERROR but only in the text", "service=billing"]));
  // Levels without fields, fields without levels.
  hub.write({ ...batch(["levels only"]), levels: new Uint8Array([6]) });
  hub.write({ ...batch(["fields only"]), fields: [{ service: "billing", status: "500" }] });
  assert.deepEqual(transcript(warn), [
    "warn login",
    "error pay",
    "error refund",
    "fatal pay",
    "levels only",
  ]);
  assert.deepEqual(transcript(billing), ["debug pay", "error pay", "error refund", "fields only"]);
  assert.deepEqual(transcript(both), ["error pay"]);
  for (const sub of [warn, billing, both]) sub.close();
  await hub.close();
});

Deno.test("backfill and resume filter by level and fields and keep them", async () => {
  const hub = new LiveHub();
  hub.write(recordBatch([["a", 3, { service: "x" }], ["b", 5, { service: "y" }], ["c", 5]]));
  hub.write(batch(["plain"]));
  const backfill = hub.subscribe({ level: "error", backfill: 10 });
  const lines = drain(backfill).flatMap((event) => event.type === "lines" ? event.lines : []);
  assert.deepEqual(lines.map(({ id, level, line, fields }) => ({ id, level, line, fields })), [
    { id: 2, level: "error", line: "b", fields: { service: "y" } },
    { id: 3, level: "error", line: "c", fields: undefined },
  ]);
  const resumed = hub.subscribe({ fields: { service: "x" }, lastEventId: 0 });
  assert.deepEqual(transcript(resumed), ["a"]);
  backfill.close();
  resumed.close();
  await hub.close();
});

Deno.test("queued fields count against a subscriber's bound, and the ring's", async () => {
  const big = { blob: "x".repeat(10_000) };
  const hub = new LiveHub({ queueBytes: 25_000, ringBytes: 25_000 });
  const sub = hub.subscribe();
  hub.write(recordBatch([["1", 3, big], ["2", 3, big], ["3", 3, big], ["4", 3, big]]));
  // Two lines of 10 kB fields fit 25 kB; the lines alone (4 x 65 bytes) would all have fitted.
  assert.deepEqual(transcript(sub), ["1", "2", "dropped 2"]);
  // The ring keeps the newest lines whose bytes and fields fit its bound.
  assert.ok(hub.stats.ringBytes <= 25_000, `${hub.stats.ringBytes} bytes held`);
  assert.equal(hub.stats.ringLines, 2);
  const backfill = hub.subscribe({ backfill: 10 });
  assert.deepEqual(transcript(backfill), ["3", "4"]);
  backfill.close();
  sub.close();
  await hub.close();
});
