/**
 * Real syslog senders as clients: util-linux `logger`, rsyslog's `omfwd` and syslog-ng's
 * `syslog()` and `network()` destinations, each sending to logboom's syslog input over the
 * transports and formats people configure. Every message must arrive once, with the host, app,
 * severity and time it was sent with.
 *
 * rsyslog and syslog-ng run as daemons in a temporary folder (no root, no system socket): they
 * read messages that `logger` writes to their own unix socket, and forward them.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { SyslogInput } from "../src/ingest/syslog.ts";
import type { Batch } from "../src/pipeline/batch.ts";
import { TestSink } from "../src/pipeline/_test_sink.ts";
import { until } from "./_http.ts";
import { bindFreePort } from "./_server.ts";
import { spawnTool, toolPath } from "./_tools.ts";

/** One stored message and what logboom parsed of it. */
interface Seen {
  input: string;
  line: string;
  host: string;
  app?: string;
  facility?: string;
  severity?: string;
  time: number;
}

/** Keeps every message with its batch's meta and its own time. */
class Collector extends TestSink {
  readonly name = "collector";
  readonly seen: Seen[] = [];

  write(batch: Batch): boolean {
    const lines = new TextDecoder().decode(batch.data).split("\n").slice(0, -1);
    lines.forEach((line, i) => {
      const labels = batch.meta.labels ?? {};
      this.seen.push({
        input: batch.meta.input,
        line,
        host: batch.meta.host,
        app: labels.app,
        facility: labels.facility,
        severity: labels.severity,
        time: batch.times?.[i] ?? NaN,
      });
    });
    return true;
  }

  /** The messages of `input` that hold `token`. */
  find(input: string, token: string): Seen[] {
    return this.seen.filter((s) => s.input === input && s.line.includes(token));
  }
}

/** Syslog inputs named after what they receive, all writing to one collector. */
class Inputs {
  readonly sink = new Collector();
  readonly #inputs: SyslogInput[] = [];

  /** A syslog input on a free port, TCP or UDP, parsing labels and times. */
  listen(name: string, transport: "tcp" | "udp"): number {
    const input = bindFreePort((port) =>
      SyslogInput.listen({
        name,
        [transport]: { hostname: "127.0.0.1", port },
        times: true,
        udpOptions: { kernelDrops: false },
      }, this.sink)
    );
    this.#inputs.push(input);
    return (transport === "tcp" ? input.tcpAddr! : input.udpAddr!).port;
  }

  /** Waits until `input` has stored `count` messages with `token`. */
  async arrived(input: string, token: string, count = 1): Promise<Seen[]> {
    await until(
      () => this.sink.find(input, token).length >= count,
      () => `${input}: ${token} not seen; seen: ${JSON.stringify(this.sink.seen.slice(-5))}`,
    );
    return this.sink.find(input, token);
  }

