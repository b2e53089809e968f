/**
 * The agent's soak for longer runs (see `tests/_soak.ts`): writers rotate their files by rename and
 * by copytruncate, the agent is killed with SIGKILL and restarted twice, the first server is
 * stopped for 5 seconds, and an input is added and another removed. Every line must be stored
 * exactly once. When Go is installed, `../shared/bench/verify.go` checks the stored files too.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1,localhost,0.0.0.0 --allow-read --allow-write --allow-run \
 *   --allow-env scripts/soak_agent.ts -seconds 300 -files 4 -rate 5000
 * ```
 *
 * Exits 1 when a line is missing, duplicated or torn.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { soak } from "../tests/_soak.ts";

const { values } = parseArgs({
  args: Deno.args.map((a) => a.replace(/^-(?=\w)/, "--")),
  options: {
    seconds: { type: "string", default: "120" },
    files: { type: "string", default: "4" },
    rate: { type: "string", default: "3000" },
    rotate: { type: "string", default: "5000" },
  },
});

const started = Date.now();
const result = await soak({
  seconds: Number(values.seconds),
  files: Number(values.files),
  rate: Number(values.rate),
  rotateEvery: Number(values.rotate),
  log: (m) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${m}`),
});
try {
  const { count } = result;
  console.log(
    `${result.written} lines, ${result.rotations} rotations, stored within ` +
      `${result.drainSeconds.toFixed(1)} s of the writers' stop`,
  );
  console.log(`agent counters: ${JSON.stringify(result.agentStats)}`);
  console.log(`missing=${count.missing} duplicated=${count.duplicated} torn=${count.torn}`);
  for (const example of count.examples) console.log(`  ${example}`);
  if (result.agentProblems.length > 0) {
    console.log(`agent warnings and errors (${result.agentProblems.length}):`);
    for (const line of result.agentProblems.slice(0, 20)) console.log(`  ${line}`);
  }
  let goVerdict = true;
  const verify = fileURLToPath(new URL("../../shared/bench/verify.go", import.meta.url));
  const files: string[] = [];
  for (const out of result.outputs) {
    for await (const entry of Deno.readDir(out)) {
      if (entry.isFile && !entry.name.startsWith(".")) files.push(join(out, entry.name));
    }
  }
  try {
    // verify.go expects the same count per writer: duplicates and torn lines are what it checks
    // here, missing lines are counted above.
    const out = await new Deno.Command("go", {
      args: [
        "run",
        verify,
        "-c",
        "21",
        "-n",
        String(result.written),
        "-s",
        "100",
        "-allowMissing",
        ...files,
      ],
      stderr: "inherit",
    }).output();
    console.log(
      `verify.go (duplicated and torn count): ${new TextDecoder().decode(out.stdout).trim()}`,
    );
    goVerdict = out.success;
  } catch (err) {
    console.log(`verify.go not run: ${(err as Error).message}`);
  }
  const ok = count.missing + count.duplicated + count.torn === 0 && goVerdict;
  console.log(ok ? "ok" : "FAILED");
  if (!ok) Deno.exitCode = 1;
} finally {
  await result.cleanup();
}
