import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { PathTemplate, sanitizeValue } from "./path_template.ts";
import type { Batch } from "../pipeline/batch.ts";

const NOV_21 = Date.parse("2026-11-21T23:54:55.123Z");

Deno.test("PathTemplate fills source, host and the UTC day", () => {
  const template = new PathTemplate("logs/{source}/{host}-{date}.log");
  assert.deepEqual([...template.placeholders].sort(), ["date", "host", "source"]);
  assert.equal(template.isPlain, false);
  assert.equal(
    template.render({ source: "web", host: "10.0.0.7", date: NOV_21 }),
    "logs/web/10.0.0.7-2026-11-21.log",
  );
  // Six minutes later it is the next UTC day, whatever the machine's time zone.
  assert.equal(
    template.render({ source: "web", host: "h", date: new Date(NOV_21 + 6 * 60_000) }),
    "logs/web/h-2026-11-22.log",
  );
});

Deno.test("PathTemplate treats a path without placeholders as plain", () => {
  const template = new PathTemplate("aggregated_logs.txt");
  assert.equal(template.isPlain, true);
  assert.equal(template.render({ source: "../x" }), "aggregated_logs.txt");
  // Lone braces are literal text, not placeholders.
  assert.equal(new PathTemplate("a{b.log").render(), "a{b.log");
});

Deno.test("PathTemplate rejects an unknown placeholder, naming it", () => {
  assert.throws(
    () => new PathTemplate("logs/{sourse}.log"),
    (err: unknown) => err instanceof TypeError && err.message.includes('"{sourse}"'),
  );
  assert.throws(() => new PathTemplate("logs/{}.log"), TypeError);
  assert.throws(() => new PathTemplate("x", { maxValueBytes: 4 }), RangeError);
  assert.throws(() => new PathTemplate("x", { cacheSize: 0 }), RangeError);
});

Deno.test("PathTemplate fills labels such as syslog's app and severity; a missing one is _", () => {
  const template = new PathTemplate("logs/{host}/{app}-{facility}.{severity}.log");
  assert.deepEqual(template.labels, ["app", "facility", "severity"]);
  const meta = {
    source: "syslog",
    host: "web1",
    input: "syslog",
    labels: { app: "nginx", facility: "local0", severity: "err" },
  };
  assert.equal(template.forBatch({ meta, receivedAt: NOV_21 }), "logs/web1/nginx-local0.err.log");
  // Unparsed messages carry no labels; hostile label values are sanitised like any other value.
  assert.equal(
    template.forBatch({ meta: { ...meta, labels: undefined }, receivedAt: NOV_21 }),
    "logs/web1/_-_._.log",
  );
  assert.equal(
    template.render({ host: "h", labels: { app: "../../etc", facility: "toString" } }),
    "logs/h/____etc-toString._.log",
  );
  // The cache tells label sets apart.
  assert.equal(
    template.render({ host: "h", labels: { app: "a", severity: "b" } }),
    "logs/h/a-_.b.log",
  );
  assert.equal(
    template.render({ host: "h", labels: { app: "a", facility: "b" } }),
    "logs/h/a-b._.log",
  );
  // Other label names when asked for; typos stay errors.
  const custom = new PathTemplate("{zone}/{source}.log", { labels: ["zone"] });
  assert.equal(custom.render({ source: "s", labels: { zone: "eu" } }), "eu/s.log");
  assert.throws(() => new PathTemplate("{app}.log", { labels: ["zone"] }), /"\{app\}"/);
  assert.throws(() => new PathTemplate("{sevrity}.log"), /"\{sevrity\}".*\{severity\}/);
  assert.throws(() => new PathTemplate("x", { labels: ["a-b"] }), TypeError);
  // Without labels to fill, a labelled template renders from the prototype-free defaults.
  assert.equal(new PathTemplate("{constructor}", { labels: ["constructor"] }).render(), "_");
});

Deno.test("PathTemplate keeps hostile values inside the template's folder", () => {
  const hostile = [
    "../../etc/passwd",
    "a/b",
    "a\\b",
    "\x00",
    "x\x00y",
    "..",
    ".",
    "...",
    "",
    "/",
    "/etc/passwd",
    "..\\..\\windows",
    "line\nbreak\ttab\x7f\x85",
    "x".repeat(10_000),
    "é".repeat(500),
  ];
  for (const layout of ["logs/{source}.log", "logs/{source}/{host}", "logs/.{source}{host}"]) {
    const template = new PathTemplate(layout);
    for (const source of hostile) {
      for (const host of hostile) {
        const path = template.render({ source, host });
        const rel = relative("logs", normalize(path));
        assert.ok(!rel.startsWith("..") && rel !== "", `${layout} ${JSON.stringify(path)}`);
        assert.equal(normalize(path), path, "no . or .. segments, no doubled separators");
        assert.doesNotMatch(path, /[\p{Cc}\\]/u);
        const segments = path.split("/");
        assert.equal(segments.length, layout.split("/").length, "values add no folders");
        for (const segment of segments) assert.ok(new TextEncoder().encode(segment).length < 256);
      }
    }
  }
});

