import assert from "node:assert/strict";
import { AgentRegistry } from "./agents.ts";

function report(body: unknown): Request {
  return new Request("http://x/api/v1/agents/report", {
    method: "POST",
    body: JSON.stringify(body),
  });
}

Deno.test("AgentRegistry metrics: levels are gauges without _total, counts are counters", async () => {
  const agents = new AgentRegistry();
  await agents.accept(
    report({
      id: "web-1",
      stats: { lines: 10, files_unreadable: 2, files_skipped: 1, files_open: 3, lag_bytes: 7 },
    }),
    "10.0.0.7",
  );
  const text = agents.metrics();
  assert.match(
    text,
    /# TYPE logboom_agent_lines_total counter\nlogboom_agent_lines_total\{agent="web-1"\} 10\n/,
  );
  for (const name of ["files_unreadable", "files_skipped", "files_open"]) {
    assert.match(text, new RegExp(`# TYPE logboom_agent_${name} gauge\\n`));
    assert.doesNotMatch(text, new RegExp(`logboom_agent_${name}_total`));
  }
  assert.doesNotMatch(text, /lag_bytes_total/);
});
