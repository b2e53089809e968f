/**
 * `serve -config FILE` and `validate -config FILE` with the real program: the reference page's
 * example runs as written (ports swapped for free ones) and every component in it works; bad
 * files are refused with every problem at its key path.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, holdLock, send, writeAll } from "./_server.ts";
import { ingest, runCli, SseTail, until } from "./_http.ts";

const EXAMPLE = new URL("../src/config/example.yaml", import.meta.url);
/** The permissions the reference page gives for the example. */
const PERMISSIONS = [
  "--allow-net",
  "--allow-write",
  "--allow-read=.",
  "--allow-env=LOGBOOM_TOKEN,LOG_TOKENS,LOG_STREAM",
];

async function inTempDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "logboom-config-" });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the reference's example config runs, and every component in it works", async () => {
  await inTempDir(async (dir) => {
    const tcpPort = freePort();
    const httpPort = freePort();
    const syslogPort = freePort();
    const udpPort = freePort();
    const example = (await Deno.readTextFile(EXAMPLE))
      .replace('"0.0.0.0:8080"', `"0.0.0.0:${tcpPort}"`)
      .replace('"127.0.0.1:8081"', `"127.0.0.1:${httpPort}"`)
      .replaceAll('"0.0.0.0:5514"', `"0.0.0.0:${syslogPort}"`)
      .replace('"0.0.0.0:5140"', `"0.0.0.0:${udpPort}"`);
    assert.notEqual(example, await Deno.readTextFile(EXAMPLE), "the example's ports changed");
    await Deno.writeTextFile(join(dir, "logboom.yaml"), example);
    await Deno.mkdir(join(dir, "app"));
    await using server = runCli(PERMISSIONS, ["serve", "-config", "logboom.yaml"], { cwd: dir });
    await until(() => /Listening on/.test(server.stderr()), server.stderr);
    assert.match(
      server.stderr(),
      new RegExp(
        `Listening on tcp://0\\.0\\.0\\.0:${tcpPort}, syslog\\+tcp://0\\.0\\.0\\.0:${syslogPort}, ` +
          `syslog\\+udp://0\\.0\\.0\\.0:${syslogPort}, udp://0\\.0\\.0\\.0:${udpPort}, ` +
          `appending to "logs/\\{source\\}`,
      ),
    );
    const url = `http://127.0.0.1:${httpPort}`;
    const tail = await SseTail.open(url, "");
    try {
      await send(tcpPort, "over tcp\n");
      await send(syslogPort, "22 <13>1 - h app - - - hi"); // octet-counted
      const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
      await udp.send(new TextEncoder().encode("over udp\n"), {
        transport: "udp",
        hostname: "127.0.0.1",
        port: udpPort,
      });
      udp.close();
      const answer = await ingest(url, "over http\n", { query: "?source=web" });
      assert.equal(answer.status, 200);
      await until(() => /Watching/.test(server.stderr()), server.stderr);
      await Deno.writeTextFile(join(dir, "app/svc.log"), "from a watched file\n");
      await tail.wait((t) => t.lines.length >= 5);
      assert.deepEqual(
        tail.lines.map((l) => l.line).sort(),
        [
          "<13>1 - h app - - - hi",
          "from a watched file",
          "over http",
          "over tcp",
          "over udp",
        ].sort(),
      );
      // The file sink writes behind the live hub: its count gets there.
      const metrics = () => fetch(`${url}/metrics`).then((res) => res.text());
      await until(
        async () => /logboom_sink_lines_written_total\{sink="file"\} 5\n/.test(await metrics()),
        () => "the file sink's count never reached 5",
      );
      assert.match(await metrics(), /logboom_sink_lines_written_total\{sink="live"\} 5\n/);
    } finally {
      await tail.close();
    }
    server.child.kill("SIGTERM");
    assert.equal((await server.status()).code, 0, server.stderr());
    const date = new Date().toISOString().slice(0, 10);
    const stored = async (source: string) =>
      await Deno.readTextFile(join(dir, "logs", source, `${date}.log`));
    assert.equal(await stored("tcp"), "over tcp\n");
    assert.equal(await stored("web"), "over http\n");
    assert.equal(await stored("svc"), "from a watched file\n");
    assert.equal(await stored("syslog"), "<13>1 - h app - - - hi\n");
    assert.equal(await stored("udp"), "over udp\n");
    assert.ok((await Deno.stat(join(dir, ".logboom"))).isDirectory, "the state folder");
  });
});

