import assert from "node:assert/strict";
import type { Options as PinoEsOptions } from "pino-elasticsearch";
import type { Transform } from "node:stream";
import { HttpError } from "../net/http_error.ts";
import {
  type BulkItem,
  bulkPath,
  bulkResponse,
  bulkResponseStream,
  CHUNK_BYTES,
  decodeBulk,
  decodeBulkSliced,
  ES_VERSION,
  esErrorResponse,
  esIndexNameError,
  esLicenseResponse,
  esProbe,
  type EsRecord,
  esRefreshResponse,
  esRootResponse,
  esSetupResponse,
  ITEMS_PER_PART,
  LINES_PER_PAUSE,
} from "./es_bulk.ts";

const AT = Date.parse("2026-11-30T10:00:00.123Z");

/** Answers as logboom's routes will: probes, else `_bulk` decoded and answered. */
function answer(method: string, path: string, body: string): Response {
  const probe = esProbe(method, path);
  if (probe) return probe;
  const bulk = bulkPath(path);
  if (bulk && method === "POST") {
    try {
      const decoded = decodeBulk(body, { defaultIndex: bulk.index });
      stored.push(...decoded.records);
      return bulkResponse(decoded.items, 3);
    } catch (err) {
      if (err instanceof HttpError) return esErrorResponse(err.status, err.message);
      throw err;
    }
  }
  return esErrorResponse(404, `no handler for ${method} ${path}`);
}

let stored: EsRecord[] = [];
const requests: string[] = [];

Deno.test("ES bulk: pino-elasticsearch's client sends, logboom's answers satisfy it", async () => {
  // Elasticsearch's JS client reads `os.release()` when it loads.
  assert.equal(
    Deno.permissions.querySync({ name: "sys", kind: "osRelease" }).state,
    "granted",
    "this test needs --allow-sys=osRelease (deno task test grants it)",
  );
  const { BaseConnection } = await import("@elastic/elasticsearch");
  const mod = await import("pino-elasticsearch");
  // deno-lint-ignore no-explicit-any
  const pinoElasticsearch: (o: PinoEsOptions) => Transform = (mod.default as any).default ??
    mod.default;
  /** The client's connection, answered in memory: the real client and helper, no socket. */
  class InMemoryConnection extends BaseConnection {
    // deno-lint-ignore no-explicit-any
    override async request(params: any, _options: any): Promise<any> {
      let body = "";
      if (typeof params.body === "string") body = params.body;
      else if (params.body) body = new TextDecoder().decode(params.body);
      requests.push(`${params.method} ${params.path}`);
      const res = answer(params.method, params.path, body);
      const headers: Record<string, string> = {};
      res.headers.forEach((v, k) => headers[k] = v);
      return { statusCode: res.status, headers, body: await res.text() };
    }
  }
  stored = [];
  requests.length = 0;
  const stream = pinoElasticsearch({
    node: "http://127.0.0.1:9",
    index: "app-logs",
    esVersion: 8,
    flushInterval: 60_000,
    Connection: InMemoryConnection,
  });
  const errors: unknown[] = [];
  stream.on("error", (e: unknown) => errors.push(e));
  stream.on("insertError", (e: unknown) => errors.push(e));
  const inserted = new Promise<{ successful: number; failed: number }>((resolve) =>
    stream.on("insert", resolve)
  );
  const lines = [
    { level: 30, time: AT, pid: 1, hostname: "vm1", msg: "started", req: { id: 7 } },
    { level: 50, time: AT + 1, pid: 1, hostname: "vm1", msg: "failed", err: { type: "Error" } },
  ];
  for (const line of lines) stream.write(JSON.stringify(line) + "\n");
  stream.end();
  const stats = await inserted;
  assert.deepEqual(errors, []);
  assert.equal(stats.successful, 2);
  assert.equal(stats.failed, 0);
  assert.deepEqual(requests, ["POST /_bulk", "GET /app-logs/_refresh"]);
  assert.deepEqual(stored, [
    {
      index: "app-logs",
      timeMs: AT,
      level: "info",
      message: "started",
      fields: {
        level: 30,
        time: new Date(AT).toISOString(),
        pid: 1,
        hostname: "vm1",
        "req.id": 7,
      },
    },
    {
      index: "app-logs",
      timeMs: AT + 1,
      level: "error",
      message: "failed",
      fields: {
        level: 50,
        time: new Date(AT + 1).toISOString(),
        pid: 1,
        hostname: "vm1",
        "err.type": "Error",
      },
    },
  ]);
});

