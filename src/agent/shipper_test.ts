import assert from "node:assert/strict";
import type { RetryConfig } from "./config.ts";
import { type ShipBatch, Shipper } from "./shipper.ts";
import { bindFreePort, freePort } from "../../tests/_server.ts";

const RETRY: RetryConfig = {
  initialMs: 5,
  maxMs: 50,
  timeoutMs: 2000,
  failoverAfter: 2,
  failbackMs: 300,
  resendWindowMs: 60_000,
};

function batch(offset: number): ShipBatch {
  return {
    source: "s",
    stream: "a:1",
    offset,
    body: new Uint8Array(0),
    lines: 1,
    bytes: 10,
    server: -1,
  };
}

/** A server answering each ingest with `answer(n)` (n counts its requests). */
function server(answer: (n: number, req: Request) => Response | Promise<Response>) {
  let n = 0;
  const seen: number[] = [];
  const http = bindFreePort((port) =>
    Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (req) => {
      seen.push(Number(req.headers.get("x-stream-offset")));
      return answer(n++, req);
    })
  );
  return { url: `http://127.0.0.1:${http.addr.port}`, seen, http };
}

const ok = () => Response.json({ accepted: 1, duplicate: false });

function closedPort(): string {
  return `http://127.0.0.1:${freePort()}`;
}

Deno.test("shipper fails over when a server is unreachable, and comes back to it later", async () => {
  const second = server(ok);
  const signal = new AbortController().signal;
  try {
    const down = closedPort();
    const shipper = new Shipper({ servers: [down, second.url], token: "", retry: RETRY });
    const result = await shipper.send(batch(10), { signal });
    assert.equal(result.server, 1);
    assert.equal(shipper.stats.failovers, 1, "given up after failover_after (2) refusals");
    await shipper.send(batch(20), { signal });
    assert.deepEqual(second.seen, [10, 20]);
    // Past failback the first server is tried again (and given up again while down).
    await new Promise((resolve) => setTimeout(resolve, RETRY.failbackMs + 50)); // time passing is the subject
    assert.equal(shipper.preferred, 0);
  } finally {
    await second.http.shutdown();
  }
});

Deno.test("shipper waits Retry-After on 503 and retries the same server", async () => {
  const only = server((n) =>
    n === 0 ? new Response("{}", { status: 503, headers: { "retry-after": "1" } }) : ok()
  );
  try {
    const shipper = new Shipper({ servers: [only.url], token: "t", retry: RETRY });
    const started = Date.now();
    await shipper.send(batch(5), { signal: new AbortController().signal });
    assert.ok(Date.now() - started >= 900, "waited about a second");
    assert.deepEqual(only.seen, [5, 5]);
    assert.equal(shipper.stats.retries, 1);
  } finally {
    await only.http.shutdown();
  }
});

Deno.test("shipper resends an unanswered batch to the same server, not the next", async () => {
  const first = server(async (n) => {
    if (n === 0) await new Promise((resolve) => setTimeout(resolve, 300));
    return ok();
  });
  const second = server(ok);
  try {
    const shipper = new Shipper({
      servers: [first.url, second.url],
      token: "",
      retry: { ...RETRY, timeoutMs: 100 },
    });
    const tried: number[] = [];
    const result = await shipper.send(batch(7), {
      signal: new AbortController().signal,
      onTry: (s) => tried.push(s),
    });
    assert.equal(result.server, 0);
    assert.deepEqual(second.seen, [], "the batch may be stored on the first: never sent elsewhere");
    assert.ok(tried.every((s) => s === 0));
  } finally {
    await first.http.shutdown();
    await second.http.shutdown();
  }
});

Deno.test("shipper stops retrying when its signal aborts", async () => {
  const stop = new AbortController();
  const shipper = new Shipper({ servers: [closedPort()], token: "", retry: RETRY });
  const sending = shipper.send(batch(1), { signal: stop.signal });
  setTimeout(() => stop.abort(new Error("stopped")), 50);
  await assert.rejects(sending, /stopped/);
});