Deno.test("validate says OK for the example and exits 0", async () => {
  await using cli = runCli(["--allow-read", "--allow-env=LOG_TOKENS,LOG_STREAM"], [
    "validate",
    "-config",
    EXAMPLE.pathname,
  ]);
  const status = await cli.status();
  assert.equal(status.code, 0, cli.stderr());
  assert.match(
    cli.stdout(),
    /example\.yaml: OK \(inputs: http, tcp, app, syslog, lines; sinks: file, live; transforms: app; alerts: tcp_errors\)/,
  );
});

Deno.test("validate prints every problem with its key path and exits 2; so does serve", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "bad.json"),
      JSON.stringify({
        inputs: { tcp: { type: "tcp", adress: ":9000" }, syslog: { type: "syslogd" } },
        sinks: { file: { type: "file", rotate_every: "daily" } },
      }),
    );
    const expected = [
      "bad.json: 3 problems:",
      '  inputs.tcp.adress: unknown key; did you mean "address"?',
      '  inputs.syslog.type: must be one of tcp, watch, syslog, udp, got "syslogd"',
      '  sinks.file.rotate_every: must be a duration above zero such as "30s", "15m" or "7d", ' +
      'got "daily"',
      "",
    ].join("\n");
    await using validate = runCli(["--allow-read"], ["validate", "-config", "bad.json"], {
      cwd: dir,
    });
    assert.equal((await validate.status()).code, 2);
    assert.equal(validate.stderr(), expected);
    // serve refuses the same file the same way, before it opens anything.
    await using serve = runCli(["--allow-net", "--allow-write", "--allow-read"], [
      "-config",
      "bad.json",
    ], { cwd: dir });
    assert.equal((await serve.status()).code, 2);
    assert.equal(serve.stderr(), expected);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["bad.json"]);
  });
});

Deno.test("a YAML config without env permission for the yaml package says what to add", async () => {
  await using cli = runCli(["--allow-read"], ["validate", "-config", EXAMPLE.pathname]);
  assert.equal((await cli.status()).code, 2);
  assert.match(cli.stderr(), /reading YAML needs --allow-env=LOG_TOKENS,LOG_STREAM/);
});

Deno.test("serve refuses -config beside another flag, naming the key to set instead", async () => {
  await using cli = runCli(["--allow-net", "--allow-write"], [
    "-port",
    "9000",
    "-config",
    "logboom.yaml",
  ]);
  assert.equal((await cli.status()).code, 2);
  assert.match(
    cli.stderr(),
    /^Flag "-port" cannot be used with -config: .*inputs\.<name>\.address \(type tcp\)/,
  );
});

/** A line no other sender sends: `<sender> <seq> <filler>`. */
function line(sender: string, seq: number): string {
  return `${sender} ${seq} ${"x".repeat(40)}\n`;
}

/** Writes a config as editors do: a new file renamed over the old one. */
async function rewrite(path: string, config: unknown): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(config, null, 2));
  await Deno.rename(`${path}.tmp`, path);
}

