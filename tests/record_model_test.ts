/**
 * End-to-end tests of lines with a level and fields: OpenTelemetry records stored by a path
 * template that names a field and the level, in the JSON format, and followed by live tails that
 * filter by level and field on the server.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, startServer, waitForBytes } from "./_server.ts";
import { SseTail, type TailLine, WsTail } from "./_http.ts";

/** An OTLP/JSON export: one resource per service, each with `[level text, message]` records. */
function otlp(services: Record<string, [severity: string, message: string][]>): string {
  return JSON.stringify({
    resourceLogs: Object.entries(services).map(([service, records]) => ({
      resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
      scopeLogs: [{
        logRecords: records.map(([severityText, message]) => ({
          timeUnixNano: "1764576000000000000",
          severityText,
          body: { stringValue: message },
        })),
      }],
    })),
  });
}

async function post(base: string, body: string): Promise<void> {
  const res = await fetch(`${base}/v1/logs`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
  });
  assert.equal(res.status, 200, await res.text());
}

type RecordLine = TailLine & { level?: string; fields?: Record<string, unknown> };

Deno.test("a template with {fields.NAME} and {level} files each record by its service and level", async () => {
  await using server = await startServer([
    "-logFile",
    "logs/{fields.service.name}/{level}.jsonl",
    "-format",
    "json",
  ]);
  await post(
    server.url,
    otlp({
      billing: [["INFO", "paid"], ["ERROR", "declined"], ["INFO", "paid again"]],
      "../auth": [["WARN", "slow login"]],
    }),
  );
  const read = async (path: string) => {
    const text = await Deno.readTextFile(join(server.dir, "logs", path));
    return text.trimEnd().split("\n").map((l) => JSON.parse(l));
  };
  // Acknowledged: stored already.
  const info = await read("billing/info.jsonl");
  assert.deepEqual(info.map((r) => r.line), ["paid", "paid again"]);
  assert.equal(info[0].level, "info");
  assert.equal(info[0].time, "2025-12-01T08:00:00.000Z");
  assert.equal(info[0].fields["service.name"], "billing");
  assert.deepEqual((await read("billing/error.jsonl")).map((r) => r.line), ["declined"]);
  // A field from the network names a folder inside the template's, never above it.
  assert.deepEqual((await read("__auth/warn.jsonl")).map((r) => r.line), ["slow login"]);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("SSE and WebSocket tails filter by level and field on the server and carry both", async () => {
  await using server = await startServer(["-logFile", "out.log"]);
  const query = "?level=warn&field.service.name=billing";
  const sse = await SseTail.open(server.url, query);
  const ws = new WsTail(server.url, query);
  await ws.opened();
  const ge = await SseTail.open(server.url, "?level>=error");
  assert.equal(sse.status, 200);
  await post(
    server.url,
    otlp({
      billing: [["INFO", "paid"], ["WARN", "retrying card"], ["FATAL", "ledger gone"]],
      auth: [["ERROR", "bad token"]],
    }),
  );
  // A plain TCP line has no level: no level filter lets it through, whatever its text says.
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await tcp.write(new TextEncoder().encode("ERROR plain tcp line\n"));
  tcp.close();
  await waitForBytes(join(server.dir, "out.log"), "ERROR plain tcp line\n".length);
  // Every tail matches the last record: once it is in, everything before it was decided.
  await post(server.url, otlp({ billing: [["FATAL", "the end"]] }));
  const ended = (t: { lines: TailLine[] }) => t.lines.some((l) => l.line === "the end");
  for (const tail of [sse, ws]) {
    await tail.wait(ended);
    const lines = tail.lines as RecordLine[];
    assert.deepEqual(lines.map((l) => [l.line, l.level, l.fields?.["service.name"]]), [
      ["retrying card", "warn", "billing"],
      ["ledger gone", "fatal", "billing"],
      ["the end", "fatal", "billing"],
    ]);
  }
  await ge.wait(ended);
  assert.deepEqual(ge.lines.map((l) => l.line), ["ledger gone", "bad token", "the end"]);
  await Promise.all([sse.close(), ws.close(), ge.close()]);
  assert.equal((await server.stop()).code, 0);
});

Deno.test("a level-filtered tail sees syslog messages by their PRI's severity, stored as received", async () => {
  const syslogPort = freePort();
  await using server = await startServer([
    "-logFile",
    "out.log",
    "-syslog",
    `127.0.0.1:${syslogPort}`,
  ]);
  const tail = await SseTail.open(server.url, "?level>=warn");
  const msgs = [
    "<14>Nov 30 10:34:18 vm app: info",
    "<12>Nov 30 10:34:19 vm app: warning",
    "<11>Nov 30 10:34:20 vm app: err",
    "<15>Nov 30 10:34:21 vm app: debug",
    "<8>Nov 30 10:34:22 vm app: the end",
  ];
  const text = msgs.map((m) => `${m}\n`).join("");
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port: syslogPort });
  await tcp.write(new TextEncoder().encode(text));
  tcp.close();
  await tail.wait((t) => t.lines.some((l) => l.line.endsWith("the end")));
  assert.deepEqual(tail.lines.map((l) => [l.line, (l as RecordLine).level]), [
    [msgs[1], "warn"],
    [msgs[2], "error"],
    [msgs[4], "fatal"],
  ]);
  await waitForBytes(join(server.dir, "out.log"), text.length);
  assert.equal(await Deno.readTextFile(join(server.dir, "out.log")), text);
  await tail.close();
  assert.equal((await server.stop()).code, 0);
});
