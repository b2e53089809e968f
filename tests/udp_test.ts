/**
 * `serve -udp` and `serve -syslog` with the real program: what arrives is stored, what the
 * kernel dropped is visible in `/metrics`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Pipeline } from "../src/config/pipeline.ts";
import { checkServerConfig } from "../src/config/server_config.ts";
import { metric, until } from "./_http.ts";
import { bindFreePort, CARD_PERMISSIONS, send, startServer } from "./_server.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/** A loopback port free right now for both TCP and UDP (syslog binds both). */
function freePort(): number {
  return bindFreePort((port) => {
    Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port }).close();
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return port;
  });
}

function udpTo(port: number): { send(text: string | Uint8Array): Promise<void>; close(): void } {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
  return {
    send: async (text) => {
      await socket.send(typeof text === "string" ? enc(text) : text, to);
    },
    close: () => socket.close(),
  };
}

async function storedLines(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").slice(0, -1);
}

Deno.test("serve -udp: lines of datagrams are stored and counted in /metrics", async () => {
  const udpPort = freePort();
  await using server = await startServer(["-udp", `127.0.0.1:${udpPort}`]);
  assert.match(server.stderr(), new RegExp(`udp://127\\.0\\.0\\.1:${udpPort}`));
  // With the card's permissions ss may not run: said once, and nothing breaks.
  await until(
    () => /kernel drops cannot be counted.*--allow-run=ss/.test(server.stderr()),
    server.stderr,
  );
  const client = udpTo(udpPort);
  try {
    await client.send("one\ntwo\n");
    await client.send("three");
    await client.send("");
  } finally {
    client.close();
  }
  const file = join(server.dir, "aggregated_logs.txt");
  await until(async () => (await storedLines(file)).length >= 3, () => "3 lines stored");
  assert.deepEqual(await storedLines(file), ["one", "two", "three"]);
  const at = '{input="udp",type="udp"}';
  assert.equal(await metric(server.url, `logboom_input_datagrams_total${at}`), 3);
  assert.equal(await metric(server.url, `logboom_input_lines_total${at}`), 3);
  assert.equal(await metric(server.url, `logboom_input_empty_datagrams_total${at}`), 1);
  assert.equal(
    await metric(server.url, `logboom_received_lines_total{input="udp",source="udp"}`),
    3,
  );
});

Deno.test("serve -syslog: TCP and UDP at one address, files named by host, app and severity", async () => {
  const syslogPort = freePort();
  await using server = await startServer([
    "-syslog",
    `127.0.0.1:${syslogPort}`,
    "-logFile",
    "logs/{host}/{app}.{severity}.log",
  ]);
  const overTcp = "<131>1 2026-11-30T10:34:18.155Z web1 nginx - - - over tcp";
  const overUdp = "<14>Nov 30 10:34:18 db1 postgres[42]: over udp";
  await send(syslogPort, `${enc(overTcp).length} ${overTcp}not syslog\n`);
  const client = udpTo(syslogPort);
  try {
    await client.send(overUdp + "\n");
  } finally {
    client.close();
  }
  const logs = join(server.dir, "logs");
  await until(
    async () =>
      (await storedLines(join(logs, "db1", "postgres.info.log"))).length === 1 &&
      (await storedLines(join(logs, "127.0.0.1", "_._.log"))).length === 1,
    () => "every message stored",
  );
  assert.deepEqual(await storedLines(join(logs, "web1", "nginx.err.log")), [overTcp]);
  assert.deepEqual(await storedLines(join(logs, "db1", "postgres.info.log")), [overUdp]);
  // What does not parse is kept whole, under the peer's address, and counted.
  assert.deepEqual(await storedLines(join(logs, "127.0.0.1", "_._.log")), ["not syslog"]);
  const at = (transport: string) => `{input="syslog",type="syslog",transport="${transport}"}`;
  assert.equal(await metric(server.url, `logboom_input_messages_total${at("tcp")}`), 2);
  assert.equal(await metric(server.url, `logboom_input_messages_total${at("udp")}`), 1);
  assert.equal(await metric(server.url, `logboom_input_parse_failures_total${at("tcp")}`), 1);
});