Deno.test("a reload under load adds, changes and removes inputs: every line stored once", async () => {
  await inTempDir(async (dir) => {
    const [portA, portB, portOld, portNew] = [freePort(), freePort(), freePort(), freePort()];
    await Deno.mkdir(join(dir, "in"));
    await Deno.mkdir(join(dir, "more"));
    const file = join(dir, "logboom.json");
    const v1 = {
      http: { address: "off" },
      inputs: {
        a: { type: "tcp", address: `127.0.0.1:${portA}` },
        b: { type: "tcp", address: `127.0.0.1:${portB}` },
        old: { type: "tcp", address: `127.0.0.1:${portOld}` },
        files: { type: "watch", paths: ["in/*.log"] },
      },
      sinks: { file: { type: "file", path: "out.log" } },
    };
    await rewrite(file, v1);
    await using server = runCli(PERMISSIONS, ["serve", "-config", "logboom.json"], { cwd: dir });
    await until(() => /Listening on/.test(server.stderr()), server.stderr);
    await until(() => /Watching/.test(server.stderr()), server.stderr);
    const sent = new Set<string>();
    let reloaded = false;
    // Senders on a (unchanged) and b (changed in place: the same connection goes on), and a file
    // the watch input follows (rebuilt: it hands its positions over): each keeps writing until
    // the reload is done, then writes once more.
    const tcpSender = async (port: number, name: string) => {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port });
      let seq = 0;
      const chunk = async () => {
        let text = "";
        for (let i = 0; i < 50; i++) text += line(name, seq++);
        for (const l of text.split("\n").slice(0, -1)) sent.add(l);
        await writeAll(conn, new TextEncoder().encode(text));
        await new Promise((resolve) => setTimeout(resolve, 1)); // a steady load, not a flood
      };
      do await chunk(); while (!reloaded);
      await chunk();
    };
    const fileSender = async () => {
      let seq = 0;
      const chunk = async () => {
        let text = "";
        for (let i = 0; i < 20; i++) text += line("file", seq++);
        for (const l of text.split("\n").slice(0, -1)) sent.add(l);
        await Deno.writeTextFile(join(dir, "in/app.log"), text, { append: true });
        await new Promise((resolve) => setTimeout(resolve, 5)); // a growing file, not one write
      };
      do await chunk(); while (!reloaded);
      await chunk();
    };
    const senders = Promise.all([
      tcpSender(portA, "a1"),
      tcpSender(portA, "a2"),
      tcpSender(portB, "b1"),
      tcpSender(portB, "b2"),
      fileSender(),
    ]);
    senders.catch(() => {}); // awaited below; a sender cut off by the reload fails the test there
    await rewrite(file, {
      ...v1,
      inputs: {
        a: v1.inputs.a,
        b: { ...v1.inputs.b, max_line: "64KiB" },
        new: { type: "tcp", address: `127.0.0.1:${portNew}` },
        files: { type: "watch", paths: ["in/*.log", "more/*.log"] },
      },
    });
    await until(() => /Config reloaded/.test(server.stderr()), server.stderr);
    reloaded = true;
    await senders;
    assert.match(
      server.stderr(),
      /Config reloaded \(file\): inputs added new; removed old; updated in place b; rebuilt files/,
    );
    // The removed input's port is closed; the added one takes lines.
    await assert.rejects(() => send(portOld, "never\n"), Deno.errors.ConnectionRefused);
    await send(portNew, line("new", 0));
    sent.add(line("new", 0).trimEnd());
    await Deno.writeTextFile(join(dir, "more/other.log"), line("more", 0));
    sent.add(line("more", 0).trimEnd());
    // An invalid config is refused with the reason; the running one goes on.
    await Deno.writeTextFile(
      file,
      JSON.stringify({ ...v1, inputs: { a: { type: "tcp", adres: 1 } } }),
    );
    await until(() => /refused, the running config stays/.test(server.stderr()), server.stderr);
    assert.match(server.stderr(), /inputs\.a\.adres: unknown key; did you mean "address"\?/);
    await send(portNew, line("new", 1));
    sent.add(line("new", 1).trimEnd());
    const stored = async () =>
      (await Deno.readTextFile(join(dir, "out.log")).catch(() => "")).split("\n").filter((l) =>
        l !== ""
      );
    // Every line arrives, or the count below names what is missing.
    await until(async () => (await stored()).length >= sent.size, () => "", 10_000).catch(() => {});
    server.child.kill("SIGTERM");
    assert.equal((await server.status()).code, 0, server.stderr());
    const lines = await stored();
    const counts = new Map<string, number>();
    for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
    const missing = [...sent].filter((l) => !counts.has(l));
    const doubled = [...counts].filter(([, n]) => n > 1).map(([l]) => l);
    const unknown = [...counts.keys()].filter((l) => !sent.has(l));
    assert.deepEqual({ missing, doubled, unknown }, { missing: [], doubled: [], unknown: [] });
    assert.ok(sent.size > 400, `a load, not a trickle: ${sent.size} lines`);
  });
});