Deno.test("sanitizeValue replaces what could leave the folder and keeps the rest readable", () => {
  assert.equal(sanitizeValue("../../etc/passwd"), "____etc_passwd");
  assert.equal(sanitizeValue("a/b"), "a_b");
  assert.equal(sanitizeValue("a\\b"), "a_b");
  assert.equal(sanitizeValue("\x00"), "_");
  assert.equal(sanitizeValue(".."), "_");
  assert.equal(sanitizeValue("."), "_");
  assert.equal(sanitizeValue(""), "_");
  assert.equal(sanitizeValue("web-1.example.com"), "web-1.example.com");
  assert.equal(sanitizeValue(".hidden"), "_.hidden");
  assert.equal(sanitizeValue("журнал-日志-📜"), "журнал-日志-📜");
  assert.equal(sanitizeValue("bad\uD800half"), "bad\uFFFDhalf", "lone surrogates made whole");
});

Deno.test("template values never name a hidden file, such as logboom's own", () => {
  for (const layout of ["logs/{source}", "logs/{source}/{host}.log", "{source}{host}"]) {
    const template = new PathTemplate(layout);
    for (const value of [".logboom-streams.jsonl", ".logboom-probe", ".x", "..", "...", "."]) {
      const path = template.render({ source: value, host: value });
      for (const segment of path.split("/")) {
        assert.ok(!segment.startsWith("."), `${layout} with ${value}: ${path}`);
      }
    }
  }
  assert.equal(
    new PathTemplate("logs/{source}").render({ source: ".logboom-streams.jsonl" }),
    "logs/_.logboom-streams.jsonl",
  );
  assert.equal(sanitizeValue(".x"), "_.x");
  assert.equal(sanitizeValue("..."), "_.");
  assert.equal(sanitizeValue(".".repeat(300) + "x").startsWith("_"), true, "cut values too");
  assert.equal(sanitizeValue("a.b"), "a.b", "a dot inside stays");
});

Deno.test("template values never look like a rotated file's time", () => {
  assert.equal(
    new PathTemplate("logs/{source}.log").render({ source: "app.2026-11-22T00-00-00.000Z" }),
    "logs/app.2026-11-22T00-00-00_000Z.log",
  );
  assert.equal(sanitizeValue("2026-11-22T00-00-00.000Z.x"), "2026-11-22T00-00-00_000Z.x");
  assert.equal(sanitizeValue("v1.2.3"), "v1.2.3");
});

Deno.test("sanitizeValue shortens long values and keeps distinct ones apart", () => {
  const a = sanitizeValue("x".repeat(300) + "a");
  const b = sanitizeValue("x".repeat(300) + "b");
  assert.equal(new TextEncoder().encode(a).length, 128);
  assert.notEqual(a, b);
  assert.ok(a.startsWith("x".repeat(119) + "~"));
  // Multi-byte characters are never cut in half.
  const emoji = sanitizeValue("📜".repeat(100), { maxBytes: 32 });
  assert.ok(new TextEncoder().encode(emoji).length <= 32);
  assert.equal(emoji.toWellFormed(), emoji);
  assert.ok(emoji.startsWith("📜".repeat(5) + "~"));
  // Exactly at the limit is kept whole.
  assert.equal(sanitizeValue("é".repeat(64)), "é".repeat(64));
});

Deno.test("PathTemplate keeps names with several long values under 255 bytes", () => {
  const template = new PathTemplate("logs/{source}/{source}-{host}-{date}.log");
  const long = "x".repeat(1000);
  const [folder, name] = template.render({ source: long, host: long, date: NOV_21 }).split("/")
    .slice(1);
  assert.equal(folder.length, 128, "a value alone in its segment gets maxValueBytes");
  assert.ok(name.length <= 255 && name.length > 240, `${name.length} bytes`);
});

