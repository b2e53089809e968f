import assert from "node:assert/strict";
import {
  FACILITY_NAMES,
  facilityName,
  parseSyslog,
  SEVERITY_NAMES,
  severityName,
  type SyslogMessage,
  SyslogParser,
} from "./parse.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** The receive time of the wire samples: 2026-11-30 10:35 UTC. */
const NOW = Date.UTC(2026, 10, 30, 10, 35);

/** Parses `line` and adds `msg`, the MSG as text. */
function parse(
  line: string | Uint8Array,
  options: { now?: number; timeZone?: "UTC" | "local" | number } = {},
): SyslogMessage & { msg: string } {
  const bytes = typeof line === "string" ? encoder.encode(line) : line;
  const parsed = parseSyslog(bytes, { now: NOW, ...options });
  return { ...parsed, msg: decoder.decode(bytes.subarray(parsed.msgStart)) };
}

function expected(parts: Partial<SyslogMessage> & { msg: string }): SyslogMessage & {
  msg: string;
} {
  return {
    format: "rfc5424",
    facility: 1,
    severity: 5,
    time: undefined,
    host: undefined,
    app: undefined,
    procid: undefined,
    msgid: undefined,
    structuredData: [],
    msgStart: -1,
    ...parts,
  };
}

/** Compares all but msgStart, which `msg` shows. */
function assertParsed(line: string, want: Partial<SyslogMessage> & { msg: string }, options = {}) {
  const got = parse(line, options);
  assert.deepEqual({ ...got, msgStart: -1 }, expected(want), line);
}

Deno.test("syslog parses logger --rfc5424 with structured data", () => {
  assertParsed(
    '<132>1 2026-11-30T10:34:18.155242+00:00 vm myapp - REQ [timeQuality tzKnown="1" isSynced="0"][meta@32473 env="prod"] msg',
    {
      facility: 16,
      severity: 4,
      time: Date.UTC(2026, 10, 30, 10, 34, 18, 155),
      host: "vm",
      app: "myapp",
      msgid: "REQ",
      structuredData: [
        { id: "timeQuality", params: [["tzKnown", "1"], ["isSynced", "0"]] },
        { id: "meta@32473", params: [["env", "prod"]] },
      ],
      msg: "msg",
    },
  );
});

Deno.test("syslog parses logger --rfc3164 and rsyslog's traditional format", () => {
  assertParsed("<11>Nov 30 10:34:18 vm myapp: msg", {
    format: "rfc3164",
    facility: 1,
    severity: 3,
    time: Date.UTC(2026, 10, 30, 10, 34, 18),
    host: "vm",
    app: "myapp",
    msg: "msg",
  });
  assertParsed("<13>Nov 30 10:34:46 vm webapp: msg", {
    format: "rfc3164",
    time: Date.UTC(2026, 10, 30, 10, 34, 46),
    host: "vm",
    app: "webapp",
    msg: "msg",
  });
});

Deno.test("syslog parses syslog-ng's syslog() (no fraction, NILVALUEs) and network()", () => {
  assertParsed('<13>1 2026-11-30T10:34:34+00:00 vm - - - [meta sequenceId="1"] msg', {
    time: Date.UTC(2026, 10, 30, 10, 34, 34),
    host: "vm",
    structuredData: [{ id: "meta", params: [["sequenceId", "1"]] }],
    msg: "msg",
  });
  assertParsed("<13>Nov 30 10:34:34 vm msg", {
    format: "rfc3164",
    time: Date.UTC(2026, 10, 30, 10, 34, 34),
    host: "vm",
    msg: "msg",
  });
});

Deno.test("syslog parses rsyslog's SyslogProtocol23Format and ForwardFormat", () => {
  assertParsed(
    '<13>1 2026-11-30T10:34:46.959364+00:00 vm webapp - - [timeQuality tzKnown="1" isSynced="0"] msg',
    {
      time: Date.UTC(2026, 10, 30, 10, 34, 46, 959),
      host: "vm",
      app: "webapp",
      structuredData: [{ id: "timeQuality", params: [["tzKnown", "1"], ["isSynced", "0"]] }],
      msg: "msg",
    },
  );
  // ISO time in a 3164 header, tag without colon.
  assertParsed("<13>2026-11-30T10:34:46.959364+00:00 vm webapp msg", {
    format: "rfc3164",
    time: Date.UTC(2026, 10, 30, 10, 34, 46, 959),
    host: "vm",
    app: "webapp",
    msg: "msg",
  });
});