Deno.test("serve -udp: datagrams the kernel dropped while logboom could not read are in /metrics", async () => {
  const udpPort = freePort();
  await using server = await startServer(["-udp", `127.0.0.1:${udpPort}`], {
    permissions: [...CARD_PERMISSIONS, "--allow-run=ss"],
  });
  const at = '{input="udp",type="udp"}';
  const file = join(server.dir, "aggregated_logs.txt");
  await until(
    async () => await metric(server.url, `logboom_input_udp_dropped_total${at}`) === 0,
    () => "the drop counter is read",
  );
  // A stopped process reads nothing: past the socket's receive buffer, the kernel drops.
  const sent = 4000;
  const client = udpTo(udpPort);
  Deno.kill(server.child.pid, "SIGSTOP");
  try {
    for (let i = 0; i < sent; i++) await client.send(`datagram ${i} ${"x".repeat(200)}\n`);
  } finally {
    Deno.kill(server.child.pid, "SIGCONT");
    client.close();
  }
  let dropped = NaN;
  let stored = 0;
  await until(async () => {
    dropped = await metric(server.url, `logboom_input_udp_dropped_total${at}`);
    stored = (await storedLines(file)).length;
    return dropped > 0 && stored + dropped === sent;
  }, () => `${dropped} dropped, ${stored} stored of ${sent}`);
  assert.ok(dropped < sent, "the buffer held some");
  assert.equal(await metric(server.url, `logboom_input_datagrams_total${at}`), sent - dropped);
});

Deno.test("a reload updates syslog in place (its sockets and connections stay) and rebinds a moved UDP input", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-udp-reload-" });
  const [tcpPort, udpPort, linesPort, movedPort] = [freePort(), freePort(), freePort(), freePort()];
  const config = (syslog: Record<string, unknown>, lines?: number) => {
    const { config, problems } = checkServerConfig({
      log_level: "error",
      http: { address: "off" },
      inputs: {
        syslog: {
          type: "syslog",
          tcp: `127.0.0.1:${tcpPort}`,
          udp: `127.0.0.1:${udpPort}`,
          ...syslog,
        },
        ...(lines === undefined ? {} : { lines: { type: "udp", address: `127.0.0.1:${lines}` } }),
      },
      sinks: { file: { type: "file", path: join(dir, "out.log") } },
    });
    assert.deepEqual(problems.list, []);
    return config;
  };
  const pipeline = await Pipeline.start(config({}, linesPort));
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: tcpPort });
  const file = join(dir, "out.log");
  const stored = () => storedLines(file);
  try {
    await conn.write(enc("<13>before the reload\n"));
    await until(async () => (await stored()).length === 1, () => "first line");
    const updated = await pipeline.reload(config({ max_message: "4KiB" }, linesPort));
    assert.deepEqual([updated.updated, updated.rebuilt], [["syslog"], []]);
    // The same connection goes on; so does the syslog UDP socket.
    await conn.write(enc("<13>after the reload\n"));
    const client = udpTo(udpPort);
    await client.send("<13>over udp");
    client.close();
    await until(async () => (await stored()).length === 3, () => "after the reload");
    const moved = await pipeline.reload(config({ max_message: "4KiB" }, movedPort));
    assert.deepEqual(moved.rebuilt, ["lines"]);
    const lines = udpTo(movedPort);
    await lines.send("a raw line\n");
    lines.close();
    await until(async () => (await stored()).length === 4, () => "the moved input's line");
    // Each once (TCP and UDP lines may be stored in either order).
    assert.deepEqual((await stored()).sort(), [
      "<13>after the reload",
      "<13>before the reload",
      "<13>over udp",
      "a raw line",
    ]);
  } finally {
    conn.close();
    await pipeline.close();
    await Deno.remove(dir, { recursive: true });
  }
});