/** Every line of the files under `dir` (rotated ones included), by file. */
async function filesUnder(dir: string): Promise<Map<string, string[]>> {
  const list = async (folder: string, out: string[]): Promise<string[]> => {
    for (const entry of await Array.fromAsync(Deno.readDir(folder))) {
      const path = join(folder, entry.name);
      if (entry.isDirectory) await list(path, out);
      else if (entry.isFile) out.push(path);
    }
    return out;
  };
  for (;;) {
    // A file rotated between the listing and its read (the live file then holds only what came
    // after, its old lines under a name the listing missed): read again until the names held
    // still over the reading.
    const names = (await list(dir, [])).sort();
    const out = new Map<string, string[]>();
    try {
      for (const path of names) {
        out.set(path, (await Deno.readTextFile(path)).split("\n").filter((l) => l !== ""));
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      continue;
    }
    const after = (await list(dir, [])).sort();
    if (after.length === names.length && after.every((name, i) => name === names[i])) return out;
  }
}

Deno.test("a reload under load rebuilds the file sink (path, then rotation): every line stored once, every acknowledgement kept", async () => {
  await inTempDir(async (dir) => {
    const [tcpPort, edgePort, httpPort] = [freePort(), freePort(), freePort()];
    const file = join(dir, "logboom.json");
    const base = {
      storage: { state_dir: "state" },
      http: { address: `127.0.0.1:${httpPort}` },
      inputs: {
        tcp: { type: "tcp", address: `127.0.0.1:${tcpPort}` },
        // Another tcp input files its lines apart.
        edge: { type: "tcp", address: `127.0.0.1:${edgePort}`, source: "edge" },
      },
    };
    await rewrite(file, { ...base, sinks: { file: { type: "file", path: "out/all.log" } } });
    await using server = runCli(PERMISSIONS, ["serve", "-config", "logboom.json"], { cwd: dir });
    await until(() => /Listening on/.test(server.stderr()), server.stderr);
    const url = `http://127.0.0.1:${httpPort}`;
    const tail = await SseTail.open(url, "");
    const sent = new Set<string>();
    const acknowledged: string[][] = [];
    const lost: string[] = [];
    let phase = 0;
    const done = () => phase >= 2;
    const tcpSender = async (port: number, name: string) => {
      using conn = await Deno.connect({ hostname: "127.0.0.1", port });
      let seq = 0;
      const chunk = async () => {
        let text = "";
        for (let i = 0; i < 50; i++) text += line(name, seq++);
        for (const l of text.split("\n").slice(0, -1)) sent.add(l);
        await writeAll(conn, new TextEncoder().encode(text));
        await new Promise((resolve) => setTimeout(resolve, 1)); // a steady load, not a flood
      };
      do await chunk(); while (!done());
      await chunk();
    };
    // Batches acknowledged while a reload is under way must be stored at that moment: the
    // acknowledgement of a batch the old sink took waits for the old sink.
    const httpSender = async (name: string) => {
      let offset = 0;
      let seq = 0;
      const batch = async () => {
        let text = "";
        for (let i = 0; i < 20; i++) text += line(name, seq++);
        offset += text.length;
        for (const l of text.split("\n").slice(0, -1)) sent.add(l);
        for (;;) {
          const answer = await ingest(url, text, {
            query: "?source=web",
            headers: { "x-stream-id": name, "x-stream-offset": String(offset) },
          });
          if (answer.status === 200) break;
          assert.equal(answer.status, 503, JSON.stringify(answer.json)); // retried, as agents do
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        const lines = text.split("\n").slice(0, -1);
        acknowledged.push(lines);
        if (!done()) {
          const stored = new Set([...(await filesUnder(join(dir, "out"))).values()].flat());
          lost.push(...lines.filter((l) => !stored.has(l)));
        }
      };
      do await batch(); while (!done());
      await batch();
    };
    const senders = Promise.all([
      tcpSender(tcpPort, "t1"),
      tcpSender(tcpPort, "t2"),
      tcpSender(edgePort, "e1"),
      httpSender("h1"),
      httpSender("h2"),
    ]);
    senders.catch(() => {}); // awaited below
    const reloaded = (count: number) =>
      until(
        () => (server.stderr().match(/Config reloaded/g) ?? []).length >= count,
        server.stderr,
      );
    await until(() => sent.size > 300, () => `only ${sent.size} lines sent`);
    // A new path template: the new sink writes other files while the old one drains; another
    // process holds the old file's lock meanwhile, so the old sink cannot drain before the new
    // one took over, and batches it took wait, acknowledgements with them.
    const lock = await holdLock(join(dir, "out/all.log"));
    await rewrite(file, {
      ...base,
      sinks: { file: { type: "file", path: "out/{source}.log", fsync: "batch" } },
    });
    await reloaded(1);
    phase = 1;
    const before = sent.size;
    await until(() => sent.size > before + 500, () => "the new sink takes no lines");
    const ackedBefore = acknowledged.length;
    await lock.release();
    await until(() => acknowledged.length > ackedBefore + 10, () => "no acknowledgement");
    await until(() => sent.size > 1500, () => `only ${sent.size} lines sent`);
    // Rotation only: both sinks name the same files, which the new one writes once the old one
    // let them go (held up by another process's lock meanwhile, so both have lines for it).
    const tcpLock = await holdLock(join(dir, "out/tcp.log"));
    await rewrite(file, {
      ...base,
      sinks: { file: { type: "file", path: "out/{source}.log", rotate_size: "16KiB" } },
    });
    await reloaded(2);
    const beforeRelease = sent.size;
    await until(() => sent.size > beforeRelease + 500, () => "the senders stopped");
    await tcpLock.release();
    phase = 2;
    const tailed = tail.lines.length;
    await senders;
    assert.match(
      server.stderr(),
      /Config reloaded \(file\): inputs added none; removed none; updated in place none; rebuilt none\. Sinks added none; removed none; rebuilt file\./,
    );
    // The live hub kept its subscriber through both reloads.
    await tail.wait((t) => t.lines.length > tailed);
    assert.equal(tail.ended, false);
    await tail.close();
    // Every input's own counters, by name and type.
    const metrics = await fetch(`${url}/metrics`).then((res) => res.text());
    assert.match(metrics, /logboom_input_connections\{input="edge",type="tcp"\} \d+\n/);
    server.child.kill("SIGTERM");
    assert.equal((await server.status()).code, 0, server.stderr());
    const files = await filesUnder(join(dir, "out"));
    const counts = new Map<string, number>();
    for (const lines of files.values()) {
      for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
    }
    const missing = [...sent].filter((l) => !counts.has(l));
    const doubled = [...counts].filter(([, n]) => n > 1).map(([l]) => l);
    const unknown = [...counts.keys()].filter((l) => !sent.has(l));
    assert.deepEqual({ missing, doubled, unknown, lost }, {
      missing: [],
      doubled: [],
      unknown: [],
      lost: [],
    });
    // Each sender's lines are in order in every file: one writer at a time per file.
    for (const [path, lines] of files) {
      const last = new Map<string, number>();
      for (const l of lines) {
        const [sender, seq] = l.split(" ");
        assert.ok((last.get(sender) ?? -1) < Number(seq), `${sender} out of order in ${path}`);
        last.set(sender, Number(seq));
      }
    }
    const names = [...files.keys()].map((p) => p.slice(join(dir, "out").length + 1)).sort();
    assert.ok(names.includes("all.log") && names.includes("edge.log") && names.includes("tcp.log"));
    assert.ok(names.some((n) => /^tcp\..+Z\.log$/.test(n)), `rotated: ${names.join(", ")}`);
    assert.ok(acknowledged.length > 10, `acknowledged batches: ${acknowledged.length}`);
  });
});
