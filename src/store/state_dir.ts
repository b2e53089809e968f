/**
 * Where logboom keeps its own state (the stream marks journal, `streams.jsonl`): a hidden
 * `.logboom/` folder beside the log files by default, or `-stateDir`. It holds a `.gitignore`
 * that ignores everything, so a repository that contains the logs never shows it, and no
 * `-logFile` template may be able to name a file inside it (values never start with `.`, and a
 * template that could still reach it is refused at startup).
 *
 * @module
 */

import { dirname, isAbsolute, join, normalize, resolve } from "node:path";

/** The state folder's name beside the log files. */
export const STATE_DIR_NAME = ".logboom";

const GITIGNORE = "*\n";

/**
 * The default state folder for a `-logFile` value: `.logboom` in the folder of the log file, or
 * for a template, in the deepest folder the template spells out before its first placeholder.
 * State lives with the files it describes, so it moves with them and works whatever the working
 * folder of a service is.
 *
 * @example
 * ```ts
 * defaultStateDir("aggregated_logs.txt"); // ".logboom"
 * defaultStateDir("logs/{source}/{date}.log"); // "logs/.logboom"
 * ```
 */
export function defaultStateDir(logFile: string): string {
  const brace = logFile.indexOf("{");
  const fixed = brace === -1 ? logFile : logFile.slice(0, brace);
  const folder = brace !== -1 && fixed.endsWith("/") ? fixed.slice(0, -1) : dirname(fixed);
  return join(folder === "" ? "." : folder, STATE_DIR_NAME);
}

/**
 * Creates the state folder and its `.gitignore` (`*`, as pytest and ruff do for their caches),
 * unless the `.gitignore` is there already.
 *
 * @throws the file system's error when the folder cannot be created.
 */
export async function prepareStateDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  try {
    await Deno.writeTextFile(join(dir, ".gitignore"), GITIGNORE, { createNew: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
}

/**
 * Why `logFile` and `stateDir` cannot be used together, or `undefined` when they can: a plain log
 * file inside the state folder, or a template that some values could render inside it.
 *
 * @example
 * ```ts
 * stateDirConflict("logs/{source}", "logs/.logboom"); // undefined: values never start with "."
 * stateDirConflict("logs/{source}/{host}", "logs/state"); // a reason: source "state" reaches it
 * ```
 */
export function stateDirConflict(logFile: string, stateDir: string): string | undefined {
  const [file, state] = comparable(logFile, stateDir);
  const fileParts = file.split("/");
  const stateParts = state.split("/").filter((part) => part !== "" && part !== ".");
  const rooted = state.startsWith("/");
  const parts = fileParts.filter((part, i) => part !== "." && (part !== "" || (i === 0 && rooted)));
  const stateFull = rooted ? ["", ...stateParts] : stateParts;
  if (parts.length <= stateFull.length) return undefined;
  const reachable = stateFull.every((segment, i) => segmentMatcher(parts[i]).test(segment));
  if (!reachable) return undefined;
  return logFile.includes("{")
    ? `-logFile "${logFile}" could name files inside the state folder "${stateDir}": ` +
      "choose another -stateDir or -logFile"
    : `-logFile "${logFile}" is inside the state folder "${stateDir}": ` +
      "choose another -stateDir or -logFile";
}

/** Both paths normalized the same way: absolute when either is and the working folder is known. */
function comparable(logFile: string, stateDir: string): [string, string] {
  if (isAbsolute(logFile) === isAbsolute(stateDir)) {
    return [normalize(logFile), normalize(stateDir)];
  }
  try {
    return [resolve(logFile), resolve(stateDir)];
  } catch {
    // No read permission for the working folder: relative and absolute cannot meet knowingly.
    return [normalize(logFile), normalize(stateDir)];
  }
}

/** What a template segment can render to: literal text exactly, values as never-hidden text. */
function segmentMatcher(segment: string): RegExp {
  let pattern = "";
  let at = 0;
  for (const match of segment.matchAll(/\{([^{}]*)\}/g)) {
    pattern += escape(segment.slice(at, match.index));
    // A value never starts with "." (see sanitizeValue), so neither does a segment it begins.
    const start = match.index === 0 ? "(?!\\.)" : "";
    pattern += match[1] === "date" ? "\\d{4}-\\d{2}-\\d{2}" : `${start}[^/]+`;
    at = match.index + match[0].length;
  }
  pattern += escape(segment.slice(at));
  return new RegExp(`^${pattern}$`, "u");
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
