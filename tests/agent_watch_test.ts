/**
 * `serve -watch`: the aggregator follows a local file through the agent's tailer, and `logboom
 * tail` (here: the SSE route it uses) shows the file's new lines live.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer } from "./_server.ts";
import { runCli, SseTail, until } from "./_http.ts";

Deno.test("serve -watch streams a growing file's new lines to live tails and stores them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-watch-" });
  try {
    const path = join(dir, "app.log");
    await Deno.writeTextFile(path, "old line, before the server started\n");
    await using server = await startServer(["-logFile", "out.log", "-watch", path], {
      dir,
      permissions: ["--allow-net", "--allow-write", `--allow-read=${dir}`],
    });
    const tail = await SseTail.open(server.url, "?source=app");
    // And `logboom tail`, as a person would run it.
    await using cli = runCli(["--allow-net=127.0.0.1"], [
      "tail",
      "-server",
      server.url,
      "-n",
      "100",
    ]);
    try {
      assert.equal(tail.status, 200);
      await until(() => /Watching/.test(server.stderr()), () => server.stderr());
      await Deno.writeTextFile(path, "first new line\nsecond new line\n", { append: true });
      await tail.wait((t) => t.lines.length >= 2);
      // Rotated by rename + create: the old file is read to its end, the new one from its start.
      await Deno.writeTextFile(path, "third, before rotation\n", { append: true });
      await Deno.rename(path, `${path}.1`);
      await Deno.writeTextFile(path, "fourth, in the new file\n");
      await tail.wait((t) => t.lines.length >= 4);
      assert.deepEqual(tail.lines.map((l) => [l.source, l.line]), [
        ["app", "first new line"],
        ["app", "second new line"],
        ["app", "third, before rotation"],
        ["app", "fourth, in the new file"],
      ]);
      await until(
        () => cli.stdout().includes("fourth, in the new file"),
        () => cli.stdout() + cli.stderr(),
      );
      assert.match(cli.stdout(), /first new line\nsecond new line\nthird, before rotation\n/);
    } finally {
      await tail.close();
    }
    await server.stop();
    assert.deepEqual((await Deno.readTextFile(join(dir, "out.log"))).split("\n"), [
      "first new line",
      "second new line",
      "third, before rotation",
      "fourth, in the new file",
      "",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve -watch refuses to start without read permission on the watched folder", async () => {
  await using server = await startServer(["-watch", "/var/log/nothing-here/*.log"], {
    waitReady: false,
  });
  const status = await server.exited();
  assert.equal(status.code, 1);
  assert.match(
    server.stderr(),
    /Watching files needs read permission on "\/var\/log\/nothing-here": run with --allow-read=\/var\/log\/nothing-here/,
  );
});

/** Every line of `dir`'s outputs `all*.log*`, gzipped rotations included. */
async function outputLines(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!/^all\..*log(\.gz)?$/.test(entry.name)) continue;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(join(dir, entry.name));
    } catch (err) {
      // Rotated or compressed away since the listing (while the server runs): its lines are in
      // the file it became, which the next look reads.
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    if (entry.name.endsWith(".gz")) {
      const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
        .pipeThrough(new DecompressionStream("gzip"));
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    }
    out.push(...new TextDecoder().decode(bytes).split("\n").filter((l) => l !== ""));
  }
  return out;
}

Deno.test("serve -watch never follows what it writes itself, rotations included", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-watch-" });
  try {
    // The glob matches the output, its rotations and their .gz: none may be read back.
    await using server = await startServer(
      ["-logFile", "all.log", "-rotateSize", "2048", "-compress", "-watch", "*.log*"],
      { dir, permissions: ["--allow-net", "--allow-write", `--allow-read=${dir}`] },
    );
    await until(() => /Watching/.test(server.stderr()), () => server.stderr());
    let text = "";
    for (let i = 0; i < 100; i++) text += `app line ${i} ${"x".repeat(80)}\n`;
    await Deno.writeTextFile(join(dir, "app.log"), text);
    await until(async () => (await outputLines(dir)).length >= 100, () => server.stderr());
    await until(
      () => /Not following \S*\/all\.log: logboom writes it itself/.test(server.stderr()),
      () => server.stderr(),
    );
    // A line written after the others is stored after them: a loop would have shown by then.
    await Deno.writeTextFile(join(dir, "app.log"), "last line\n", { append: true });
    await until(async () => (await outputLines(dir)).includes("last line"), () => server.stderr());
    await server.stop();
    const lines = await outputLines(dir);
    const counts = new Map<string, number>();
    for (const line of lines) counts.set(line, (counts.get(line) ?? 0) + 1);
    assert.equal(counts.size, 101, server.stderr());
    assert.deepEqual([...counts.values()].filter((n) => n !== 1), [], server.stderr());
    assert.ok(
      (await Array.fromAsync(Deno.readDir(dir))).some((e) => e.name.endsWith(".log.gz")),
      "the output was rotated and compressed",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