Deno.test("ES bulk: rsyslog's _type, Fluent Bit's create, Filebeat's ECS fields, CRLF", () => {
  const body = [
    '{"index":{"_index":"syslog","_type":"events","_id":"a1"}}',
    '{"@timestamp":"2026-11-30T10:00:00.123Z","message":"su: session opened","severity":"notice"}',
    '{"create":{"_index":"fluent-bit","_type":"_doc"}}',
    '{"@timestamp":"2026-11-30T10:00:00.123Z","log":"GET / 200","stream":"stdout"}',
    '{"create":{}}',
    '{"@timestamp":"2026-11-30T10:00:00.123Z","message":"x","log":{"level":"warn"},"ecs":{"version":"8"}}',
    "",
  ].join("\r\n");
  let n = 0;
  const decoded = decodeBulk(body, { defaultIndex: "filebeat-8", newId: () => `id${n++}` });
  assert.deepEqual(decoded.items, [
    { action: "index", index: "syslog", id: "a1", status: 201, record: 0 },
    { action: "create", index: "fluent-bit", id: "id0", status: 201, record: 1 },
    { action: "create", index: "filebeat-8", id: "id1", status: 201, record: 2 },
  ]);
  const [a, b, c] = decoded.records;
  assert.deepEqual([a.message, a.level, a.timeMs], ["su: session opened", "info", AT]);
  assert.deepEqual(a.fields, { "@timestamp": "2026-11-30T10:00:00.123Z", severity: "notice" });
  assert.deepEqual([b.message, b.index, b.fields.stream], ["GET / 200", "fluent-bit", "stdout"]);
  assert.equal(c.level, "warn", "from log.level");
  assert.equal(c.fields["log.level"], "warn");
  assert.equal(c.message, "x");
});

Deno.test("ES bulk: refused items do not fail the others; the answer says which", async () => {
  const body = [
    '{"index":{"_index":"ok"}}',
    '{"msg":"first"}',
    '{"index":{"_index":"ok"}}',
    "{not json",
    '{"update":{"_index":"ok","_id":"1"}}',
    '{"doc":{"a":1}}',
    '{"delete":{"_index":"ok","_id":"2"}}',
    '{"index":{"_index":"Bad*Name"}}',
    '{"a":1}',
    '{"index":{}}',
    '{"a":1}',
    '{"index":{"_index":"ok","op_type":"create"}}',
    "[1,2]",
    '{"index":{"_index":"ok","_id":5}}',
    '{"no":"message field","n":1}',
  ].join("\n");
  const decoded = decodeBulk(body, { newId: () => "generated" });
  assert.deepEqual(decoded.items.map((i) => [i.action, i.status, i.error?.type]), [
    ["index", 201, undefined],
    ["index", 400, "document_parsing_exception"],
    ["update", 400, "illegal_argument_exception"],
    ["delete", 400, "illegal_argument_exception"],
    ["index", 400, "invalid_index_name_exception"],
    ["index", 400, "action_request_validation_exception"],
    ["create", 400, "document_parsing_exception"],
    ["index", 201, undefined],
  ]);
  assert.deepEqual(decoded.records.map((r) => r.message), [
    "first",
    '{"no":"message field","n":1}',
  ]);
  assert.equal(decoded.items[7].id, "5");
  const res = bulkResponse(decoded.items, 12.4);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-elastic-product"), "Elasticsearch");
  const answer = await res.json();
  assert.equal(answer.took, 12);
  assert.equal(answer.errors, true);
  assert.equal(answer.items.length, 8);
  assert.deepEqual(answer.items[0], {
    index: {
      _index: "ok",
      _id: "generated",
      _version: 1,
      result: "created",
      _shards: { total: 1, successful: 1, failed: 0 },
      _seq_no: 0,
      _primary_term: 1,
      status: 201,
    },
  });
  assert.equal(answer.items[1].index.status, 400);
  assert.match(answer.items[1].index.error.reason, /failed to parse the document on line 4/);
  assert.equal(answer.items[2].update._id, "1");
  assert.equal(answer.items[5].index._id, null);
  const clean = await bulkResponse([{ action: "create", index: "x", id: "1", status: 201 }], 0)
    .json();
  assert.equal(clean.errors, false);
  assert.ok("create" in clean.items[0]);
});