Deno.test("syslog 5424: NILVALUE in every field, empty MSG, offsets, BOM, non-numeric PROCID", () => {
  assertParsed("<0>1 - - - - - -", { facility: 0, severity: 0, msg: "" });
  assertParsed("<191>1 - - - - - - ", { facility: 23, severity: 7, msg: "" });
  assertParsed("<14>1 2026-11-30T12:34:18.5+02:00 h a worker-7 ID1 - \uFEFFhéllo", {
    severity: 6,
    time: Date.UTC(2026, 10, 30, 10, 34, 18, 500),
    host: "h",
    app: "a",
    procid: "worker-7",
    msgid: "ID1",
    msg: "héllo",
  });
  assertParsed("<14>1 2026-11-30T05:04:18Z h - - - - x", {
    severity: 6,
    time: Date.UTC(2026, 10, 30, 5, 4, 18),
    host: "h",
    msg: "x",
  });
  assertParsed("<14>1 2026-11-30T05:04:18-01:30 h - - - - x", {
    severity: 6,
    time: Date.UTC(2026, 10, 30, 6, 34, 18),
    host: "h",
    msg: "x",
  });
});

Deno.test("syslog 5424: several SD elements, escapes in values unescaped", () => {
  assertParsed(
    String.raw`<13>1 - h - - - [a@1 q="say \"hi\"" b="back\\slash" c="]\]"][b x=""][c] m`,
    {
      host: "h",
      structuredData: [
        { id: "a@1", params: [["q", 'say "hi"'], ["b", "back\\slash"], ["c", "]]"]] },
        { id: "b", params: [["x", ""]] },
        { id: "c", params: [] },
      ],
      msg: "m",
    },
  );
});

Deno.test("syslog 3164: space-padded day, PID, tag without colon, no host", () => {
  const now = Date.UTC(2026, 10, 30);
  assertParsed("<30>Nov  3 01:02:03 host sshd[4242]: Accepted", {
    format: "rfc3164",
    facility: 3,
    severity: 6,
    time: Date.UTC(2026, 10, 3, 1, 2, 3),
    host: "host",
    app: "sshd",
    procid: "4242",
    msg: "Accepted",
  }, { now });
  assertParsed("<30>Nov 3 01:02:03 cron[1] job", {
    format: "rfc3164",
    facility: 3,
    severity: 6,
    time: Date.UTC(2026, 10, 3, 1, 2, 3),
    app: "cron",
    procid: "1",
    msg: "job",
  }, { now });
  assertParsed("<13>Nov 30 10:34:46 webapp: no host here", {
    format: "rfc3164",
    time: Date.UTC(2026, 10, 30, 10, 34, 46),
    app: "webapp",
    msg: "no host here",
  });
});

Deno.test("syslog 3164: the year nearest to the receive time, both directions", () => {
  const newYear = Date.UTC(2027, 0, 1, 0, 5);
  assert.equal(
    parse("<13>Dec 31 23:59:58 h a: late", { now: newYear }).time,
    Date.UTC(2026, 11, 31, 23, 59, 58),
  );
  const newYearsEve = Date.UTC(2026, 11, 31, 23, 55);
  assert.equal(
    parse("<13>Jan  1 00:00:02 h a: early", { now: newYearsEve }).time,
    Date.UTC(2027, 0, 1, 0, 0, 2),
  );
  // Nearest, not "this year unless in the future": July is 169 days back, 196 days ahead.
  assert.equal(
    parse("<13>Jul 15 12:00:00 h a: mid", { now: newYearsEve }).time,
    Date.UTC(2026, 6, 15, 12),
  );
  // Feb 29 exists only in leap years: the nearest one that has it.
  assert.equal(
    parse("<13>Feb 29 12:00:00 h a: leap", { now: Date.UTC(2028, 2, 1) }).time,
    Date.UTC(2028, 1, 29, 12),
  );
});

Deno.test("syslog 3164: a time without offset is UTC unless a zone is set", () => {
  const line = "<13>Nov 30 10:34:46 vm webapp: msg";
  assert.equal(parse(line, { timeZone: 60 }).time, Date.UTC(2026, 10, 30, 9, 34, 46));
  assert.equal(
    parse("<13>2026-11-30T10:34:46 vm webapp msg", { timeZone: -120 }).time,
    Date.UTC(2026, 10, 30, 12, 34, 46),
  );
});

