/**
 * `logboom rules test -config FILE [-source NAME] < sample.log`: tries the transform rules of a
 * config file (its `transforms` section; other sections are not read) on sample lines, without a
 * server, and prints what each line becomes, one JSON object per line (`transforms/tryout.ts`):
 * its level, time and fields, or the step that dropped it, or the line whose event it joined. A
 * summary goes to stderr. Exit 0; 2 for a config with problems or bad flags.
 *
 * @module
 */

import { concatBytes } from "../_util.ts";
import { Problems } from "../config/keys.ts";
import { ConfigError, parseConfigText } from "../config/load.ts";
import { transformsOfDocument } from "../transforms/config.ts";
import { type RuleResult, tryTransforms } from "../transforms/tryout.ts";
import { FlagError, type FlagSpecs, parseCommand, parseFlags } from "./flags.ts";

/** The flags of `rules test`. */
export const RULES_FLAGS: FlagSpecs = {
  config: {
    type: "string",
    value: "FILE",
    help: "The config file whose transforms section is tried (YAML, or JSON for a .json file)",
  },
  source: {
    type: "string",
    value: "NAME",
    default: "tcp",
    help: "The source the sample lines come from, which selects the pipelines",
  },
  host: { type: "string", value: "HOST", default: "127.0.0.1", help: "The host they come from" },
};

const SYNOPSIS = "logboom rules test -config FILE [-source NAME] [-host HOST] < sample.log";

/** The most sample bytes read from stdin. */
export const MAX_SAMPLE = 64 * 1024 * 1024;

interface ParsedRulesArgs {
  file: string;
  source: string;
  host: string;
  help: boolean;
}

function parseRulesArgs(args: readonly string[]): ParsedRulesArgs {
  const [verb, ...rest] = args;
  if (verb === "-h" || verb === "-help" || verb === "--help") {
    return { file: "", source: "", host: "", help: true };
  }
  if (verb !== "test") {
    throw new FlagError(
      verb === undefined ? "Missing subcommand: test" : `Unknown subcommand "${verb}": test`,
    );
  }
  const { values, positionals, help } = parseFlags(rest, RULES_FLAGS);
  if (positionals.length > 0) {
    throw new FlagError(`Unexpected argument "${positionals[0]}": the sample comes on stdin`);
  }
  const file = values.config;
  if (!help && (typeof file !== "string" || file.trim() === "")) {
    throw new FlagError(`Flag "-config" is required: the file whose rules to try`);
  }
  for (const name of ["source", "host"]) {
    if (String(values[name]).trim() === "") throw new FlagError(`Flag "-${name}" is empty`);
  }
  return {
    file: String(file ?? ""),
    source: String(values.source),
    host: String(values.host),
    help,
  };
}

/** Where `rules test` reads and writes; tests give their own. */
export interface RulesIo {
  /** The sample. Default stdin. */
  stdin?: ReadableStream<Uint8Array>;
  /** One result line. Default `console.log`. */
  out?: (line: string) => void;
  /** A message for people. Default `console.error`. */
  err?: (line: string) => void;
}

/** The `rules` command: resolves with the exit code. */
export async function runRules(args: readonly string[], io: RulesIo = {}): Promise<number> {
  const { out = console.log, err = console.error } = io;
  const parsed = parseCommand(args, parseRulesArgs, { synopsis: SYNOPSIS, specs: RULES_FLAGS });
  if (typeof parsed === "number") return parsed;
  let text: string;
  try {
    text = await Deno.readTextFile(parsed.file);
  } catch (error) {
    const hint = error instanceof Deno.errors.NotCapable
      ? ` (run with --allow-read=${parsed.file})`
      : "";
    err(`${parsed.file}: cannot be read: ${(error as Error).message}${hint}`);
    return 2;
  }
  const problems = new Problems();
  let transforms;
  try {
    transforms = transformsOfDocument(parseConfigText(text, parsed.file), problems);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    err(error.message);
    return 2;
  }
  if (transforms === undefined) {
    err(new ConfigError(parsed.file, problems.list).message);
    return 2;
  }
  const sample = await readSample(io.stdin ?? Deno.stdin.readable);
  if (sample === undefined) {
    err(`The sample is over ${MAX_SAMPLE} bytes: try a part of it`);
    return 2;
  }
  const results = tryTransforms(transforms, sample, { source: parsed.source, host: parsed.host });
  for (const result of results) out(JSON.stringify(result));
  err(summary(results, parsed.source, transforms.matching(parsed.source).length > 0));
  return 0;
}

async function readSample(stream: ReadableStream<Uint8Array>): Promise<string | undefined> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > MAX_SAMPLE) {
      await stream.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(chunk);
  }
  return new TextDecoder().decode(concatBytes(chunks, size));
}

function summary(results: readonly RuleResult[], source: string, matched: boolean): string {
  if (!matched) {
    return `No pipeline takes source "${source}": lines are stored as received. Name the ` +
      "sample's source with -source, or add it to a pipeline's sources";
  }
  const dropped = results.filter((r) => r.dropped).length;
  const joined = results.filter((r) => r.joined_into !== undefined).length;
  const errors = results.filter((r) => r.fields?._parse_error !== undefined).length;
  return `${results.length} lines: ${results.length - dropped - joined} stored, ${dropped} ` +
    `dropped, ${joined} joined into events, ${errors} did not parse (kept with _parse_error)`;
}