  async close(): Promise<void> {
    await Promise.all(this.#inputs.map((i) => i.close({ quietMs: 50 })));
  }
}

/** Senders run in UTC, so that dates without an offset (RFC 3164) mean what logboom reads. */
const ENV = { TZ: "UTC", LANG: "C" };

/** Runs a command to its end; fails the test with its stderr when it fails. */
async function run(command: string, args: string[], tool = command): Promise<void> {
  const child = spawnTool(
    new Deno.Command(command, { args, env: ENV, stdout: "piped", stderr: "piped" }),
    tool,
  );
  const out = await child.output();
  assert.ok(
    out.success,
    `${command} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
  );
}

/** The machine's host name, as senders see it, and its first label. */
async function hostNames(): Promise<string[]> {
  const out = await new Deno.Command("uname", { args: ["-n"], stdout: "piped" }).output();
  const full = new TextDecoder().decode(out.stdout).trim();
  return [full, full.split(".")[0]];
}

/**
 * Checks what logboom parsed of one message sent between `before` and `after` (ms): exactly one
 * copy, its host, app, severity and facility, and a time within the send (to the second for
 * senders that write whole seconds).
 */
function check(
  found: Seen[],
  want: { host: string | string[]; app: string; severity: string; facility: string },
  before: number,
  after: number,
): void {
  assert.equal(found.length, 1, `once: ${JSON.stringify(found)}`);
  const [seen] = found;
  const hosts = typeof want.host === "string" ? [want.host] : want.host;
  assert.ok(hosts.includes(seen.host), `host ${seen.host} in ${hosts} (${seen.line})`);
  assert.equal(seen.app, want.app, seen.line);
  assert.equal(seen.severity, want.severity, seen.line);
  assert.equal(seen.facility, want.facility, seen.line);
  assert.ok(
    seen.time >= Math.floor(before / 1000) * 1000 && seen.time <= after,
    `time ${new Date(seen.time).toISOString()} within the send ` +
      `${new Date(before).toISOString()} .. ${new Date(after).toISOString()} (${seen.line})`,
  );
}

let counter = 0;
/** A token no other message of the run holds. */
function token(what: string): string {
  return `${what}-${Date.now().toString(36)}-${++counter}`;
}

/** A sender daemon run in the foreground, stopped at the end of its test. */
class Daemon {
  readonly #name: string;
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<Deno.CommandOutput>;
  #output: Deno.CommandOutput | undefined;

  constructor(command: string, args: string[], tool: string) {
    this.#name = tool;
    this.#child = spawnTool(
      new Deno.Command(command, { args, env: ENV, stdout: "null", stderr: "piped" }),
      tool,
    );
    this.#done = this.#child.output().then((out) => this.#output = out);
  }

  /** Waits until the daemon created `path` (its socket); fails with its stderr if it ended. */
  async ready(path: string): Promise<void> {
    await until(async () => {
      if (this.#output !== undefined) {
        assert.fail(`${this.#name} ended: ${new TextDecoder().decode(this.#output.stderr)}`);
      }
      return await Deno.stat(path).then(() => true, () => false);
    }, () => `${this.#name} did not create ${path}`);
  }

  /** Stops it (SIGTERM) and waits for it to end. */
  async stop(): Promise<void> {
    if (this.#output === undefined) {
      try {
        this.#child.kill("SIGTERM");
      } catch {
        // Ended meanwhile.
      }
    }
    await this.#done;
  }
}

Deno.test("logger (util-linux) over TCP and UDP, RFC 5424 and 3164, octet-counted, structured data", async () => {
  const inputs = new Inputs();
  const hosts = await hostNames();
  try {
    const cases: { name: string; transport: "tcp" | "udp"; flags: string[] }[] = [
      { name: "tcp-5424", transport: "tcp", flags: ["--tcp", "--rfc5424"] },
      { name: "tcp-5424-octet", transport: "tcp", flags: ["--tcp", "--rfc5424", "--octet-count"] },
      { name: "tcp-3164", transport: "tcp", flags: ["--tcp", "--rfc3164"] },
      {
        name: "udp-5424-sd",
        transport: "udp",
        flags: ["--udp", "--rfc5424", "--sd-id", "meta@32473", "--sd-param", 'env="prod"'],
      },
      { name: "udp-3164", transport: "udp", flags: ["--udp", "--rfc3164"] },
    ];
    for (const { name, transport, flags } of cases) {
      const port = inputs.listen(name, transport);
      // Two messages per connection, of two severities and facilities.
      for (
        const [priority, facility, severity] of [["local0.err", "local0", "err"], [
          "user.info",
          "user",
          "info",
        ]]
      ) {
        const text = token(name);
        const before = Date.now();
        await run("logger", [
          ...flags,
          "-n",
          "127.0.0.1",
          "-P",
          String(port),
          "-t",
          "myapp",
          "-p",
          priority,
          text,
        ]);
        const after = Date.now();
        const found = await inputs.arrived(name, text);
        check(found, { host: hosts, app: "myapp", severity, facility }, before, after);
        // Stored as sent: the message itself is intact at the end of the line.
        assert.ok(found[0].line.endsWith(text), found[0].line);
        if (name === "udp-5424-sd") assert.match(found[0].line, /\[meta@32473 env="prod"\]/);
      }
    }
  } finally {
    await inputs.close();
  }
});

