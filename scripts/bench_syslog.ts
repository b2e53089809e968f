/**
 * The syslog and UDP benchmark scenarios (`deno task bench -scenario syslog,udp`), each against
 * rsyslog on the same load in the same shell, rounds alternating which runs first.
 *
 * - `syslog`: C connections (default 8) each send N octet-counted RFC 5424 messages (RFC 6587
 *   `LEN SP MSG`, S-1 bytes each, unique `c<conn> <seq>` in MSG) to logboom's syslog input
 *   (`serve -syslog`), which stores them in one file, and to rsyslog `imptcp` with
 *   `SupportOctetCountedFraming="on"` writing `%rawmsg%` with `omfile` (the `tcp` scenario's
 *   tuning: async writing, 256 KiB buffer). Timed from the first byte sent to the last byte in
 *   the file; each file is then verified (missing, duplicated, torn). A third run per round has
 *   logboom parse every header (`-logFile {app}.log`, as a path template with syslog labels does;
 *   rsyslog parses every message in all runs). Bar: logboom's median lines/s at least 2x
 *   rsyslog's, nothing missing, duplicated or torn. Server CPU seconds (from /proc) are reported
 *   beside it: on a shared machine they swing less than wall rates.
 * - `udp`: one datagram per message (one 99-byte line) at a set rate for `-seconds` to logboom's
 *   raw UDP input (`-udp`), its syslog input over UDP (`-syslog`) and rsyslog `imudp`, all with
 *   the system's receive buffer (`net.core.rmem_default`) or all with `-udpBuffer` (logboom's
 *   `-udpReceiveBuffer`, rsyslog's `rcvbufSize`). First the rate is stepped up (10k to 400k/s)
 *   until rsyslog loses more than 0.1% (a lossy step is run twice more and passes if both lose at
 *   most that), or the sender cannot go faster; then each receiver runs at the last rate that
 *   passed, and at twice it unless the sender was the limit. Reported: sent, received and lost,
 *   the kernel's drop counter of the socket (`/proc/net/udp`), logboom's own
 *   (`logboom_input_udp_dropped_total`) and the receiver's CPU seconds. Bars: what logboom lost is
 *   exactly what the kernel dropped (nothing is lost inside logboom), none duplicated or torn, and
 *   `/metrics` shows the kernel's count.
 *
 * The load generator and verifier are `scripts/syslog_loadgen.go` (Go, standard library only),
 * built once into `$BENCH_BIN` (default `$TMPDIR/logbench-bin`). rsyslog is `$RSYSLOGD`, else
 * `rsyslogd` on the PATH, else `/usr/sbin/rsyslogd`, else `.tools/rsyslog/usr/sbin/rsyslogd` (where
 * `.ci/run` unpacks it: it conflicts with syslog-ng as a package); its modules are looked up beside
 * it (`-M`). Without Go or rsyslog, the scenarios are skipped with a line saying what is missing.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { median } from "./_median.ts";
import { BENCH_BIN, buildGo, cpuSeconds, drain, peakRssKb } from "./_proc.ts";
import { bindFreePort } from "../tests/_server.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const loadgenSource = `${root}scripts/syslog_loadgen.go`;
const loadgenExe = `${BENCH_BIN}/syslog_loadgen`;
const decoder = new TextDecoder();

/** The TCP workload: connections, messages per connection, bytes per stored line (LF included). */
export interface SyslogLoad {
  c: number;
  n: number;
  s: number;
}

/** The UDP workload: bytes per stored line, and a fixed rate instead of searching for one. */
export interface UdpLoad {
  s: number;
  rate?: number;
  seconds: number;
  /**
   * The sockets' receive buffer in bytes as the kernel counts it (`ss -m` rb): logboom's
   * `-udpReceiveBuffer`, rsyslog's `RcvBufSize` of half that (the kernel doubles what it is
   * given, and rsyslog passes its value as is). Default: the system's (`net.core.rmem_default`).
   */
  buffer?: number;
}

