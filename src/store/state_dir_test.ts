import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultStateDir, prepareStateDir, stateDirConflict } from "./state_dir.ts";

Deno.test("defaultStateDir is a hidden .logboom beside the log files", () => {
  assert.equal(defaultStateDir("aggregated_logs.txt"), ".logboom");
  assert.equal(defaultStateDir("logs/app.log"), "logs/.logboom");
  assert.equal(defaultStateDir("logs/{source}/{date}.log"), "logs/.logboom");
  assert.equal(defaultStateDir("logs/app-{source}.log"), "logs/.logboom");
  assert.equal(defaultStateDir("{source}.log"), ".logboom");
  assert.equal(defaultStateDir("/var/log/x/{host}/a.log"), "/var/log/x/.logboom");
});

Deno.test("stateDirConflict refuses every -logFile that could name a file in the state folder", () => {
  // Values never start with ".", so the default folder is out of every template's reach.
  for (const logFile of ["logs/{source}", "logs/{source}/{host}", "{source}/{host}.log", "a.log"]) {
    assert.equal(stateDirConflict(logFile, defaultStateDir(logFile)), undefined, logFile);
  }
  assert.equal(stateDirConflict("logs/{source}/{date}.log", "state"), undefined);
  assert.equal(stateDirConflict("logs/{date}/{source}", "logs/state"), undefined);
  assert.equal(stateDirConflict("/var/log/{source}", "/var/lib/logboom"), undefined);
  const refused: [string, string][] = [
    ["logs/{source}/{host}", "logs/state"],
    ["logs/{source}", "logs"],
    ["logs/x{source}/a", "logs/xy"],
    [".logboom/{source}.log", ".logboom"],
    ["./.logboom/app.log", ".logboom"],
    ["logs/.{source}/a.log", "logs/.logboom"],
    ["logs/{date}/{source}", "logs/2026-11-30"],
    ["/var/log/{source}/{host}", "/var/log/state"],
  ];
  for (const [logFile, stateDir] of refused) {
    assert.match(
      stateDirConflict(logFile, stateDir) ?? "",
      /state folder/,
      `${logFile} ${stateDir}`,
    );
  }
});

Deno.test("prepareStateDir makes the folder with a .gitignore of *, and keeps one already there", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const state = join(dir, "a", ".logboom");
    await prepareStateDir(state);
    assert.equal(await Deno.readTextFile(join(state, ".gitignore")), "*\n");
    await Deno.writeTextFile(join(state, ".gitignore"), "*\n!keep\n");
    await prepareStateDir(state);
    assert.equal(await Deno.readTextFile(join(state, ".gitignore")), "*\n!keep\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
