import assert from "node:assert/strict";
import { ownFiles, sourceFromPath } from "./watch.ts";

Deno.test("ownFiles knows outputs, their rotations and the state folder", () => {
  const own = ownFiles(["/srv/logs/{source}/{date}.log", "/srv/all.log"], ["/srv/logs/.logboom"]);
  for (
    const path of [
      "/srv/all.log",
      "/srv/all.2026-11-21T23-54-55.123Z.log",
      "/srv/all.2026-11-21T23-54-55.123Z_002.log.gz",
      "/srv/all.2026-11-21T23-54-55.123Z.log.gz.tmp",
      "/srv/logs/web/2026-11-21.log",
      "/srv/logs/web/2026-11-21.2026-11-22T00-00-00.000Z.log.gz",
      "/srv/logs/.logboom/streams.jsonl",
    ]
  ) assert.equal(own(path), true, path);
  for (
    const path of [
      "/srv/app.log",
      "/srv/all.log.1",
      "/srv/logs/web/today.log",
      "/srv/logs/web/sub/2026-11-21.log",
      "/srv/logs/.logboom-other/x",
    ]
  ) assert.equal(own(path), false, path);
});

Deno.test("ownFiles takes relative outputs from the working folder", () => {
  const own = ownFiles(["all.log"]);
  assert.equal(own(`${Deno.cwd()}/all.log`), true);
  assert.equal(own("all.log"), true);
  assert.equal(own(`${Deno.cwd()}/other.log`), false);
});

Deno.test("sourceFromPath drops rotation suffixes and the extension", () => {
  assert.equal(sourceFromPath("/var/log/nginx/access.log.1"), "access");
  assert.equal(sourceFromPath("/var/log/app"), "app");
});
