import assert from "node:assert/strict";
import { join } from "node:path";
import { until } from "../../tests/_http.ts";
import { bindFreePort } from "../../tests/_server.ts";
import { hasTool } from "../../tests/_tools.ts";
import type { Batch } from "../pipeline/batch.ts";
import { levelOfCode } from "../pipeline/record.ts";
import { TestSink } from "../pipeline/_test_sink.ts";
import { SyslogInput, type SyslogInputConfig, SyslogListenError } from "./syslog.ts";

interface Seen {
  line: string;
  host: string;
  labels?: Readonly<Record<string, string>>;
  time?: number;
  level?: number;
  batch: number;
}

/** Keeps every line with its batch's meta and its own time. */
class Recorder extends TestSink {
  readonly name = "recorder";
  readonly seen: Seen[] = [];
  batches = 0;

  get lines(): string[] {
    return this.seen.map((s) => s.line);
  }

  write(batch: Batch): boolean {
    const lines = new TextDecoder().decode(batch.data).split("\n").slice(0, -1);
    assert.equal(lines.length, batch.lines);
    if (batch.times !== undefined) assert.equal(batch.times.length, batch.lines);
    if (batch.levels !== undefined) assert.equal(batch.levels.length, batch.lines);
    lines.forEach((line, i) =>
      this.seen.push({
        line,
        host: batch.meta.host,
        labels: batch.meta.labels,
        time: batch.times?.[i],
        level: batch.levels?.[i],
        batch: this.batches,
      })
    );
    this.batches++;
    return true;
  }
}

const enc = (s: string) => new TextEncoder().encode(s);
const octet = (m: string) => `${enc(m).length} ${m}`;

function listen(sink: Recorder, config: Partial<SyslogInputConfig>, tcp = true): SyslogInput {
  return bindFreePort((port) =>
    SyslogInput.listen({
      tcp: tcp ? { hostname: "127.0.0.1", port } : undefined,
      udp: { hostname: "127.0.0.1", port },
      udpOptions: { kernelDrops: false },
      ...config,
    }, sink)
  );
}

async function sendTcp(port: number, text: string): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(enc(text));
  conn.close();
}

const MSGS = [
  '<132>1 2026-11-30T10:34:18.155242+00:00 vm myapp - REQ [meta@32473 env="prod"] first',
  '<13>1 2026-11-30T10:34:34+00:00 vm - - - [meta sequenceId="1"] second',
  "<11>Nov 30 10:34:18 vm myapp: third",
  "<13>2026-11-30T10:34:46.959364+00:00 web2 webapp fourth",
  "not syslog at all",
];

Deno.test("syslog over TCP without labels: messages stored as received, per frame, no parsing", async () => {
  const sink = new Recorder();
  const input = listen(sink, {});
  assert.equal(input.parses, false);
  try {
    // Octet counting (with and without the LF inside the count) and LF framing, mixed.
    const stream = octet(MSGS[0]) + octet(MSGS[1] + "\n") + MSGS[2] + "\n" + MSGS[3] + "\r\n" +
      octet("multi\nline") + MSGS[4] + "\n";
    await sendTcp(input.tcpAddr!.port, stream);
    await until(() => sink.seen.length >= 6, () => JSON.stringify(sink.lines));
    assert.deepEqual(sink.lines, [...MSGS.slice(0, 4), "multi#012line", MSGS[4]]);
    assert.ok(sink.seen.every((s) => s.host === "127.0.0.1" && s.labels === undefined));
    assert.equal(sink.batches, 1, "one read, one batch");
    const tcp = input.stats.tcp!;
    assert.equal(tcp.messages, 6);
    assert.equal(tcp.bytes, enc(stream).length);
    assert.equal(tcp.parseFailures, 0, "nothing is parsed, so nothing fails");
  } finally {
    await input.close({ quietMs: 0 });
  }
});

