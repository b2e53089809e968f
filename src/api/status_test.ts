import assert from "node:assert/strict";
import { join } from "node:path";
import { Janitor } from "../store/janitor.ts";
import { logFolder, maskSecrets } from "./status.ts";

Deno.test("status: the log folder is the first output's fixed folder", () => {
  assert.equal(logFolder([]), undefined);
  assert.equal(logFolder(["/var/log/app.log"]), "/var/log");
  assert.equal(logFolder(["/srv/logs/{source}/app.log", "/x/y.log"]), "/srv/logs");
  assert.equal(logFolder(["/srv/logs/app-{date}.log"]), "/srv/logs");
  assert.equal(logFolder(["out.log"]), Deno.cwd());
});

Deno.test("status: secrets are masked wherever they are", () => {
  assert.deepEqual(
    maskSecrets({
      http: { token: "t", allow_origin: ["http://a"] },
      sinks: { s: { headers: { Authorization: "Basic x" }, api_key: "k", password: "" } },
      alerts: { a: { webhook: "https://user:pw@hooks.example/x?y=1" } },
      hooks: ["http://h/x?a=1&api_key=k&sig=2", "not a url ?token=x"],
      rx: /^a$/,
    }),
    {
      http: { token: "***", allow_origin: ["http://a"] },
      sinks: { s: { headers: { Authorization: "***" }, api_key: "***", password: "" } },
      alerts: { a: { webhook: "https://hooks.example/***" } },
      hooks: ["http://h/x?a=1&api_key=***&sig=2", "not a url ?token=x"],
      rx: "^a$",
    },
  );
});

Deno.test("status: the compression backlog counts the janitor's jobs until they are done", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const live = join(dir, "app.log");
    const rotated = join(dir, "app.2026-11-30T00-00-00.000Z.log");
    await Deno.writeTextFile(rotated, "a line\n".repeat(1000));
    await Deno.chmod(rotated, 0o444);
    const janitor = new Janitor({ compress: true });
    assert.equal(janitor.pending, 0);
    janitor.rotated(live, rotated);
    janitor.rotated(live, rotated);
    assert.equal(janitor.pending, 2);
    await janitor.idle();
    assert.equal(janitor.pending, 0);
    await janitor.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