Deno.test("syslog: what does not parse is unparsed, PRI kept when valid, never throws", () => {
  const cases: [string, number, number, string][] = [
    ["plain text", 1, 5, "plain text"],
    ["", 1, 5, ""],
    ["<192>1 - - - - - - too high", 1, 5, "<192>1 - - - - - - too high"],
    ["<13", 1, 5, "<13"],
    ["<13>no time here", 1, 5, "no time here"],
    [
      "<34>1 2026-13-30T10:34:46Z h - - - - bad month",
      4,
      2,
      "1 2026-13-30T10:34:46Z h - - - - bad month",
    ],
    [
      "<34>1 2026-11-30T10:34:46 h - - - - no offset",
      4,
      2,
      "1 2026-11-30T10:34:46 h - - - - no offset",
    ],
    ['<34>1 - h - - - [a x="unterminated] m', 4, 2, '1 - h - - - [a x="unterminated] m'],
    ["<34>1 - h - -", 4, 2, "1 - h - -"],
    ["<34>Foo 30 10:34:46 h a: m", 4, 2, "Foo 30 10:34:46 h a: m"],
  ];
  for (const [line, facility, severity, msg] of cases) {
    assert.deepEqual(
      parse(line),
      {
        ...expected({ format: "unparsed", facility, severity, msg }),
        msgStart: parse(line).msgStart,
      },
      line,
    );
  }
});

Deno.test("syslog parser reuses one result and decodes only what is read", () => {
  const parser = new SyslogParser();
  const batch = encoder.encode("<13>Nov 30 10:34:46 vm webapp: one\n<14>1 - other app - - - two\n");
  const first = parser.parse(batch, 0, batch.indexOf(10), NOW);
  assert.equal(first.host, "vm");
  assert.equal(first.message, "one");
  const second = parser.parse(batch, batch.indexOf(10) + 1, batch.length - 1, NOW);
  assert.equal(second, first, "the same object");
  assert.deepEqual([second.host, second.app, second.message], ["other", "app", "two"]);
  assert.equal(second.severityName, "info");
  assert.equal(second.facilityName, "user");
});

Deno.test("syslog name tables follow rsyslog", () => {
  assert.deepEqual(SEVERITY_NAMES, [
    "emerg",
    "alert",
    "crit",
    "err",
    "warning",
    "notice",
    "info",
    "debug",
  ]);
  assert.equal(FACILITY_NAMES.length, 24);
  assert.deepEqual([facilityName(0), facilityName(4), facilityName(16), facilityName(23)], [
    "kern",
    "auth",
    "local0",
    "local7",
  ]);
  assert.equal(severityName(3), "err");
});

Deno.test("syslog parser never throws and stays inside its range on mangled input", () => {
  const samples = [
    '<132>1 2026-11-30T10:34:18.155242+00:00 vm myapp - REQ [timeQuality tzKnown="1" isSynced="0"][meta@32473 env="prod"] msg',
    "<11>Nov 30 10:34:18 vm myapp: msg",
    '<13>1 2026-11-30T10:34:34+00:00 vm - - - [meta sequenceId="1"] msg',
    "<13>2026-11-30T10:34:46.959364+00:00 vm webapp msg",
    "<30>Nov  3 01:02:03 host sshd[4242]: Accepted",
    String.raw`<13>1 - h - - - [a@1 q="say \"hi\"" c="]\]"][c] m`,
  ].map((s) => encoder.encode(s));
  let seed = 7;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const parser = new SyslogParser();
  const pool = encoder.encode('<>[]"\\= -:T.Z+0123456789 aNov\xef\xbb\xbf');
  for (let round = 0; round < 20_000; round++) {
    const sample = samples[round % samples.length];
    const bytes = new Uint8Array(sample.length + 8);
    bytes.set(sample, 4);
    for (let k = Math.floor(next() * 4); k >= 0; k--) {
      bytes[4 + Math.floor(next() * sample.length)] = next() < 0.5
        ? pool[Math.floor(next() * pool.length)]
        : Math.floor(next() * 256);
    }
    const end = 4 + Math.floor(next() * (sample.length + 1));
    const msg = parser.parse(bytes, 4, end, NOW);
    assert.ok(msg.msgStart >= 4 && msg.msgStart <= end, `msgStart in range, round ${round}`);
    assert.ok(msg.time === undefined || Number.isFinite(msg.time));
    assert.ok(msg.facility >= 0 && msg.facility <= 23 && msg.severity >= 0 && msg.severity <= 7);
    const parts = msg.toJSON();
    for (const field of [parts.host, parts.app, parts.procid, parts.msgid]) {
      assert.ok(field === undefined || (field.length > 0 && !field.includes(" ")));
    }
    // The same bytes alone parse the same: offsets are relative to nothing but `start`.
    const alone = parseSyslog(bytes.slice(4, end), { now: NOW });
    assert.deepEqual({ ...alone, msgStart: alone.msgStart + 4 }, parts, `round ${round}`);
  }
});
