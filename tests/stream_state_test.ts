/**
 * Where logboom keeps its own state (stream marks): out of reach of every client-chosen name, and
 * out of git's sight.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ingest } from "./_http.ts";
import { CARD_PERMISSIONS, startServer } from "./_server.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

for (
  const [template, forged] of [
    // Today's journal name beside the logs, and the state folder's own files.
    ["logs/{source}", { source: ".logboom-streams.jsonl" }],
    ["logs/{source}/{host}", { source: ".logboom", host: "streams.jsonl" }],
  ] as const
) {
  Deno.test(`a client cannot forge a stream mark through -logFile '${template}'`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "logboom-e2e-" });
    const permissions = [...CARD_PERMISSIONS, `--allow-read=${dir}`];
    const args = ["-fsync", "batch", "-logFile", template];
    const victim = (line: string, offset: number) =>
      ingest(server.url, `${line}\n`, {
        query: "?source=victim",
        headers: { "x-stream-id": "victim-stream", "x-stream-offset": String(offset) },
      });
    let server = await startServer(args, { dir, permissions });
    try {
      assert.deepEqual((await victim("first", 6)).json, { accepted: 1, duplicate: false });
      // What a mark record looks like, sent as a log line under a name of logboom's own files.
      const record = JSON.stringify({ s: "victim-stream", o: 1e12 });
      const forgedLine = JSON.stringify({ line: record, ...forged });
      const sent = await ingest(server.url, forgedLine + "\n", {
        headers: { "content-type": "application/x-ndjson" },
      });
      assert.equal(sent.status, 200, JSON.stringify(sent.json));
      assert.equal((await server.stop()).code, 0, server.stderr());

      server = await startServer(args, { dir, permissions });
      assert.deepEqual(
        (await victim("second", 13)).json,
        { accepted: 1, duplicate: false },
        "the victim's next batch was taken for a duplicate",
      );
      assert.deepEqual((await victim("second", 13)).json, { accepted: 0, duplicate: true });
      assert.equal((await server.stop()).code, 0, server.stderr());
      const stored = await Deno.readTextFile(join(dir, "logs", "victim"))
        .catch(() => Deno.readTextFile(join(dir, "logs", "victim", "127.0.0.1")));
      assert.equal(stored, "first\nsecond\n");
    } finally {
      await server[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("state lives in a hidden .logboom folder that git ignores, or in -stateDir", async () => {
  const dir = await Deno.makeTempDir({ prefix: "logboom-e2e-" });
  const permissions = [...CARD_PERMISSIONS, `--allow-read=${dir}`];
  const headers = { "x-stream-id": "s", "x-stream-offset": "2" };
  try {
    {
      await using server = await startServer([], { dir, permissions });
      assert.equal((await ingest(server.url, "a\n", { headers })).status, 200);
      assert.equal((await server.stop()).code, 0);
    }
    assert.equal(await Deno.readTextFile(join(dir, ".logboom", ".gitignore")), "*\n");
    assert.ok(await exists(join(dir, ".logboom", "streams.jsonl")));
    assert.ok(!(await exists(join(dir, ".logboom-streams.jsonl"))), "state in the working folder");
    const git = await new Deno.Command("git", { args: ["init", "-q"], cwd: dir }).output();
    if (git.success) {
      const status = await new Deno.Command("git", {
        args: ["status", "--porcelain", "--untracked-files=all"],
        cwd: dir,
      }).output();
      assert.equal(new TextDecoder().decode(status.stdout), "?? aggregated_logs.txt\n");
    }
    {
      await using server = await startServer(["-stateDir", "state"], { dir, permissions });
      assert.equal((await ingest(server.url, "a\n", { headers })).json.duplicate, false);
      assert.equal((await server.stop()).code, 0);
    }
    assert.ok(await exists(join(dir, "state", "streams.jsonl")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the card's command keeps no state on disk, and a -logFile inside -stateDir is refused", async () => {
  {
    await using server = await startServer([]);
    const headers = { "x-stream-id": "s", "x-stream-offset": "2" };
    assert.equal((await ingest(server.url, "a\n", { headers })).status, 200);
    assert.equal((await server.stop()).code, 0);
    const names = [];
    for await (const entry of Deno.readDir(server.dir)) names.push(entry.name);
    assert.deepEqual(names, ["aggregated_logs.txt"]);
  }
  {
    // Source "state" would write logs/state/<host>: the state folder's own files.
    const args = ["-logFile", "logs/{source}/{host}", "-stateDir", "logs/state"];
    await using server = await startServer(args, { waitReady: false });
    const status = await server.exited();
    assert.equal(status.code, 1);
    assert.match(server.stderr(), /could name files inside the state folder "logs\/state"/);
  }
});