Deno.test("PathTemplate stays right past the size of its cache", () => {
  const template = new PathTemplate("logs/{source}-{date}.log", { cacheSize: 2 });
  const first = template.render({ source: "a", date: NOV_21 });
  // Same source, same UTC day: same file.
  assert.equal(template.render({ source: "a", date: NOV_21 + 60_000 }), first);
  assert.equal(template.render({ source: "b", date: NOV_21 }), "logs/b-2026-11-21.log");
  assert.equal(template.render({ source: "c", date: NOV_21 }), "logs/c-2026-11-21.log");
  assert.equal(template.render({ source: "a", date: NOV_21 }), first, "rebuilt after eviction");
  // Values that would collide in a naive "source|host" key stay apart.
  const both = new PathTemplate("{source}/{host}");
  assert.equal(both.render({ source: "a\x00b", host: "c" }), "a_b/c");
  assert.equal(both.render({ source: "a", host: "b\x00c" }), "a/b_c");
  assert.equal(dirname(join("logs", both.render({ source: "..", host: "x" }))), "logs/_");
});

Deno.test("PathTemplate refuses an invalid time for {date}", () => {
  const template = new PathTemplate("{date}.log");
  assert.throws(() => template.render({ date: new Date("nope") }), RangeError);
  assert.match(template.render(), /^\d{4}-\d{2}-\d{2}\.log$/);
});

function batchOf(
  lines: number,
  columns: Pick<Batch, "levels" | "fields">,
  meta: Batch["meta"] = { source: "app", host: "h1", input: "otlp" },
): Batch {
  return {
    data: new TextEncoder().encode("x\n".repeat(lines)),
    lines,
    meta,
    receivedAt: Date.UTC(2026, 11, 1, 12),
    ...columns,
  };
}

Deno.test("PathTemplate fills {level} and {fields.NAME} per line; a missing one is _", () => {
  const template = new PathTemplate("logs/{fields.service}/{level}-{fields.http.status}.log");
  assert.ok(template.perLine);
  assert.deepEqual(template.fields, ["service", "http.status"]);
  assert.ok(template.usesLevel);
  assert.equal(
    template.render({ level: "warn", fields: { service: "billing", "http.status": 503 } }),
    "logs/billing/warn-503.log",
  );
  assert.equal(template.render({ fields: { service: true } }), "logs/true/_-_.log");
  assert.equal(template.render({}), "logs/_/_-_.log");
  assert.deepEqual(
    template.linePaths(batchOf(3, {
      levels: new Uint8Array([5, 5, 0]),
      fields: [{ service: "api" }, { service: "api", other: 1 }, { service: "web" }],
    })),
    ["logs/api/error-_.log", "logs/api/error-_.log", "logs/web/_-_.log"],
  );
});

Deno.test("PathTemplate keeps hostile field values inside the template's folder", () => {
  const template = new PathTemplate("logs/{fields.service}/{date}.log");
  const paths = template.linePaths(batchOf(4, {
    fields: [
      { service: "../../etc/passwd" },
      { service: ".." },
      { service: ".logboom-streams.jsonl" },
      { service: "a\x00b/c\nd" },
    ],
  }));
  assert.deepEqual(paths, [
    "logs/____etc_passwd/2026-12-01.log",
    "logs/_/2026-12-01.log",
    "logs/_.logboom-streams.jsonl/2026-12-01.log",
    "logs/a_b_c_d/2026-12-01.log",
  ]);
  // An own property only: an inherited name is no field.
  assert.equal(
    template.render({ fields: Object.create({ service: "x" }), date: 0 }),
    "logs/_/1970-01-01.log",
  );
});

Deno.test("PathTemplate.linePaths gives one path when every line renders the same", () => {
  const template = new PathTemplate("logs/{source}/{fields.service}.log");
  const shared = { service: "billing" };
  assert.equal(
    template.linePaths(batchOf(3, { fields: [shared, shared, { service: "billing", x: 1 }] })),
    "logs/app/billing.log",
  );
  // A batch without the column the template names: every line is the same, `_`.
  assert.equal(
    template.linePaths(batchOf(2, { levels: new Uint8Array([1, 6]) })),
    "logs/app/_.log",
  );
  assert.equal(
    new PathTemplate("{level}.log").linePaths(batchOf(2, { fields: [{}, {}] })),
    "_.log",
  );
});

Deno.test("a template without level or fields never looks at a batch's lines", () => {
  const template = new PathTemplate("logs/{source}/{date}.log");
  assert.equal(template.perLine, false);
  const untouchable = new Proxy([], {
    get() {
      throw new Error("a line's fields were read");
    },
  });
  const levels = new Proxy(new Uint8Array(2), {
    get() {
      throw new Error("a line's level was read");
    },
  });
  assert.equal(
    template.linePaths(batchOf(2, { fields: untouchable, levels })),
    "logs/app/2026-12-01.log",
  );
});

Deno.test("PathTemplate refuses an empty field name and a label named level", () => {
  assert.throws(
    () => new PathTemplate("logs/{fields.}.log"),
    (err: unknown) => err instanceof TypeError && err.message.includes("{fields.NAME}"),
  );
  assert.throws(() => new PathTemplate("x", { labels: ["level"] }), TypeError);
});