Deno.test("syslog over TCP with labels: host, app, facility, severity and time parsed; unparsed kept whole", async () => {
  const sink = new Recorder();
  const input = listen(sink, { times: true });
  assert.equal(input.parses, true);
  try {
    await sendTcp(input.tcpAddr!.port, MSGS.map((m) => octet(m)).join(""));
    await until(() => sink.seen.length >= 5, () => JSON.stringify(sink.lines));
    const byLine = new Map(sink.seen.map((s) => [s.line, s]));
    assert.deepEqual(byLine.get(MSGS[0])!.labels, {
      app: "myapp",
      facility: "local0",
      severity: "warning",
    });
    assert.equal(byLine.get(MSGS[0])!.host, "vm");
    assert.equal(byLine.get(MSGS[0])!.time, Date.parse("2026-11-30T10:34:18.155Z"));
    // NILVALUE app: no app label (templates render `_`).
    assert.deepEqual(byLine.get(MSGS[1])!.labels, { facility: "user", severity: "notice" });
    assert.equal(byLine.get(MSGS[1])!.time, Date.parse("2026-11-30T10:34:34Z"));
    assert.deepEqual(byLine.get(MSGS[2])!.labels, {
      app: "myapp",
      facility: "user",
      severity: "err",
    });
    assert.equal(byLine.get(MSGS[3])!.host, "web2");
    assert.equal(byLine.get(MSGS[3])!.labels!.app, "webapp");
    // Unparsed: the peer's address, no labels, no time of its own; counted.
    const bad = byLine.get(MSGS[4])!;
    assert.equal(bad.host, "127.0.0.1");
    assert.deepEqual(bad.labels, {});
    assert.ok(Number.isNaN(bad.time));
    assert.equal(input.stats.tcp!.parseFailures, 1);
    // Each batch holds one label set; metas are built once per set.
    const metaOf = new Map<string, Set<unknown>>();
    for (const s of sink.seen) {
      const key = JSON.stringify([s.host, s.labels]);
      metaOf.set(key, (metaOf.get(key) ?? new Set()).add(s.batch));
    }
    assert.equal(metaOf.size, 5);
  } finally {
    await input.close({ quietMs: 0 });
  }
});

Deno.test("syslog levels: each message's level from its PRI, with or without parsing, over TCP and UDP", async () => {
  // severities: 4 warning, 5 notice, 3 err, 5 notice, none, 7 debug, 0 emerg, <999> not a PRI.
  const msgs = [...MSGS, "<15>Nov 30 10:34:18 vm a: dbg", "<0>1 - vm a - - - emerg", "<999>x"];
  const want = ["warn", "info", "error", "info", undefined, "debug", "fatal", undefined];
  for (const labels of [false, true]) {
    for (const transport of ["tcp", "udp"] as const) {
      const sink = new Recorder();
      const input = listen(sink, { labels, levels: true }, transport === "tcp");
      try {
        if (transport === "tcp") {
          await sendTcp(input.tcpAddr!.port, msgs.map((m) => octet(m)).join(""));
        } else {
          const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
          try {
            for (const m of msgs) await udp.send(enc(m), { ...input.udpAddr!, transport: "udp" });
          } finally {
            udp.close();
          }
        }
        await until(() => sink.seen.length >= msgs.length, () => JSON.stringify(sink.lines));
        const levelOf = new Map(sink.seen.map((s) => [s.line, levelOfCode(s.level ?? 0)]));
        assert.deepEqual(msgs.map((m) => levelOf.get(m)), want, `${transport}, labels ${labels}`);
      } finally {
        await input.close({ quietMs: 0 });
      }
    }
  }
  // Not asked for: no column.
  const sink = new Recorder();
  const input = listen(sink, {});
  try {
    await sendTcp(input.tcpAddr!.port, octet(MSGS[0]));
    await until(() => sink.seen.length >= 1, () => JSON.stringify(sink.lines));
    assert.equal(sink.seen[0].level, undefined);
  } finally {
    await input.close({ quietMs: 0 });
  }
});

Deno.test("syslog with labels: a read of one label set is one batch; mixed sets are grouped", async () => {
  const sink = new Recorder();
  const input = listen(sink, { labels: true });
  try {
    const a = (i: number) => `<134>1 2026-11-30T10:00:00Z h nginx - - - a${i}`;
    const b = (i: number) => `<131>1 2026-11-30T10:00:00Z h nginx - - - b${i}`;
    await sendTcp(input.tcpAddr!.port, [a(1), a(2), a(3)].map((m) => octet(m)).join(""));
    await until(() => sink.seen.length >= 3, () => JSON.stringify(sink.lines));
    assert.equal(sink.batches, 1);
    await sendTcp(input.tcpAddr!.port, [a(4), b(1), a(5), b(2)].map((m) => m + "\n").join(""));
    await until(() => sink.seen.length >= 7, () => JSON.stringify(sink.lines));
    // Grouped by label set, in each group the order sent.
    assert.deepEqual(sink.lines.slice(3), [a(4), a(5), b(1), b(2)]);
    assert.equal(sink.batches, 3);
    assert.equal(sink.seen[5].labels!.severity, "err");
  } finally {
    await input.close({ quietMs: 0 });
  }
});

