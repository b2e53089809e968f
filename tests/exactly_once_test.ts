/**
 * Exactly once across `kill -9`: clients stream acknowledged batches with `X-Stream-Id` and
 * `X-Stream-Offset`, the server is killed at random moments, restarted, and every unanswered batch
 * is resent as it was. A tally of unique lines then finds none twice and none missing.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { until } from "./_http.ts";
import { CARD_PERMISSIONS, freePort, type Server, startServer } from "./_server.ts";

const encoder = new TextEncoder();

/** A batch as a client sends it, again and again until it is answered. */
interface Sent {
  body: string;
  offset: number;
  ndjson: boolean;
  /** The lines it stores, as they end up in the files. */
  lines: string[];
}

/**
 * One stream: sends its batches in order, one at a time, and resends the unanswered one after a
 * failure, unchanged. Half the clients send NDJSON whose records name two sources, so one batch
 * lands in two files.
 */
class StreamClient {
  readonly id: string;
  readonly #index: number;
  readonly #ndjson: boolean;
  #offset = 0;
  #seq = 0;
  #pending: Sent | undefined;
  /** Every line of every batch made, whether answered yet or not. */
  readonly made: string[] = [];
  acked = 0;
  failures = 0;

  constructor(index: number) {
    this.#index = index;
    this.id = `client-${index}:${crypto.randomUUID()}`;
    this.#ndjson = index % 2 === 1;
  }

  get idle(): boolean {
    return this.#pending === undefined;
  }

  #next(): Sent {
    // Batches of varied size, some large enough to be torn by the kill.
    const count = 1 + Math.floor(Math.random() * (Math.random() < 0.1 ? 3000 : 200));
    const lines: string[] = [];
    let body = "";
    for (let i = 0; i < count; i++) {
      const line = `c${this.#index} b${this.#seq} l${i} ${"x".repeat(40)}`;
      lines.push(line);
      if (this.#ndjson) {
        body += JSON.stringify({ line, source: `c${this.#index}-${i % 2 === 0 ? "a" : "b"}` }) +
          "\n";
      } else body += line + "\n";
    }
    this.#seq++;
    this.#offset += encoder.encode(body).length;
    this.made.push(...lines);
    return { body, offset: this.#offset, ndjson: this.#ndjson, lines };
  }

  /** Sends the pending batch, or a new one; `false` when the server did not answer 200. */
  async step(url: string, more: boolean): Promise<boolean> {
    if (this.#pending === undefined) {
      if (!more) return true;
      this.#pending = this.#next();
    }
    const batch = this.#pending;
    let status: number;
    let answer: { accepted?: number; duplicate?: boolean };
    try {
      const res = await fetch(
        `${url}/api/v1/ingest?source=c${this.#index}`,
        {
          method: "POST",
          body: batch.body,
          headers: {
            "content-type": batch.ndjson ? "application/x-ndjson" : "text/plain",
            "x-stream-id": this.id,
            "x-stream-offset": String(batch.offset),
          },
        },
      );
      status = res.status;
      answer = await res.json();
    } catch {
      this.failures++;
      return false;
    }
    if (status !== 200) {
      this.failures++;
      return false;
    }
    // A batch acknowledged in part is a server bug, not a reason to resend: it fails the test.
    assert.ok(answer.duplicate || answer.accepted === batch.lines.length, JSON.stringify(answer));
    this.#pending = undefined;
    this.acked++;
    return true;
  }
}

async function tally(folder: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for await (const entry of Deno.readDir(folder)) {
    if (!entry.isFile) continue;
    const text = await Deno.readTextFile(join(folder, entry.name));
    for (const line of text.split("\n")) {
      if (line !== "") counts.set(line, (counts.get(line) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Runs `clients` streams against a server that is `kill -9`ed `kills` times, then checks the
 * stored lines against every line made.
 */
async function killAndResend(fsync: string, options: { kills: number; clients: number }) {
  const dir = await Deno.makeTempDir({ prefix: "logboom-once-" });
  const logs = join(dir, "logs");
  const permissions = [...CARD_PERMISSIONS, `--allow-read=${dir}`];
  const httpPort = freePort();
  const args = [
    "-fsync",
    fsync,
    "-logFile",
    "logs/{source}.log",
    "-rotateSize",
    "256KiB",
    "-http",
    `127.0.0.1:${httpPort}`,
  ];
  const clients = Array.from({ length: options.clients }, (_, i) => new StreamClient(i));
  let server: Server | undefined;
  let up = false;
  let sending = true;
  // Set when the test ends early (a failed check): resending to a server that is gone would
  // never end.
  let abandoned = false;
  const broken: unknown[] = [];
  const loops = clients.map(async (client) => {
    try {
      while (!abandoned && (sending || !client.idle)) {
        if (!up || !(await client.step(`http://127.0.0.1:${httpPort}`, sending))) {
          // The server is down or restarting: try again shortly, with the same batch.
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    } catch (err) {
      broken.push(err);
    }
  });
  /** Throws what stopped a client, so a wait ends with it instead of timing out. */
  const intact = () => {
    if (broken.length > 0) throw broken[0];
    return true;
  };
  try {
    for (let round = 0; round <= options.kills; round++) {
      server = await startServer(args, { dir, permissions });
      up = true;
      // Let every client get some batches through, then kill at a random moment.
      const target = clients.map((c) => c.acked + 3);
      await until(
        () => intact() && clients.every((c, i) => c.acked >= target[i]),
        () => `clients stalled: ${clients.map((c) => c.acked)}\n${server!.stderr()}`,
      );
      if (round === options.kills) break;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 400));
      up = false;
      await server.stop("SIGKILL");
    }
    sending = false;
    await until(() => intact() && clients.every((c) => c.idle), () => "unanswered batches remain");
    await Promise.all(loops);
    intact();
    assert.equal((await server!.stop()).code, 0, server!.stderr());
    const counts = await tally(logs);
    const made = clients.flatMap((c) => c.made);
    const missing = made.filter((line) => !counts.has(line));
    const twice = [...counts].filter(([, n]) => n > 1);
    const unknown = counts.size - new Set(made).size;
    assert.deepEqual(
      { missing: missing.length, duplicated: twice.length, unknown },
      { missing: 0, duplicated: 0, unknown: 0 },
      `of ${made.length} lines; first duplicates ${JSON.stringify(twice.slice(0, 3))}`,
    );
    assert.ok(
      clients.reduce((n, c) => n + c.failures, 0) > 0,
      "the kills interrupted no request: the test proved nothing",
    );
  } finally {
    sending = false;
    abandoned = true;
    await server?.[Symbol.asyncDispose]();
    await Promise.allSettled(loops);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("kill -9 during streamed ingest: resent batches store every line once (-fsync batch)", async () => {
  await killAndResend("batch", { kills: 6, clients: 5 });
});

Deno.test("kill -9 during streamed ingest: resent batches store every line once (-fsync interval)", async () => {
  await killAndResend("interval", { kills: 4, clients: 5 });
});

Deno.test("kill -9 during streamed ingest: resent batches store every line once (-fsync never)", async () => {
  await killAndResend("never", { kills: 2, clients: 3 });
});
