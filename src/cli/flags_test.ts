import assert from "node:assert/strict";
import {
  FlagError,
  type FlagSpecs,
  formatUsage,
  parseBytes,
  parseCommand,
  parseFlags,
} from "./flags.ts";

const SPECS: FlagSpecs = {
  port: { type: "string", default: "8080", value: "N", help: "TCP port" },
  logFile: { type: "string", default: "aggregated_logs.txt", help: "Output" },
  compress: { type: "bool", help: "Gzip rotated files" },
};

Deno.test("flags accept Go's forms: -f v, -f=v, --f v, --f=v", () => {
  for (const args of [["-port", "9000"], ["-port=9000"], ["--port", "9000"], ["--port=9000"]]) {
    assert.equal(parseFlags(args, SPECS).values.port, "9000", args.join(" "));
  }
});

Deno.test("flags fill defaults and keep values that contain '='", () => {
  const { values } = parseFlags(["-logFile=a=b.txt"], SPECS);
  assert.deepEqual(values, { port: "8080", logFile: "a=b.txt" });
});

Deno.test("boolean flags stand alone or take =true / =false", () => {
  assert.equal(parseFlags(["-compress"], SPECS).values.compress, true);
  assert.equal(parseFlags(["--compress=false"], SPECS).values.compress, false);
  assert.throws(() => parseFlags(["-compress=yes"], SPECS), FlagError);
});

Deno.test("flags stop at -- or at the first argument that is not a flag", () => {
  assert.deepEqual(parseFlags(["-port", "1", "a.log", "-x"], SPECS).positionals, ["a.log", "-x"]);
  assert.deepEqual(parseFlags(["--", "-port"], SPECS).positionals, ["-port"]);
});

Deno.test("an unknown flag or a missing value is a FlagError naming it", () => {
  assert.throws(() => parseFlags(["-prot", "1"], SPECS), {
    name: "FlagError",
    message: 'Unknown flag "-prot"',
  });
  assert.throws(() => parseFlags(["-port"], SPECS), { message: 'Flag "-port" needs a value' });
});

Deno.test("-h, -help and --help ask for usage, which lists every flag with its default", () => {
  for (const flag of ["-h", "-help", "--help"]) assert.equal(parseFlags([flag], SPECS).help, true);
  const usage = formatUsage("logboom [flags]", SPECS);
  assert.match(usage, /-port N\n.*TCP port \(default 8080\)/);
  assert.match(usage, /-logFile VALUE\n.*\(default aggregated_logs.txt\)/);
  assert.match(usage, /-compress\n/);
});

Deno.test("sizes take binary units and refuse nonsense", () => {
  assert.equal(parseBytes("maxLine", "1048576"), 1048576);
  assert.equal(parseBytes("maxLine", "64KiB"), 65536);
  assert.equal(parseBytes("maxLine", "1mib"), 1048576);
  assert.equal(parseBytes("maxLine", "2g"), 2 * 1024 ** 3);
  for (const bad of ["0", "-1", "1.5MiB", "12 parsecs", ""]) {
    assert.throws(() => parseBytes("maxLine", bad), FlagError, bad);
  }
});

Deno.test("parseCommand: a bad flag is exit code 2 with the usage, -h is 0, the rest is parsed", () => {
  const usage = { synopsis: "logboom x [flags]", specs: SPECS };
  const printed: string[] = [];
  const { error, log } = console;
  console.error = (text: string) => printed.push(`stderr: ${text}`);
  console.log = (text: string) => printed.push(`stdout: ${text}`);
  try {
    const parse = (args: readonly string[]) => ({ ...parseFlags(args, SPECS) });
    assert.equal(parseCommand(["-nope"], parse, usage), 2);
    assert.match(printed[0], /^stderr: Unknown flag "-nope".*\n\nUsage: logboom x \[flags\]/s);
    assert.equal(parseCommand(["-h"], parse, usage), 0);
    assert.match(printed[1], /^stdout: Usage: logboom x \[flags\]/);
    const parsed = parseCommand(["-port", "9000"], parse, usage);
    assert.equal(typeof parsed === "object" && parsed.values.port, "9000");
    assert.throws(() =>
      parseCommand([], () => {
        throw new TypeError("a bug, not a usage error");
      }, usage), TypeError);
    assert.equal(printed.length, 2);
  } finally {
    console.error = error;
    console.log = log;
  }
});

Deno.test("a repeat flag keeps every value in order; others keep the last", () => {
  const specs = {
    field: { type: "string", repeat: true, help: "x" },
    source: { type: "string", help: "y" },
  } as const;
  const parsed = parseFlags(
    ["-field", "a=1", "--field=b=2", "-source", "s1", "-source=s2", "-field", "c=3"],
    specs,
  );
  assert.deepEqual(parsed.lists, { field: ["a=1", "b=2", "c=3"] });
  assert.equal(parsed.values.source, "s2");
  assert.deepEqual(parseFlags([], specs).lists, {});
  assert.match(formatUsage("cmd", specs), /-field VALUE\n {8}x \(may be repeated\)/);
});