/** rsyslog's omfwd in its three common templates, over octet-counted TCP and over UDP. */
Deno.test("rsyslog omfwd: octet-counted TCP and UDP, in RSYSLOG_SyslogProtocol23Format, ForwardFormat and TraditionalForwardFormat", async () => {
  const rsyslogd = await toolPath("rsyslogd");
  // Unpacked (not on the PATH), it is told where its modules are.
  const modules = rsyslogd.startsWith("/")
    ? ["-M", join(rsyslogd, "..", "..", "lib", `${Deno.build.arch}-linux-gnu`, "rsyslog")]
    : [];
  const dir = await Deno.makeTempDir({ prefix: "logboom-rsyslog-" });
  const inputs = new Inputs();
  const templates = [
    ["proto23", "RSYSLOG_SyslogProtocol23Format"],
    ["forward", "RSYSLOG_ForwardFormat"],
    ["traditional", "RSYSLOG_TraditionalForwardFormat"],
  ];
  const actions: string[] = [];
  for (const [short, template] of templates) {
    for (const transport of ["tcp", "udp"] as const) {
      const port = inputs.listen(`rsyslog-${short}-${transport}`, transport);
      actions.push(
        `action(type="omfwd" target="127.0.0.1" port="${port}" protocol="${transport}" ` +
          `template="${template}"` +
          (transport === "tcp" ? ` TCP_Framing="octet-counted"` : "") + ")",
      );
    }
  }
  const socket = join(dir, "log.sock");
  await Deno.writeTextFile(
    join(dir, "rsyslog.conf"),
    [
      `global(workDirectory="${dir}" localHostName="rshost")`,
      `module(load="imuxsock" SysSock.Use="off")`,
      `input(type="imuxsock" Socket="${socket}" RateLimit.Interval="0")`,
      ...actions,
    ].join("\n") + "\n",
  );
  const daemon = new Daemon(rsyslogd, [
    "-n",
    "-f",
    join(dir, "rsyslog.conf"),
    "-i",
    join(dir, "pid"),
    ...modules,
  ], "rsyslogd");
  try {
    await daemon.ready(socket);
    const sent: { text: string; before: number; after: number; severity: string }[] = [];
    for (const [priority, severity] of [["local3.warning", "warning"], ["local3.debug", "debug"]]) {
      const text = token("rsyslog");
      const before = Date.now();
      await run("logger", ["-u", socket, "-t", "rsapp", "-p", priority, text]);
      sent.push({ text, before, after: Date.now() + 1000, severity });
    }
    for (const [short] of templates) {
      for (const transport of ["tcp", "udp"]) {
        const name = `rsyslog-${short}-${transport}`;
        for (const { text, before, after, severity } of sent) {
          const found = await inputs.arrived(name, text);
          check(
            found,
            { host: "rshost", app: "rsapp", severity, facility: "local3" },
            before,
            after,
          );
        }
      }
    }
  } finally {
    await daemon.stop();
    await inputs.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("syslog-ng syslog() and network() destinations, over TCP and UDP", async () => {
  const syslogNg = await toolPath("syslog-ng");
  const dir = await Deno.makeTempDir({ prefix: "logboom-syslog-ng-" });
  const inputs = new Inputs();
  const destinations: string[] = [];
  const names: string[] = [];
  for (const driver of ["syslog", "network"]) {
    for (const transport of ["tcp", "udp"] as const) {
      const name = `syslog-ng-${driver}-${transport}`;
      const port = inputs.listen(name, transport);
      names.push(name);
      destinations.push(
        `destination d_${driver}_${transport} { ${driver}("127.0.0.1" port(${port}) ` +
          `transport("${transport}")); };`,
      );
    }
  }
  const socket = join(dir, "ng.sock");
  await Deno.writeTextFile(
    join(dir, "syslog-ng.conf"),
    [
      "@version: 3.38",
      "options { use-fqdn(no); stats-freq(0); };",
      `source s_local { unix-dgram("${socket}" host-override("nghost")); };`,
      ...destinations,
      `log { source(s_local); ${
        ["syslog", "network"].flatMap((d) => ["tcp", "udp"].map((t) => `destination(d_${d}_${t});`))
          .join(" ")
      } };`,
    ].join("\n") + "\n",
  );
  const daemon = new Daemon(syslogNg, [
    "-F",
    "--no-caps",
    "-f",
    join(dir, "syslog-ng.conf"),
    "--persist-file",
    join(dir, "persist"),
    "--pidfile",
    join(dir, "pid"),
    "--control",
    join(dir, "ctl"),
  ], "syslog-ng");
  try {
    await daemon.ready(socket);
    const sent: { text: string; before: number; after: number; severity: string }[] = [];
    for (const [priority, severity] of [["local5.notice", "notice"], ["local5.crit", "crit"]]) {
      const text = token("syslog-ng");
      const before = Date.now();
      await run("logger", ["-u", socket, "-t", "ngapp", "-p", priority, text]);
      sent.push({ text, before, after: Date.now() + 1000, severity });
    }
    for (const name of names) {
      for (const { text, before, after, severity } of sent) {
        const found = await inputs.arrived(name, text);
        check(found, { host: "nghost", app: "ngapp", severity, facility: "local5" }, before, after);
      }
    }
  } finally {
    await daemon.stop();
    await inputs.close();
    await Deno.remove(dir, { recursive: true });
  }
});