Deno.test("ES bulk: a document nested too deep is refused alone", () => {
  let deep: unknown = 1;
  for (let i = 0; i < 40; i++) deep = { d: deep };
  const body = `{"index":{"_index":"a"}}\n${
    JSON.stringify({ deep })
  }\n{"index":{"_index":"a"}}\n{}\n`;
  const decoded = decodeBulk(body);
  assert.deepEqual(decoded.items.map((i) => i.status), [400, 201]);
  assert.match(decoded.items[0].error!.reason, /nested deeper than 32/);
});

Deno.test("ES bulk: malformed action lines refuse the request with a clear 400", () => {
  const cases: [string | Uint8Array, RegExp][] = [
    ["{nope}\n{}\n", /Malformed action\/metadata line \[1\]/],
    ['{"index":{}}\n{}\n[]\n', /line \[3\], expected an object/],
    [
      '{"upsert":{}}\n{}\n',
      /expected one of \[create\], \[delete\], \[index\] or \[update\] but found \[upsert\]/,
    ],
    ['{"index":{},"create":{}}\n{}\n', /but found \[index\], \[create\]/],
    ['{"index":"x"}\n{}\n', /\[index\] is not an object/],
    ['{"index":{"_index":"a"}}\n', /index action on line 1 has no document line/],
    [Uint8Array.of(0x7b, 0xff, 0x7d), /not UTF-8/],
  ];
  for (const [body, pattern] of cases) {
    assert.throws(() => decodeBulk(body), (err) => {
      assert.ok(err instanceof HttpError && err.status === 400, `${body}: ${err}`);
      assert.match(err.message, pattern);
      return true;
    });
  }
  assert.deepEqual(decodeBulk("\n \n").items, [], "blank lines are skipped");
});

Deno.test("ES bulk paths and index names", () => {
  assert.deepEqual(bulkPath("/_bulk"), { index: undefined });
  assert.deepEqual(bulkPath("/logs-app/_bulk"), { index: "logs-app" });
  assert.deepEqual(bulkPath("/logs%2Dapp/doc/_bulk"), { index: "logs-app" });
  assert.equal(bulkPath("/a/b/c/_bulk"), undefined);
  assert.equal(bulkPath("/_bulkx"), undefined);
  assert.equal(bulkPath("/%E0/_bulk"), undefined);
  assert.equal(esIndexNameError("logs-2026.11.30"), undefined);
  for (const bad of ["", ".", "..", "_x", "-x", "+x", "a/b", "a b", "a:b", "A", "a".repeat(256)]) {
    assert.ok(esIndexNameError(bad) !== undefined, bad);
  }
});