Deno.test("syslog over UDP: one message per datagram, labelled, framing errors and splits counted", async () => {
  const sink = new Recorder();
  const input = listen(sink, { labels: true, maxMessage: 1024 });
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const datagrams = [MSGS[0] + "\n", MSGS[2], "two\nlines", "", "x".repeat(2500)];
    for (const d of datagrams) await client.send(enc(d), input.udpAddr!);
    await until(() => sink.seen.length >= 6, () => JSON.stringify(sink.lines));
    assert.deepEqual(sink.lines.slice(0, 3), [MSGS[0], MSGS[2], "two#012lines"]);
    assert.deepEqual(sink.lines.slice(3).map((l) => l.length), [1024, 1024, 452]);
    assert.equal(sink.seen[0].host, "vm");
    assert.equal(sink.seen[1].labels!.severity, "err");
    const udp = input.stats.udp!;
    assert.equal(udp.messages, 6);
    assert.equal(udp.split, 1);
    // The two-line datagram and the three pieces of the long one do not parse.
    assert.equal(udp.parseFailures, 4);
    assert.equal(udp.udp!.datagrams, 5);
    const counters = input.counters();
    assert.equal(counters["udp.messages"], 6);
    assert.equal(counters["udp.parse_failures"], 4);
    assert.equal(counters["tcp.connections"], 0);
    assert.equal(counters["udp.datagrams"], 5);
  } finally {
    client.close();
    await input.close({ quietMs: 0 });
  }
});

Deno.test("syslog over TCP: a bad octet count is counted and its bytes kept as a line", async () => {
  const sink = new Recorder();
  const input = listen(sink, {});
  try {
    await sendTcp(input.tcpAddr!.port, "12345678901 is not a count\n" + octet("<13>ok"));
    await until(() => sink.seen.length >= 2, () => JSON.stringify(sink.lines));
    assert.deepEqual(sink.lines, ["12345678901 is not a count", "<13>ok"]);
    assert.equal(input.stats.tcp!.framingErrors, 1);
    // A frame cut short by the end of the connection: stored as far as it came, counted.
    await sendTcp(input.tcpAddr!.port, "50 <13>cut short");
    await until(() => sink.seen.length >= 3, () => JSON.stringify(sink.lines));
    assert.equal(sink.lines[2], "<13>cut short");
    assert.equal(input.stats.tcp!.framingErrors, 2);
  } finally {
    await input.close({ quietMs: 0 });
  }
});

Deno.test("syslog input refuses a config without listeners, and frees every port when one cannot bind", () => {
  const sink = new Recorder();
  assert.throws(() => SyslogInput.listen({}, sink), /at least one of tcp, udp and tls/);
  const taken = bindFreePort((port) => Deno.listen({ hostname: "127.0.0.1", port }));
  try {
    const free = bindFreePort((port) => Deno.listen({ hostname: "127.0.0.1", port }));
    const freePort = free.addr.port;
    free.close();
    assert.throws(
      () =>
        SyslogInput.listen({
          udp: { hostname: "127.0.0.1", port: freePort },
          tcp: { hostname: "127.0.0.1", port: taken.addr.port },
        }, sink),
      (err: unknown) =>
        err instanceof SyslogListenError && err.transport === "tcp" &&
        err.cause instanceof Deno.errors.AddrInUse,
    );
    // The TCP port failed first; nothing else was left bound.
    Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: freePort }).close();
    assert.throws(
      () =>
        SyslogInput.listen({
          tls: { hostname: "127.0.0.1", port: freePort, certFile: "/nonexistent", keyFile: "x" },
        }, sink),
      /over tls on 127\.0\.0\.1:\d+: Cannot read the TLS certificate "\/nonexistent"/,
    );
  } finally {
    taken.close();
  }
});

const openssl = await hasTool("openssl");

Deno.test({
  name: "syslog over TLS (RFC 5425): octet-counted messages over a self-signed certificate" +
    (openssl ? "" : " (skipped: openssl is not installed, apt-get install openssl)"),
  ignore: !openssl,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "logboom-tls-" });
    const certFile = join(dir, "cert.pem");
    const keyFile = join(dir, "key.pem");
    const made = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        keyFile,
        "-out",
        certFile,
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(made.success, new TextDecoder().decode(made.stderr));
    const sink = new Recorder();
    const input = bindFreePort((port) =>
      SyslogInput.listen(
        { tls: { hostname: "127.0.0.1", port, certFile, keyFile }, labels: true },
        sink,
      )
    );
    try {
      const conn = await Deno.connectTls({
        hostname: "localhost",
        port: input.tlsAddr!.port,
        caCerts: [await Deno.readTextFile(certFile)],
      });
      await conn.write(enc(octet(MSGS[0]) + octet(MSGS[2] + "\n")));
      await until(() => sink.seen.length >= 2, () => JSON.stringify(sink.lines));
      conn.close();
      assert.deepEqual(sink.lines, [MSGS[0], MSGS[2]]);
      assert.equal(sink.seen[0].host, "vm");
      assert.equal(input.stats.tls!.messages, 2);
      // A client that does not speak TLS is dropped without harm to the others.
      const plain = await Deno.connect({ hostname: "127.0.0.1", port: input.tlsAddr!.port });
      await plain.write(enc(octet(MSGS[1])));
      await until(() => input.stats.tls!.connections === 0, () => "the plain client is closed");
      plain.close();
      assert.equal(sink.seen.length, 2);
    } finally {
      await input.close({ quietMs: 0 });
      await Deno.remove(dir, { recursive: true });
    }
  },
});
