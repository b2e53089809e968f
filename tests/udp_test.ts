/**
 * `serve -udp` and `serve -syslog` with the real program: what arrives is stored, what the
 * kernel dropped is visible in `/metrics`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Pipeline } from "../src/config/pipeline.ts";
import { checkServerConfig } from "../src/config/server_config.ts";
import { formatProblem } from "../src/config/keys.ts";
import { FlagError } from "../src/cli/flags.ts";
import { parseServeArgs } from "../src/cli/serve.ts";
import { findSsSocket } from "../src/ingest/udp_drops.ts";
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

/** The receive buffer `ss -m` shows for the UDP socket at 127.0.0.1:`port`, as an operator checks. */
async function ssBuffer(port: number): Promise<number | undefined> {
  const out = await new Deno.Command("ss", {
    args: ["-u", "-a", "-n", "-m", "-H", `sport = :${port}`],
    stdout: "piped",
    stderr: "null",
  }).output();
  return findSsSocket(new TextDecoder().decode(out.stdout), "127.0.0.1")?.bufferBytes;
}

/** A file of /proc/sys/net/core as a number (Deno reads none of /proc without --allow-all). */
async function netCore(name: "rmem_default" | "rmem_max"): Promise<number> {
  const out = await new Deno.Command("cat", {
    args: [`/proc/sys/net/core/${name}`],
    stdout: "piped",
  }).output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

const MiB = 1024 * 1024;

/** The buffer the kernel gives for `asked`: root passes net.core.rmem_max, others get twice it. */
async function given(asked: number): Promise<number> {
  return Deno.uid() === 0 ? asked : Math.min(asked, 2 * await netCore("rmem_max"));
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

Deno.test("serve -udpReceiveBuffer with --allow-ffi: both UDP sockets get the buffer, as ss and /metrics show", async () => {
  const [udpPort, syslogPort] = [freePort(), freePort()];
  await using server = await startServer([
    "-udp",
    `127.0.0.1:${udpPort}`,
    "-syslog",
    `127.0.0.1:${syslogPort}`,
    "-udpReceiveBuffer",
    "4MiB",
  ], { permissions: [...CARD_PERMISSIONS, "--allow-ffi"] });
  // Root passes net.core.rmem_max; anyone else is capped at twice it, and told how to raise it.
  const expected = await given(4 * MiB);
  assert.equal(await ssBuffer(udpPort), expected);
  assert.equal(await ssBuffer(syslogPort), expected);
  const gauge = "logboom_input_udp_buffer_bytes";
  assert.equal(await metric(server.url, `${gauge}{input="udp",type="udp"}`), expected);
  assert.equal(
    await metric(server.url, `${gauge}{input="syslog",type="syslog",transport="udp"}`),
    expected,
  );
  const said = expected === 4 * MiB
    ? new RegExp(`receive buffer of ${expected} bytes \\(asked ${4 * MiB}\\)`, "g")
    : /capped by net\.core\.rmem_max/g;
  assert.equal(server.stderr().match(said)?.length, 2, server.stderr());
  // And it receives.
  const client = udpTo(udpPort);
  try {
    await client.send("after the buffer\n");
  } finally {
    client.close();
  }
  const file = join(server.dir, "aggregated_logs.txt");
  await until(async () => (await storedLines(file)).length === 1, () => "the line stored");
});

Deno.test("serve -udpReceiveBuffer without --allow-ffi: says once what it needs, runs with the system's buffer", async () => {
  const [udpPort, syslogPort] = [freePort(), freePort()];
  await using server = await startServer([
    "-udp",
    `127.0.0.1:${udpPort}`,
    "-syslog",
    `127.0.0.1:${syslogPort}`,
    "-udpReceiveBuffer",
    "4MiB",
  ]);
  const warning =
    /UDP receive buffers stay the system's.*--allow-ffi.*net\.core\.rmem_default=4194304/g;
  assert.equal(server.stderr().match(warning)?.length, 1, server.stderr());
  const system = await netCore("rmem_default");
  assert.equal(await ssBuffer(udpPort), system);
  assert.equal(await ssBuffer(syslogPort), system);
  const client = udpTo(udpPort);
  try {
    await client.send("with the system's buffer\n");
  } finally {
    client.close();
  }
  const file = join(server.dir, "aggregated_logs.txt");
  await until(async () => (await storedLines(file)).length === 1, () => "the line stored");
});

Deno.test("a reload sets a new receive buffer on the running sockets, and going back to the system's rebinds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-udp-buffer-" });
  const [linesPort, syslogPort] = [freePort(), freePort()];
  const config = (buffer: string | undefined) => {
    const { config, problems } = checkServerConfig({
      log_level: "error",
      http: { address: "off" },
      inputs: {
        lines: { type: "udp", address: `127.0.0.1:${linesPort}`, receive_buffer: buffer },
        syslog: { type: "syslog", udp: `127.0.0.1:${syslogPort}`, udp_receive_buffer: buffer },
      },
      sinks: { file: { type: "file", path: join(dir, "out.log") } },
    });
    assert.deepEqual(problems.list, []);
    return config;
  };
  // The tests run with --allow-ffi.
  const pipeline = await Pipeline.start(config("1MiB"));
  try {
    const one = await given(MiB);
    assert.deepEqual([await ssBuffer(linesPort), await ssBuffer(syslogPort)], [one, one]);
    const grown = await pipeline.reload(config("2MiB"));
    assert.deepEqual([grown.updated.sort(), grown.rebuilt], [["lines", "syslog"], []]);
    const two = await given(2 * MiB);
    assert.deepEqual([await ssBuffer(linesPort), await ssBuffer(syslogPort)], [two, two]);
    const back = await pipeline.reload(config(undefined));
    assert.deepEqual([back.updated, back.rebuilt.sort()], [[], ["lines", "syslog"]]);
    const system = await netCore("rmem_default");
    assert.deepEqual([await ssBuffer(linesPort), await ssBuffer(syslogPort)], [system, system]);
  } finally {
    await pipeline.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve -udpReceiveBuffer without CAP_NET_ADMIN: capped at twice net.core.rmem_max, and says how to raise it", async (t) => {
  const max = await netCore("rmem_max");
  const asked = 4 * max;
  if (Deno.uid() !== 0 || asked > 1024 * MiB) {
    // Dropping a capability needs root; a huge rmem_max cannot be met.
    await t.step({ name: "needs root and rmem_max under 256 MiB", ignore: true, fn: () => {} });
    return;
  }
  const udpPort = freePort();
  await using server = await startServer([
    "-udp",
    `127.0.0.1:${udpPort}`,
    "-udpReceiveBuffer",
    `${asked}`,
  ], {
    permissions: [...CARD_PERMISSIONS, "--allow-ffi"],
    wrapper: ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin"],
  });
  assert.equal(await ssBuffer(udpPort), 2 * max);
  assert.equal(
    await metric(server.url, 'logboom_input_udp_buffer_bytes{input="udp",type="udp"}'),
    2 * max,
  );
  assert.match(
    server.stderr(),
    new RegExp(
      `asked a receive buffer of ${asked} bytes and the kernel gave ${2 * max}, capped by ` +
        `net\\.core\\.rmem_max \\(${max}\\): raise it with sysctl -w net\\.core\\.rmem_max=${
          2 * max
        }`,
    ),
  );
});