async function runs(command: string, args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** The rsyslogd to run: `$RSYSLOGD`, the PATH's, Debian's, or the one `.ci/run` unpacks. */
async function findRsyslogd(): Promise<string | undefined> {
  const fromEnv = Deno.env.get("RSYSLOGD");
  if (fromEnv !== undefined) return fromEnv;
  for (
    const candidate of ["rsyslogd", "/usr/sbin/rsyslogd", `${root}.tools/rsyslog/usr/sbin/rsyslogd`]
  ) {
    if (await runs(candidate, ["-v"])) return candidate;
  }
}

/** What the scenarios need and this machine lacks, as one phrase; `undefined` when all is here. */
export async function syslogBenchMissing(): Promise<string | undefined> {
  const missing: string[] = [];
  if (!await runs("go", ["version"])) missing.push("Go (apt-get install golang-go)");
  const rsyslogd = await findRsyslogd();
  if (rsyslogd === undefined) {
    missing.push(
      "rsyslog (apt-get install rsyslog, or apt-get download rsyslog && dpkg -x rsyslog_*.deb " +
        ".tools/rsyslog, or set RSYSLOGD)",
    );
  } else if (!await runs(rsyslogd, ["-v"])) {
    missing.push(`rsyslog (RSYSLOGD=${rsyslogd} does not run)`);
  }
  return missing.length === 0 ? undefined : missing.join(" and ");
}

/** Runs the load generator; returns its last line of output. */
async function loadgen(...args: string[]): Promise<string> {
  const out = await new Deno.Command(loadgenExe, { args }).output();
  const line = decoder.decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success) {
    throw new Error(`syslog_loadgen ${args[0]} failed: ${line} ${decoder.decode(out.stderr)}`);
  }
  return line;
}

/** A number from `line` after `name=`; NaN when absent. */
function field(line: string, name: string): number {
  return Number(new RegExp(`(?:^| )${name}=([\\d.]+)`).exec(line)?.[1] ?? NaN);
}

interface Verified {
  lines: number;
  missing: number;
  duplicated: number;
  torn: number;
  text: string;
}

async function verify(file: string, c: number, n: number, s: number): Promise<Verified> {
  const text = await loadgen("verify", "-c", String(c), "-n", String(n), "-s", String(s), file);
  return {
    lines: field(text, "lines"),
    missing: field(text, "missing"),
    duplicated: field(text, "duplicated"),
    torn: field(text, "torn"),
    text,
  };
}

async function cat(path: string): Promise<string> {
  const out = await new Deno.Command("cat", { args: [path], stderr: "null" }).output();
  return decoder.decode(out.stdout);
}

/**
 * The kernel's drop counter of the UDP socket bound to 127.0.0.1:`port` (the last column of
 * `/proc/net/udp`, read with cat(1) as `_proc.ts` does); `undefined` when no socket is bound there.
 */
async function udpKernelDrops(port: number): Promise<number | undefined> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const row of (await cat("/proc/net/udp")).split("\n")) {
    const columns = row.trim().split(/\s+/);
    if (columns[1] === local) return Number(columns.at(-1));
  }
}

/** A loopback port free for both TCP and UDP right now (`-syslog` binds both). */
function freeTcpUdpPort(): number {
  return bindFreePort((port) => {
    const tcp = Deno.listen({ hostname: "127.0.0.1", port });
    try {
      Deno.listenDatagram({ hostname: "127.0.0.1", port, transport: "udp" }).close();
    } finally {
      tcp.close();
    }
    return port;
  });
}

