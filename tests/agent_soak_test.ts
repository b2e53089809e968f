import assert from "node:assert/strict";
import { soak } from "./_soak.ts";

Deno.test({
  name: "soak: rotations, two kill -9 restarts, a server stopped 5 s and a config change, " +
    "and every line is stored exactly once",
  // The server processes' own sanitizers do not apply to this process; the soak closes all.
  async fn() {
    const result = await soak({ seconds: 30, log: (m) => console.log(`  soak: ${m}`) });
    try {
      const { count } = result;
      console.log(
        `  soak: ${result.written} lines, ${result.rotations} rotations, stored within ` +
          `${result.drainSeconds.toFixed(1)} s of the writers' stop; agent: ${
            JSON.stringify(result.agentStats)
          }`,
      );
      assert.deepEqual(
        { missing: count.missing, duplicated: count.duplicated, torn: count.torn },
        { missing: 0, duplicated: 0, torn: 0 },
        `${count.examples.join("; ")}\nagent warnings:\n${result.agentProblems.join("\n")}`,
      );
      assert.ok(result.rotations >= 20, `${result.rotations} rotations`);
    } finally {
      await result.cleanup();
    }
  },
});