Deno.test("a receive buffer out of bounds, or without a UDP socket, is refused with its key or flag", () => {
  const { problems } = checkServerConfig({
    inputs: {
      lines: { type: "udp", address: "127.0.0.1:5140", receive_buffer: "2GiB" },
      syslog: { type: "syslog", tcp: "127.0.0.1:5514", udp_receive_buffer: "8MiB" },
    },
    sinks: { file: { type: "file" } },
  });
  const said = problems.list.map(formatProblem).join("\n");
  assert.match(said, /inputs\.lines\.receive_buffer/);
  assert.match(said, /inputs\.syslog\.udp_receive_buffer: is for the UDP listener: set udp too/);
  assert.throws(
    () => parseServeArgs(["-udpReceiveBuffer", "8MiB"]),
    (err) => err instanceof FlagError && /-udp and -syslog/.test(err.message),
  );
  assert.throws(
    () => parseServeArgs(["-udp", "127.0.0.1:5140", "-udpReceiveBuffer", "1KiB"]),
    (err) => err instanceof FlagError && /4KiB to 1GiB/.test(err.message),
  );
  const { config } = parseServeArgs(["-udp", "127.0.0.1:5140", "-udpReceiveBuffer", "8MiB"]);
  assert.equal(config.udpReceiveBuffer, 8 * MiB);
});