async function until(what: string, ready: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!await ready()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

/** Waits until `path` has not grown for `quietMs` (rsyslog flushes each second), at most 20 s. */
async function settled(path: string, quietMs = 1500): Promise<void> {
  const deadline = Date.now() + 20_000;
  let size = await fileSize(path);
  let since = Date.now();
  while (Date.now() - since < quietMs && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = await fileSize(path);
    if (now !== size) [size, since] = [now, Date.now()];
  }
}

/** A receiver under test: logboom or rsyslog, in its own temporary folder. */
interface Receiver {
  name: ReceiverKind;
  pid: number;
  /** Its temporary folder, removed by `remove`. */
  dir: string;
  /** The file the messages end up in. */
  file: string;
  /** logboom's /metrics, when it is logboom. */
  metrics?: () => Promise<string>;
  /** Stops it (SIGTERM: what it holds is written first). */
  stop(): Promise<void>;
}

type ReceiverKind = "logboom" | "logboom-parsed" | "logboom-udp" | "logboom-syslog" | "rsyslog";

/** `fn`, run at most once: later calls get the first call's promise. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => running ??= fn();
}

async function startLogboom(
  kind: ReceiverKind,
  port: number,
  buffer: number | undefined,
): Promise<Receiver> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-bench-syslog-" });
  const http = freeTcpUdpPort();
  const parsed = kind === "logboom-parsed";
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-write",
      `--allow-read=${dir}`,
      // ss(8) reads the kernel's UDP drop counters for /metrics.
      ...(kind === "logboom-udp" || kind === "logboom-syslog" ? ["--allow-run=ss"] : []),
      // -udpReceiveBuffer sets SO_RCVBUF through libc.
      ...(buffer === undefined ? [] : ["--allow-ffi"]),
      `${root}main.ts`,
      ...["-port", String(freeTcpUdpPort()), "-http", `127.0.0.1:${http}`],
      // A path template with {app} makes the input parse each header for its labels.
      ...["-logFile", parsed ? `${dir}/{app}.log` : `${dir}/out.log`],
      ...[kind === "logboom-udp" ? "-udp" : "-syslog", `127.0.0.1:${port}`],
      ...(buffer === undefined ? [] : ["-udpReceiveBuffer", String(buffer)]),
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const err = drain(child.stderr, "Listening on");
  if (!await err.seen) {
    await child.status;
    throw new Error(`logboom did not start:\n${err.text()}`);
  }
  return {
    name: kind,
    pid: child.pid,
    dir,
    file: parsed ? `${dir}/loadgen.log` : `${dir}/out.log`,
    metrics: async () => await (await fetch(`http://127.0.0.1:${http}/metrics`)).text(),
    stop: once(async () => {
      child.kill("SIGTERM");
      const status = await child.status;
      await err.done;
      if (!status.success) throw new Error(`logboom exited with ${status.code}: ${err.text()}`);
    }),
  };
}

/**
 * rsyslog's configuration: `imptcp` (octet counting on) or `imudp` on 127.0.0.1:`port`, every
 * message written as received (`%rawmsg%`, framing excluded) by `omfile` tuned as for the `tcp`
 * scenario (`../shared/bench/peers/rsyslog.conf`).
 */
function rsyslogConf(
  dir: string,
  port: number,
  transport: "tcp" | "udp",
  buffer: number | undefined,
): string {
  const rcvbuf = buffer === undefined ? "" : ` rcvbufSize="${Math.floor(buffer / 2)}"`;
  const input = transport === "tcp"
    ? `module(load="imptcp")\ninput(type="imptcp" address="127.0.0.1" port="${port}" ` +
      `ruleset="agg" SupportOctetCountedFraming="on")`
    : `module(load="imudp")\ninput(type="imudp" address="127.0.0.1" port="${port}" ` +
      `ruleset="agg"${rcvbuf})`;
  return `global(workDirectory="${dir}")
${input}
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="agg") {
  action(type="omfile" file="${dir}/out.log" template="raw" asyncWriting="on" ioBufferSize="256k" flushOnTXEnd="off" flushInterval="1")
}
`;
}

async function startRsyslog(
  port: number,
  transport: "tcp" | "udp",
  buffer: number | undefined,
): Promise<Receiver> {
  const rsyslogd = (await findRsyslogd())!;
  const dir = await Deno.makeTempDir({ prefix: "logboom-bench-rsyslog-" });
  await Deno.writeTextFile(`${dir}/rs.conf`, rsyslogConf(dir, port, transport, buffer));
  // Its modules sit beside it: <prefix>/sbin/rsyslogd, <prefix>/lib/x86_64-linux-gnu/rsyslog.
  const which = await new Deno.Command("sh", {
    args: ["-c", 'command -v "$1"', "sh", rsyslogd],
  }).output();
  const path = decoder.decode(which.stdout).trim();
  const prefix = path.split("/").slice(0, -2).join("/");
  const modules = `${prefix}/lib/x86_64-linux-gnu/rsyslog`;
  const child = new Deno.Command(path, {
    args: ["-n", "-f", `${dir}/rs.conf`, "-i", `${dir}/pid`, "-M", modules],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const err = drain(child.stderr);
  let exited = false;
  child.status.then(() => exited = true);
  await until("rsyslog to listen", async () => {
    if (exited) throw new Error(`rsyslog did not start: ${err.text()}`);
    if (transport === "udp") return await udpKernelDrops(port) !== undefined;
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return true;
    } catch {
      return false;
    }
  });
  return {
    name: "rsyslog",
    pid: child.pid,
    dir,
    file: `${dir}/out.log`,
    stop: once(async () => {
      child.kill("SIGTERM");
      await child.status;
      await err.done;
    }),
  };
}

function start(
  kind: ReceiverKind,
  port: number,
  transport: "tcp" | "udp",
  buffer?: number,
): Promise<Receiver> {
  return kind === "rsyslog"
    ? startRsyslog(port, transport, buffer)
    : startLogboom(kind, port, buffer);
}

const M = (x: number) => (x / 1e6).toFixed(2);
/** "median (min-max)" of `xs`, each shown with `show`. */
function spread(xs: readonly number[], show: (x: number) => string): string {
  return `${show(median(xs))} (${show(Math.min(...xs))}-${show(Math.max(...xs))})`;
}

/** One TCP run's figures. */
interface TcpRun {
  rate: number;
  e2e: number;
  /** The load generator's verdict: ok, or INCOMPLETE and how much arrived. */
  status: string;
  cpu: number;
  rssKb: number;
  /** logboom's octet-counting framing errors, from /metrics. */
  framingErrors?: number;
  checked: Verified;
}

async function tcpRun(kind: ReceiverKind, load: SyslogLoad): Promise<TcpRun> {
  const { c, n, s } = load;
  const port = freeTcpUdpPort();
  const receiver = await start(kind, port, "tcp");
  try {
    // The previous run's hundreds of megabytes are written back first, not during this one.
    await new Deno.Command("sync").output();
    const before = await cpuSeconds(receiver.pid);
    const result = await loadgen(
      "tcp",
      ...["-addr", `127.0.0.1:${port}`, "-c", String(c), "-n", String(n), "-s", String(s)],
      ...["-sink", receiver.file, "-timeout", "120s"],
    );
    const cpu = await cpuSeconds(receiver.pid) - before;
    const rssKb = await peakRssKb(receiver.pid);
    const metrics = await receiver.metrics?.();
    const errors = metrics === undefined ? undefined : Number(
      /^logboom_input_framing_errors_total\{[^}]*transport="tcp"\} (\d+)/m.exec(metrics)?.[1],
    );
    await receiver.stop();
    return {
      rate: field(result, "rate"),
      e2e: field(result, "e2e"),
      status: result.split(" ")[0],
      cpu,
      rssKb,
      framingErrors: errors,
      checked: await verify(receiver.file, c, n, s),
    };
  } finally {
    await receiver.stop().catch(() => {});
    await Deno.remove(receiver.dir, { recursive: true });
  }
}

/** Syslog over TCP into a file, logboom against rsyslog imptcp; returns the bars that were missed. */
export async function benchSyslog(rounds: number, load: SyslogLoad): Promise<string[]> {
  const missing = await syslogBenchMissing();
  if (missing !== undefined) {
    console.log(`Skipped syslog: it needs ${missing}`);
    return [];
  }
  await buildGo(loadgenSource, "syslog_loadgen");
  const { c, n, s } = load;
  console.log(
    `Syslog over TCP -> file, ${c} connections x ${n} octet-counted RFC 5424 messages x ${s} B ` +
      `(stored line), ${rounds} rounds, ${new Date().toISOString()}`,
  );
  const kinds: ReceiverKind[] = ["logboom", "rsyslog", "logboom-parsed"];
  const rate: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  let lost = 0;
  for (let round = 0; round < rounds; round++) {
    // Which goes first rotates, so none gains from the machine's state after another.
    for (const kind of kinds.map((_, i) => kinds[(i + round) % kinds.length])) {
      const run = await tcpRun(kind, load);
      (rate[kind] ??= []).push(run.rate);
      (cpu[kind] ??= []).push(run.cpu);
      const { missing, duplicated, torn } = run.checked;
      if (kind !== "rsyslog") lost += missing + duplicated + torn + (run.framingErrors ?? 0);
      console.log(
        `  ${kind.padEnd(14)} ${M(run.rate)} M lines/s, ${run.cpu.toFixed(2)} s CPU, ` +
          `peak RSS ${(run.rssKb / 1024).toFixed(0)} MB | ${run.status} e2e=${run.e2e}s | ` +
          run.checked.text +
          (run.framingErrors === undefined ? "" : ` framing_errors=${run.framingErrors}`),
      );
    }
  }
  const ratio = median(rate.logboom) / median(rate.rsyslog);
  const cpuRatio = median(cpu.rsyslog) / median(cpu.logboom);
  for (const kind of kinds) {
    console.log(
      `${kind.padEnd(14)} median ${spread(rate[kind], M)} M lines/s, CPU ${
        spread(cpu[kind], (x) => x.toFixed(2))
      } s`,
    );
  }
  console.log(
    `logboom/rsyslog: ${ratio.toFixed(2)}x the lines/s, rsyslog used ${
      cpuRatio.toFixed(2)
    }x logboom's CPU; parsing every header: ${
      (median(rate["logboom-parsed"]) / median(rate.rsyslog)).toFixed(2)
    }x the lines/s, rsyslog used ${
      (median(cpu.rsyslog) / median(cpu["logboom-parsed"])).toFixed(2)
    }x its CPU`,
  );
  const misses: string[] = [];
  if (ratio < 2) misses.push(`syslog: logboom ${ratio.toFixed(2)}x rsyslog's lines/s < 2x`);
  if (lost > 0) {
    misses.push(`syslog: ${lost} lines missing, duplicated, torn or misframed in logboom's files`);
  }
  return misses;
}

/** One UDP run's figures. */
interface UdpRun {
  sent: number;
  /** Distinct messages stored. */
  received: number;
  seconds: number;
  /** The kernel's drops for the socket, from /proc/net/udp. */
  kernelDrops: number;
  /** logboom's `logboom_input_udp_dropped_total`, once it caught up with the kernel's. */
  metricDrops?: number;
  duplicated: number;
  torn: number;
  cpu: number;
}

const lostPercent = (run: UdpRun) => (run.sent - run.received) / run.sent * 100;

/** The input's `logboom_input_udp_dropped_total`, once it equals `kernel` (ss is read every 5 s). */
async function logboomDrops(receiver: Receiver, kernel: number): Promise<number | undefined> {
  const name = receiver.name === "logboom-udp" ? 'input="udp"' : 'input="syslog"';
  let value: number | undefined;
  await until("logboom_input_udp_dropped_total", async () => {
    const metrics = await receiver.metrics!();
    const match = new RegExp(`^logboom_input_udp_dropped_total\\{${name}[^}]*\\} (\\d+)`, "m")
      .exec(metrics);
    value = match ? Number(match[1]) : undefined;
    return value === kernel;
  }, 8000).catch(() => {});
  return value;
}

async function udpRun(kind: ReceiverKind, rate: number, load: UdpLoad): Promise<UdpRun> {
  const port = freeTcpUdpPort();
  const receiver = await start(kind, port, "udp", load.buffer);
  try {
    const before = await cpuSeconds(receiver.pid);
    const dropsBefore = await udpKernelDrops(port) ?? 0;
    const result = await loadgen(
      "udp",
      ...["-addr", `127.0.0.1:${port}`, "-rate", String(rate), "-seconds", String(load.seconds)],
      ...["-s", String(load.s)],
    );
    await settled(receiver.file);
    const kernelDrops = (await udpKernelDrops(port) ?? NaN) - dropsBefore;
    const cpu = await cpuSeconds(receiver.pid) - before;
    const metricDrops = receiver.metrics ? await logboomDrops(receiver, kernelDrops) : undefined;
    await receiver.stop();
    // Messages are numbered from 0 to what was tried; failed sends never arrive.
    const tried = field(result, "sent") + field(result, "failed");
    await Deno.writeFile(receiver.file, new Uint8Array(), { append: true }); // none arrived
    const checked = await verify(receiver.file, 1, tried, load.s);
    return {
      sent: field(result, "sent"),
      seconds: field(result, "seconds"),
      received: tried - checked.missing,
      kernelDrops,
      metricDrops,
      duplicated: checked.duplicated,
      torn: checked.torn,
      cpu,
    };
  } finally {
    await receiver.stop().catch(() => {});
    await Deno.remove(receiver.dir, { recursive: true });
  }
}

function describeUdp(kind: string, run: UdpRun): string {
  return `  ${kind.padEnd(14)} sent ${run.sent} (${
    (run.sent / run.seconds / 1000).toFixed(0)
  } k/s), ` +
    `received ${run.received} (${(run.received / run.seconds / 1000).toFixed(0)} k/s), lost ${
      lostPercent(run).toFixed(2)
    }%, kernel drops ${run.kernelDrops}` +
    (run.metricDrops === undefined ? "" : `, /metrics drops ${run.metricDrops}`) +
    (run.duplicated + run.torn > 0 ? `, duplicated ${run.duplicated}, torn ${run.torn}` : "") +
    `, ${run.cpu.toFixed(2)} s CPU`;
}

/** UDP received versus sent, at the highest rate where rsyslog loses nothing and at twice it. */
export async function benchUdp(rounds: number, load: UdpLoad): Promise<string[]> {
  const missing = await syslogBenchMissing();
  if (missing !== undefined) {
    console.log(`Skipped udp: it needs ${missing}`);
    return [];
  }
  await buildGo(loadgenSource, "syslog_loadgen");
  const rmemDefault = Number((await cat("/proc/sys/net/core/rmem_default")).trim());
  console.log(
    `UDP -> file, one ${load.s - 1}-byte RFC 5424 message per datagram for ${load.seconds} s, ` +
      `receive buffer ${
        load.buffer === undefined
          ? `the system's (net.core.rmem_default ${rmemDefault} B)`
          : `${load.buffer} B (logboom -udpReceiveBuffer, rsyslog rcvbufSize ${load.buffer / 2})`
      }; ${new Date().toISOString()}`,
  );
  let rate = load.rate;
  /** Whether the sender could not reach the rate found: twice it would measure the sender. */
  let senderBound = false;
  if (rate === undefined) {
    console.log(
      "Stepping up the rate until rsyslog imudp loses more than 0.1% (a lossy step is run twice " +
        "more and passes only if both lose at most that: one loss can be another process taking " +
        "the CPU for a moment):",
    );
    search: for (const step of [10, 20, 30, 50, 70, 100, 150, 200, 300, 400].map((k) => k * 1000)) {
      let run = await udpRun("rsyslog", step, load);
      console.log(describeUdp(`rsyslog @${step / 1000}k`, run));
      // A lossy run: the step passes only if the next two lose at most 0.1%.
      for (let retry = lostPercent(run) > 0.1 ? 0 : 2; retry < 2; retry++) {
        run = await udpRun("rsyslog", step, load);
        console.log(describeUdp(`rsyslog @${step / 1000}k`, run));
        if (lostPercent(run) > 0.1) break search;
      }
      rate = step;
      const reached = run.sent / run.seconds;
      if (reached < 0.95 * step) {
        // What the sender can do here, in tens of thousands, is the rate compared at.
        rate = Math.max(10_000, Math.floor(reached / 10_000) * 10_000);
        console.log(`  the sender reached only ${(reached / 1000).toFixed(0)} k/s`);
        senderBound = true;
        break;
      }
    }
    if (rate === undefined) {
      console.log("rsyslog lost more than 0.1% at the lowest rate: nothing to compare at");
      return [];
    }
    console.log(
      `rsyslog imudp loses at most 0.1% up to ${rate / 1000}k datagrams/s` +
        (senderBound ? ", about the most the sender reaches" : ""),
    );
  }
  const kinds: ReceiverKind[] = ["logboom-udp", "logboom-syslog", "rsyslog"];
  const results: Record<string, UdpRun[]> = {};
  const misses: string[] = [];
  if (senderBound) {
    console.log("Twice that rate is past what the sender reaches here: not measured");
  }
  for (const at of senderBound ? [rate] : [rate, 2 * rate]) {
    console.log(`At ${at / 1000}k datagrams/s, ${rounds} rounds:`);
    for (let round = 0; round < rounds; round++) {
      for (const kind of kinds.map((_, i) => kinds[(i + round) % kinds.length])) {
        const run = await udpRun(kind, at, load);
        (results[`${kind}@${at}`] ??= []).push(run);
        console.log(describeUdp(kind, run));
        const unaccounted = run.sent - run.received - run.kernelDrops;
        if (kind !== "rsyslog" && (unaccounted !== 0 || run.duplicated + run.torn > 0)) {
          misses.push(
            `udp: ${kind} at ${at / 1000}k/s lost ${unaccounted} datagrams the kernel did not ` +
              `drop, duplicated ${run.duplicated}, tore ${run.torn}`,
          );
        }
        if (kind !== "rsyslog" && run.metricDrops !== run.kernelDrops) {
          misses.push(
            `udp: ${kind}'s logboom_input_udp_dropped_total ${run.metricDrops} while the kernel ` +
              `counted ${run.kernelDrops}`,
          );
        }
      }
    }
    for (const kind of kinds) {
      const runs = results[`${kind}@${at}`];
      console.log(
        `${kind.padEnd(14)} at ${at / 1000}k/s: received ${
          spread(runs.map((r) => r.received / r.seconds), (x) => `${(x / 1000).toFixed(0)}k`)
        }/s of sent ${
          spread(runs.map((r) => r.sent / r.seconds), (x) => `${(x / 1000).toFixed(0)}k`)
        }/s, lost ${spread(runs.map(lostPercent), (x) => `${x.toFixed(2)}%`)}, CPU ${
          spread(runs.map((r) => r.cpu), (x) => x.toFixed(2))
        } s`,
      );
    }
  }
  return misses;
}
