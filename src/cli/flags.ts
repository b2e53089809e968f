/**
 * Go-style flags: `-port 9000`, `-port=9000`, `--port 9000` and `--port=9000` all work; a boolean
 * flag stands alone (`-compress`) or takes `=true`/`=false`. Parsing stops at `--` or at the first
 * argument that is not a flag, as Go's `flag` package does.
 *
 * @module
 */

import { describe } from "../_util.ts";
import { parseDuration, parseSize } from "../units.ts";

/** How one flag is declared. */
export interface FlagSpec {
  /** `string` takes a value; `bool` stands alone. */
  type: "string" | "bool";
  /** What the flag does, for the usage text. */
  help: string;
  /** The default, shown in the usage text. */
  default?: string | boolean;
  /** Name of the value in the usage text, e.g. `N` or `PATH`. */
  value?: string;
  /**
   * A `string` flag that may be given several times: every value, in order, is in
   * {@linkcode ParsedFlags.lists} (`values` holds the last). Default false.
   */
  repeat?: boolean;
}

/** The flags of one command, by name without dashes. */
export type FlagSpecs = Record<string, FlagSpec>;

/** What {@linkcode parseFlags} found. */
export interface ParsedFlags {
  /** Each flag given, or its default; flags with neither are absent. */
  values: Record<string, string | boolean>;
  /** The arguments after the flags. */
  positionals: string[];
  /** Every value of each `repeat` flag given, in order. */
  lists: Record<string, string[]>;
  /** Whether `-h`, `-help` or `--help` was given. */
  help: boolean;
}

/** A command line that does not fit its flags: print the usage and exit with code 2. */
export class FlagError extends Error {
  /**
   * @param message what is wrong, in one sentence.
   * @param options the cause, when there is one.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FlagError";
  }
}

/**
 * Parses `args` against `specs`.
 *
 * @example
 * ```ts
 * const { values } = parseFlags(["-port=9000"], {
 *   port: { type: "string", default: "8080", help: "TCP port" },
 * });
 * values.port; // "9000"
 * ```
 */
export function parseFlags(args: readonly string[], specs: FlagSpecs): ParsedFlags {
  const values: Record<string, string | boolean> = {};
  const lists: Record<string, string[]> = {};
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.default !== undefined) values[name] = spec.default;
  }
  let help = false;
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      i++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    const body = arg.slice(arg.startsWith("--") ? 2 : 1);
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    const inline = eq === -1 ? undefined : body.slice(eq + 1);
    if (name === "h" || name === "help") {
      help = true;
      continue;
    }
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (spec === undefined) throw new FlagError(`Unknown flag "${arg}"`);
    if (spec.type === "bool") {
      if (inline === undefined || inline === "true") values[name] = true;
      else if (inline === "false") values[name] = false;
      else throw new FlagError(`Flag "-${name}" takes true or false, got "${inline}"`);
      continue;
    }
    if (inline !== undefined) values[name] = inline;
    else if (i + 1 < args.length) values[name] = args[++i];
    else throw new FlagError(`Flag "-${name}" needs a value`);
    if (spec.repeat === true) (lists[name] ??= []).push(values[name] as string);
  }
  return { values, positionals: args.slice(i), help, lists };
}

/** The usage text of a command: its synopsis, then each flag with its default. */
export function formatUsage(synopsis: string, specs: FlagSpecs): string {
  const lines = [`Usage: ${synopsis}`, "", "Flags:"];
  for (const [name, spec] of Object.entries(specs)) {
    const value = spec.type === "bool" ? "" : ` ${spec.value ?? "VALUE"}`;
    const shown = spec.default === undefined || spec.default === "" || spec.default === false
      ? ""
      : ` (default ${spec.default})`;
    const repeats = spec.repeat === true ? " (may be repeated)" : "";
    lines.push(`  -${name}${value}`, `        ${spec.help}${shown}${repeats}`);
  }
  lines.push("  -h, --help", "        Print this help");
  return lines.join("\n") + "\n";
}

/** What a command needs to report its flags: see {@linkcode parseCommand}. */
export interface CommandUsage {
  /** The command's synopsis, e.g. `logboom tail [flags]`. */
  synopsis: string;
  /** The command's flags, for the usage text. */
  specs: FlagSpecs;
}

/**
 * Parses a command's arguments the way every command reports them: a {@linkcode FlagError}
 * prints its message and the usage on stderr (exit code 2), and `-h` prints the usage on stdout
 * (exit code 0). Returns what `parse` made of the arguments, or the exit code to return.
 *
 * @example
 * ```ts
 * const parsed = parseCommand(args, parseTailArgs, { synopsis: SYNOPSIS, specs: TAIL_FLAGS });
 * if (typeof parsed === "number") return parsed;
 * ```
 */
export function parseCommand<T extends { help: boolean }>(
  args: readonly string[],
  parse: (args: readonly string[]) => T,
  usage: CommandUsage,
): T | number {
  let parsed: T;
  try {
    parsed = parse(args);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    console.error(`${err.message}\n\n${formatUsage(usage.synopsis, usage.specs)}`);
    return 2;
  }
  if (parsed.help) {
    console.log(formatUsage(usage.synopsis, usage.specs));
    return 0;
  }
  return parsed;
}

/**
 * Parses a size such as `1048576`, `64KiB`, `1MiB` or `2g` (units are binary and case-blind, see
 * {@linkcode parseSize}). Throws {@linkcode FlagError} naming the flag when the value is not a
 * positive size.
 */
export function parseBytes(flag: string, value: string): number {
  let bytes = NaN;
  try {
    bytes = parseSize(value);
  } catch {
    // Reported below with the flag.
  }
  if (!(bytes > 0)) {
    throw new FlagError(
      `Flag "-${flag}" takes a size in bytes such as 1048576 or 1MiB, got "${value}"`,
    );
  }
  return bytes;
}

/** Parses a duration above zero such as `30s` or `5m`, in ms; throws {@linkcode FlagError} otherwise. */
export function parseDurationFlag(flag: string, value: string): number {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (err) {
    throw new FlagError(`Flag "-${flag}" takes a duration such as 30s or 5m: ${describe(err)}`);
  }
  if (ms <= 0) throw new FlagError(`Flag "-${flag}" takes a duration above zero, got "${value}"`);
  return ms;
}

/** `parse(value)` when the flag was given a value, else `undefined`. */
export function ifGiven<T>(
  value: string | boolean | undefined,
  parse: (value: string) => T,
): T | undefined {
  return typeof value === "string" ? parse(value) : undefined;
}

/** Checks `value` is one of `choices`; throws {@linkcode FlagError} naming them otherwise. */
export function parseChoice<T extends string>(
  flag: string,
  value: string,
  options: { choices: readonly T[] },
): T {
  const { choices } = options;
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new FlagError(`Flag "-${flag}" takes one of ${choices.join(", ")}, got "${value}"`);
}

/** Parses a whole number of at least `min` (default 0); throws {@linkcode FlagError} otherwise. */
export function parseCount(flag: string, value: string, options: { min?: number } = {}): number {
  const { min = 0 } = options;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new FlagError(`Flag "-${flag}" takes a whole number of at least ${min}, got "${value}"`);
  }
  return n;
}
