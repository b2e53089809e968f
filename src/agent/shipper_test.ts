import assert from "node:assert/strict";
import { configureSync, type LogRecord, resetSync } from "@logtape/logtape";
import { type ShipBatch, Shipper } from "./shipper.ts";
import { FAST_RETRY as RETRY, FreezingProxy, listenLow, until } from "./_test_target.ts";
import { freePort } from "../../tests/_server.ts";

function batch(offset: number): ShipBatch {
  return {
    source: "s",
    stream: "a:1",
    offset,
    body: new TextEncoder().encode(`line ${offset}\n`),
    lines: 1,
    bytes: 10,
    server: -1,
  };
}

/** A server answering each ingest with `answer(n)` (n counts its requests). */
function server(answer: (n: number, req: Request) => Response | Promise<Response>) {
  let n = 0;
  const seen: number[] = [];
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: freePort(), onListen: () => {} },
    (req) => {
      seen.push(Number(req.headers.get("x-stream-offset")));
      return answer(n++, req);
    },
  );
  return { url: `http://127.0.0.1:${http.addr.port}`, port: http.addr.port, seen, http };
}

const ok = () => Response.json({ accepted: 1, duplicate: false });

/** Collects the `logboom` log records while `fn` runs. */
async function withLogs(fn: (records: LogRecord[]) => Promise<void>): Promise<void> {
  const records: LogRecord[] = [];
  configureSync({
    reset: true,
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: ["logboom"], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  try {
    await fn(records);
  } finally {
    resetSync();
  }
}

const warningsOf = (records: LogRecord[]) =>
  records.filter((r) => r.level === "warning" && String(r.rawMessage).startsWith("Cannot deliver"));

Deno.test("shipper fails over when a server is unreachable, and comes back to it later", async () => {
  const second = server(ok);
  const signal = new AbortController().signal;
  const down = `http://127.0.0.1:${freePort()}`;
  let now = Date.UTC(2025, 0, 1);
  const problems: string[] = [];
  const shipper = new Shipper({
    servers: [down, second.url],
    token: "",
    retry: RETRY,
    now: () => now,
    onProblem: (message) => problems.push(message),
  });
  assert.deepEqual(shipper.failover, {
    active: down,
    servers: [down, second.url],
    failing: false,
  });
  try {
    const result = await shipper.send(batch(10), { signal });
    assert.equal(result.server, 1);
    assert.equal(shipper.stats.failovers, 1, "given up after failover_after (2) refusals");
    // The report's view: the second server is the active one and takes batches.
    assert.deepEqual(shipper.failover, {
      active: second.url,
      servers: [down, second.url],
      failing: false,
    });
    assert.match(problems[0], /^Cannot deliver to http:\/\/127\.0\.0\.1:\d+: /);
    assert.match(
      problems.at(-1)!,
      /^Server http:\/\/127\.0\.0\.1:\d+ failed \(.*\); using the next one$/,
    );
    await shipper.send(batch(20), { signal });
    assert.deepEqual(second.seen, [10, 20]);
    now += RETRY.failbackMs - 1;
    assert.equal(shipper.preferred, 1, "the server given up is left alone until failback");
    // Past failback the first server is tried again (and given up again while down).
    now += 1;
    assert.equal(shipper.preferred, 0);
  } finally {
    shipper.close();
    await second.http.shutdown();
  }
});

Deno.test("shipper waits Retry-After on 503 and retries the same server", async () => {
  const only = server((n) =>
    n === 0 ? new Response("{}", { status: 503, headers: { "retry-after": "1" } }) : ok()
  );
  const waits: number[] = [];
  const shipper = new Shipper({
    servers: [only.url],
    token: "t",
    retry: RETRY,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
  });
  try {
    await shipper.send(batch(5), { signal: new AbortController().signal });
    assert.deepEqual(waits, [1000], "waited the second Retry-After asks, not the backoff");
    assert.deepEqual(only.seen, [5, 5]);
    assert.equal(shipper.stats.retries, 1);
  } finally {
    shipper.close();
    await only.http.shutdown();
  }
});

Deno.test("shipper resends an unanswered batch to the same server, not the next", async () => {
  const first = server(async (n) => {
    if (n === 0) await new Promise((resolve) => setTimeout(resolve, 300));
    return ok();
  });
  const second = server(ok);
  const shipper = new Shipper({
    servers: [first.url, second.url],
    token: "",
    retry: { ...RETRY, timeoutMs: 100 },
  });
  try {
    const tried: number[] = [];
    const result = await shipper.send(batch(7), {
      signal: new AbortController().signal,
      onTry: (s) => void tried.push(s),
    });
    assert.equal(result.server, 0);
    assert.deepEqual(second.seen, [], "the batch may be stored on the first: never sent elsewhere");
    assert.ok(tried.every((s) => s === 0));
  } finally {
    shipper.close();
    await first.http.shutdown();
    await second.http.shutdown();
  }
});

Deno.test("shipper sends a batch to a server only once onTry has recorded that server", async () => {
  const only = server(ok);
  const events: string[] = [];
  const shipper = new Shipper({
    servers: [only.url],
    token: "",
    retry: RETRY,
    connect: ({ hostname, port }) => {
      events.push("connect");
      return Deno.connect({ hostname, port });
    },
  });
  try {
    const result = await shipper.send(batch(5), {
      signal: new AbortController().signal,
      // The record is a write (the agent's journal): it takes a turn of the event loop or more.
      onTry: (s) => {
        events.push(`try ${s}`);
        return new Promise((resolve) => setTimeout(resolve, 0)).then(() => {
          events.push("recorded");
        });
      },
    });
    assert.equal(result.server, 0);
    assert.deepEqual(events, ["try 0", "recorded", "connect"]);
    assert.deepEqual(only.seen, [5]);
  } finally {
    shipper.close();
    await only.http.shutdown();
  }
});

Deno.test("shipper times out a server that accepts and never answers (half-open), then delivers", async () => {
  const real = server(ok);
  const proxy = new FreezingProxy(real.port);
  const shipper = new Shipper({
    servers: [`http://127.0.0.1:${proxy.port}`],
    token: "",
    retry: { ...RETRY, timeoutMs: 200 },
  });
  try {
    const sending = shipper.send(batch(3), { signal: new AbortController().signal });
    // Two tries froze and timed out; each was retried.
    await until(() => proxy.held >= 2, () => `held ${proxy.held}`);
    assert.deepEqual(real.seen, []);
    proxy.frozen = false;
    const result = await sending;
    assert.equal(result.duplicate, false);
    assert.deepEqual(real.seen, [3]);
    assert.ok(shipper.stats.retries >= 2, `${shipper.stats.retries} retries`);
  } finally {
    shipper.close();
    await proxy.close();
    await real.http.shutdown();
  }
});

Deno.test("shipper warns that its only server is unreachable with a retry count, at most every 5 s", async () => {
  await withLogs(async (records) => {
    let now = 1_000_000;
    const shipper = new Shipper({
      servers: [`http://127.0.0.1:${freePort()}`],
      token: "",
      retry: { ...RETRY, initialMs: 1, maxMs: 2 },
      now: () => now,
    });
    const stop = new AbortController();
    const sending = shipper.send(batch(1), { signal: stop.signal }).catch(() => {});
    try {
      await until(() => shipper.stats.retries >= 30, () => `${shipper.stats.retries} retries`);
      // Thirty failed tries within the same 5 s: one warning, the first.
      assert.equal(warningsOf(records).length, 1);
      const first = warningsOf(records)[0].properties;
      assert.equal(first.server, shipper.servers[0]);
      assert.equal(first.failed, 1);
      assert.match(String(first.problem), /Cannot connect/);
      now += 4999;
      const before = shipper.stats.retries;
      await until(() => shipper.stats.retries >= before + 10, () => "no more retries");
      assert.equal(warningsOf(records).length, 1, "still within 5 s");
      now += 1;
      await until(() => warningsOf(records).length === 2, () => "no second warning");
      const second = warningsOf(records)[1].properties;
      assert.ok(Number(second.failed) >= 40, `${second.failed} tries since the first warning`);
      assert.equal(second.total, Number(second.failed) + 1);
      assert.equal(second.seconds, 5);
      // The message itself is constant, with the values as properties.
      assert.equal(
        warningsOf(records)[1].rawMessage,
        "Cannot deliver to {server}: {problem}; {total} tries failed in {seconds} s ({failed} " +
          "since the last report); retrying, lines wait in their files",
      );
    } finally {
      stop.abort();
      await sending;
      shipper.close();
    }
  });
});

Deno.test("shipper says when a server answers errors, and when it takes batches again", async () => {
  await withLogs(async (records) => {
    const only = server((n) =>
      n < 3 ? Response.json({ error: "The disk is full" }, { status: 500 }) : ok()
    );
    const failing: boolean[] = [];
    const shipper: Shipper = new Shipper({
      servers: [only.url],
      token: "",
      retry: RETRY,
      onProblem: () => failing.push(shipper.failover.failing),
    });
    try {
      await shipper.send(batch(1), { signal: new AbortController().signal });
      assert.deepEqual(failing, [true], "failing while its tries fail, said once");
      assert.equal(shipper.failover.failing, false, "not once it takes batches again");
      const warnings = warningsOf(records);
      assert.equal(warnings.length, 1, "three failures in a row, one warning");
      assert.match(String(warnings[0].properties.problem), /500 The disk is full/);
      const back = records.find((r) => String(r.rawMessage).includes("takes batches again"));
      assert.equal(back?.properties.failed, 3);
    } finally {
      shipper.close();
      await only.http.shutdown();
    }
  });
});

Deno.test("shipper names the token's source when a server answers 401", async () => {
  await withLogs(async (records) => {
    const only = server(() => Response.json({ error: "Unauthorized" }, { status: 401 }));
    const shipper = new Shipper({ servers: [only.url], token: "", retry: RETRY });
    const stop = new AbortController();
    const sending = shipper.send(batch(1), { signal: stop.signal }).catch(() => {});
    try {
      await until(() => records.some((r) => r.level === "error"), () => "no error logged");
      const error = records.find((r) => r.level === "error")!;
      // Tests run with env permission: the hint says to set the token (a run without it is the
      // end-to-end test's).
      assert.match(String(error.properties.problem), /401 Unauthorized \(no token was sent/);
    } finally {
      stop.abort();
      await sending;
      shipper.close();
      await only.http.shutdown();
    }
  });
});

Deno.test("shipper stops retrying when its signal aborts", async () => {
  const stop = new AbortController();
  const shipper = new Shipper({
    servers: [`http://127.0.0.1:${freePort()}`],
    token: "",
    retry: RETRY,
  });
  const sending = shipper.send(batch(1), { signal: stop.signal });
  await until(() => shipper.stats.retries >= 2, () => `${shipper.stats.retries} retries`);
  stop.abort(new Error("stopped"));
  await assert.rejects(sending, /stopped/);
  shipper.close();
});

Deno.test("shipper sends a batch tied to a server a reload took away to the servers there are", async () => {
  const kept = server(ok);
  // Never answers (until the client gives up): the batch sticks to it.
  const dropped = server((_n, req) =>
    new Promise((resolve) => req.signal.addEventListener("abort", () => resolve(ok())))
  );
  const shipper = new Shipper({
    servers: [kept.url, dropped.url],
    token: "",
    retry: { ...RETRY, timeoutMs: 100 },
  });
  try {
    const sending = shipper.send({ ...batch(4), server: 1 }, {
      signal: new AbortController().signal,
    });
    await until(() => dropped.seen.length >= 1, () => "not tried on the dropped server");
    shipper.update({ servers: [kept.url], token: "", retry: RETRY });
    const result = await sending;
    assert.equal(result.server, 0);
    assert.deepEqual(kept.seen, [4]);
  } finally {
    shipper.close();
    await kept.http.shutdown();
    await dropped.http.shutdown();
  }
});

Deno.test("shipper sends an unanswered batch to the next server after the resend window, though its server now refuses connections", async () => {
  const second = server(ok);
  // The first server takes the first try and dies with it (kill -9): the connection is cut
  // before an answer, and every connection after that is refused.
  const listener = listenLow();
  const dying = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(64 * 1024));
    conn.close();
    listener.close();
  })();
  let now = Date.UTC(2025, 0, 1);
  const started = now;
  const shipper = new Shipper({
    servers: [`http://127.0.0.1:${listener.addr.port}`, second.url],
    token: "",
    retry: { ...RETRY, resendWindowMs: 1000 },
    now: () => now,
    sleep: (ms) => {
      now += ms;
      return Promise.resolve();
    },
  });
  try {
    const result = await shipper.send(batch(9), { signal: AbortSignal.timeout(5000) });
    assert.equal(result.server, 1);
    assert.deepEqual(second.seen, [9]);
    assert.ok(now - started >= 1000, "kept with the first server for the resend window");
    assert.equal(shipper.stats.possibleDuplicateBytes, 10);
  } finally {
    shipper.close();
    await dying;
    await second.http.shutdown();
  }
});