Deno.test("ES probes: GET /, license, templates, ILM, refresh, with the product header", async () => {
  const root = esRootResponse("GET");
  assert.equal(root.status, 200);
  assert.equal(root.headers.get("x-elastic-product"), "Elasticsearch");
  const info = await root.json();
  assert.equal(info.version.number, ES_VERSION);
  assert.equal(info.tagline, "You Know, for Search");
  assert.equal((await esRootResponse("GET", { version: "9.1.0" }).json()).version.number, "9.1.0");
  assert.equal(await esRootResponse("HEAD").text(), "");
  const license = await esLicenseResponse().json();
  assert.equal(license.license.type, "basic");
  assert.equal(license.license.status, "active");
  assert.equal((await esRefreshResponse().json())._shards.failed, 0);
  assert.equal(esSetupResponse("HEAD", "index_template", "filebeat-8").status, 200);
  assert.deepEqual(await esSetupResponse("PUT", "template", "logstash").json(), {
    acknowledged: true,
  });
  const tpl = await esSetupResponse("GET", "index_template", "filebeat").json();
  assert.equal(tpl.index_templates[0].name, "filebeat");
  const legacy = await esSetupResponse("GET", "template", "logstash").json();
  assert.ok("logstash" in legacy);

  const routed: [string, string, number | undefined][] = [
    ["GET", "/", 200],
    ["HEAD", "/", 200],
    ["POST", "/", undefined],
    ["GET", "/_license", 200],
    ["GET", "/_xpack", 200],
    ["HEAD", "/_index_template/filebeat-8.19.0", 200],
    ["PUT", "/_index_template/filebeat-8.19.0", 200],
    ["GET", "/_template/logstash", 200],
    ["PUT", "/_component_template/x", 200],
    ["GET", "/_ilm/policy/filebeat", 200],
    ["POST", "/app-logs/_refresh", 200],
    ["POST", "/_refresh", 200],
    ["POST", "/_bulk", undefined],
    ["GET", "/_cat/indices", undefined],
  ];
  for (const [method, path, status] of routed) {
    const res = esProbe(method, path);
    assert.equal(res?.status, status, `${method} ${path}`);
    if (res) {
      assert.equal(res.headers.get("x-elastic-product"), "Elasticsearch", `${method} ${path}`);
      await res.body?.cancel();
    }
  }
});

Deno.test("ES error answers have Elasticsearch's shape", async () => {
  const res = esErrorResponse(400, "bad line");
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), {
    error: {
      root_cause: [{ type: "illegal_argument_exception", reason: "bad line" }],
      type: "illegal_argument_exception",
      reason: "bad line",
    },
    status: 400,
  });
});

Deno.test("ES bulk items keep their order and record positions", () => {
  const items: BulkItem[] = decodeBulk(
    '{"index":{"_index":"a"}}\n{"m":1}\n{"delete":{"_index":"a","_id":"x"}}\n{"index":{"_index":"b"}}\n{"m":2}',
  ).items;
  assert.deepEqual(items.map((i) => [i.index, i.record]), [["a", 0], ["a", undefined], ["b", 1]]);
});

Deno.test("ES bulk: more actions than maxRecords is a 413", () => {
  const body = '{"index":{"_index":"a"}}\n{}\n'.repeat(11);
  assert.equal(decodeBulk(body, { maxRecords: 11 }).items.length, 11);
  assert.throws(() => decodeBulk(body, { maxRecords: 10 }), (err) => {
    assert.ok(err instanceof HttpError && err.status === 413, String(err));
    assert.match(err.message, /more than 10 records/);
    return true;
  });
});

/** Counts pauses; every check says a pause is due. */
function countingTurns() {
  const turns = { pauses: 0, due: () => true, pause: () => Promise.resolve(void turns.pauses++) };
  return turns;
}

function ids(): () => string {
  let n = 0;
  return () => `id${n++}`;
}

Deno.test("ES bulk sliced: a large body, long lines included, gives what decoding it in one go gives", async () => {
  const long = "y".repeat(CHUNK_BYTES + 10);
  const lines: string[] = ["\ufeff" + '{"index":{"_index":"logs"}}', '{"message":"first"}'];
  for (let i = 0; i < 3000; i++) {
    lines.push(`{"create":{"_index":"app-${i % 3}"}}`, JSON.stringify({ msg: `m${i}`, i }));
  }
  lines.push(
    // A long document with its message, one without (the line is its message), a long action.
    '{"index":{"_index":"logs"}}',
    JSON.stringify({ message: long, level: "warn" }),
    '{"index":{"_index":"logs"}}\r',
    "  " + JSON.stringify({ text: long, n: 1 }) + " \r",
    JSON.stringify({ index: { _index: "logs", pad: long } }),
    '{"msg":"after a long action"}',
    // Long lines that are blank (skipped) and one that is not JSON (refused alone).
    " ".repeat(CHUNK_BYTES * 2),
    "\u00a0".repeat(CHUNK_BYTES),
    '{"index":{"_index":"logs"}}',
    "{" + long,
    '{"index":{"_index":"logs"}}',
    '{"message":"last"}',
  );
  const body = new TextEncoder().encode(lines.join("\n") + "\n");
  const turns = countingTurns();
  const sliced = await decodeBulkSliced(body, { newId: ids() }, turns);
  const whole = decodeBulk(body, { newId: ids() });
  // The same, but for the words of the reason a long line is not JSON.
  assert.deepEqual(sliced.records, whole.records);
  assert.deepEqual(
    sliced.items.map((item) => ({ ...item, error: item.error?.type })),
    whole.items.map((item) => ({ ...item, error: item.error?.type })),
  );
  assert.equal(whole.records.length, 3000 + 5);
  assert.equal(whole.records[3002].message, JSON.stringify({ text: long, n: 1 }));
  assert.deepEqual(whole.records[3002].fields, { text: long, n: 1 });
  assert.equal(whole.records[3001].level, "warn");
  assert.equal(whole.records[3003].message, "after a long action");
  assert.equal(whole.items[3004].status, 400);
  assert.equal(whole.records[3004].message, "last");
  assert.ok(turns.pauses >= 3000 / LINES_PER_PAUSE, `${turns.pauses} pauses`);
});

