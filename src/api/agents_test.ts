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

Deno.test("AgentRegistry metrics: ids are escaped label values; a family's samples go together", async () => {
  const agents = new AgentRegistry();
  for (const id of ['db "primary"', "web\\2\n"]) {
    await agents.accept(report({ id, stats: { lines: 1, files_open: 2 } }), "10.0.0.7");
  }
  const lines = agents.metrics().trim().split("\n");
  const lag = lines.indexOf("# TYPE logboom_agent_lag_bytes gauge");
  assert.deepEqual(lines.slice(lag, lag + 3), [
    "# TYPE logboom_agent_lag_bytes gauge",
    'logboom_agent_lag_bytes{agent="db \\"primary\\""} 0',
    'logboom_agent_lag_bytes{agent="web\\\\2\\n"} 0',
  ]);
  const declared = lines.filter((line) => line.startsWith("# TYPE"));
  assert.equal(new Set(declared).size, declared.length, "each family declared once");
});