Deno.test("ES bulk sliced: a body that is not UTF-8 anywhere is a 400 before any line is read", async () => {
  const good = '{"nope":1}\n{}\n'.repeat(2) + '{"index":{"_index":"a"}}\n{"x":"';
  for (const tail of ["a".repeat(CHUNK_BYTES * 3), "a"]) {
    const body = new Uint8Array([...new TextEncoder().encode(good + tail), 0xff, 0x22, 0x7d]);
    for (
      const decode of [
        async () => await Promise.resolve(decodeBulk(body)),
        () => decodeBulkSliced(body, {}, countingTurns()),
      ]
    ) {
      await assert.rejects(decode(), (err) => {
        assert.ok(err instanceof HttpError && err.status === 400);
        assert.match(err.message, /not UTF-8/);
        return true;
      });
    }
  }
});

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

Deno.test("ES bulk answers of many items: Elasticsearch's shape, made a part at a time", async () => {
  const items: BulkItem[] = Array.from({ length: 3000 }, (_, i) =>
    i % 7 === 3
      ? {
        action: "index",
        index: "a",
        id: "",
        status: 400,
        error: { type: "document_parsing_exception", reason: `bad ${i}` },
      }
      : { action: i % 2 ? "create" : "index", index: `i${i % 3}`, id: `id${i}`, status: 201 });
  let seq = 0;
  const want = {
    took: 12,
    errors: true,
    items: items.map((item) =>
      item.status === 400
        ? { [item.action]: { _index: item.index, _id: null, status: 400, error: item.error } }
        : {
          [item.action]: {
            _index: item.index,
            _id: item.id,
            _version: 1,
            result: "created",
            _shards: { total: 1, successful: 1, failed: 0 },
            _seq_no: seq++,
            _primary_term: 1,
            status: 201,
          },
        }
    ),
  };
  const res = bulkResponse(items, 12.4);
  assert.equal(res.headers.get("x-elastic-product"), "Elasticsearch");
  const text = await res.text();
  assert.equal(text, JSON.stringify(want));
  // Streamed a part at a time, as the server reads it.
  const turns = countingTurns();
  const streamed = bulkResponseStream(items, 12.4, turns);
  assert.equal(streamed.headers.get("x-elastic-product"), "Elasticsearch");
  const chunks: Uint8Array[] = [];
  for await (const chunk of streamed.body!) chunks.push(chunk);
  assert.equal(chunks.length, Math.ceil(3000 / ITEMS_PER_PART));
  assert.equal(new TextDecoder().decode(concat(chunks)), text);
  assert.ok(turns.pauses >= chunks.length, `${turns.pauses} pauses`);
  // An answer of one part is made at once.
  const small = items.slice(0, ITEMS_PER_PART);
  assert.equal(
    await bulkResponseStream(small, 1, turns).text(),
    await bulkResponse(small, 1).text(),
  );
  assert.equal(await bulkResponse([], 0).text(), '{"took":0,"errors":false,"items":[]}');
});
