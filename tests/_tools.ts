/**
 * The programs the tests run besides Deno, and what to install for each. `deno task test` runs
 * this file first and stops with the one command that installs what is missing; the helpers that
 * start a tool (`holdLock`, a server's or a CLI's `wrapper`) spawn it with {@linkcode spawnTool}, so
 * a single test file run with plain `deno test` says the same.
 *
 * ```sh
 * deno run --allow-run=sh --allow-sys=uid tests/_tools.ts   # exit 1 and the apt-get line if any is missing
 * ```
 *
 * @module
 */

/** What a tool is for, the Debian/Ubuntu package that has it, and when it is needed. */
interface Tool {
  package: string;
  usedFor: string;
  /** Needed only when this holds (e.g. only as root); always by default. */
  needed?: () => boolean;
  /** Where it is when unpacked rather than installed (not on the PATH), from the repository. */
  unpacked?: string;
  /** How to get it, when that is not `apt-get install` of its package. */
  install?: string;
}

const asRoot = () => Deno.uid() === 0;

/** Every program a test runs, by name. */
export const TOOLS: Record<string, Tool> = {
  flock: { package: "util-linux", usedFor: "another process holding a log file's lock" },
  setpriv: {
    package: "util-linux",
    usedFor: "permission tests, which drop root's override",
    needed: asRoot,
  },
  prlimit: { package: "util-linux", usedFor: "a server under a small file-descriptor limit" },
  script: { package: "bsdutils", usedFor: "a terminal for logboom tail's colours" },
  gzip: { package: "gzip", usedFor: "checking compressed rotations" },
  mount: { package: "mount", usedFor: "the disk-full test on a small tmpfs", needed: asRoot },
  git: { package: "git", usedFor: "checking that state files are not committed" },
  logger: { package: "bsdutils", usedFor: "util-linux's logger as a syslog sender" },
  "syslog-ng": { package: "syslog-ng-core", usedFor: "syslog-ng as a syslog sender" },
  rsyslogd: {
    package: "rsyslog",
    usedFor: "rsyslog as a syslog sender",
    unpacked: ".tools/rsyslog/usr/sbin/rsyslogd",
    // rsyslog and syslog-ng conflict as packages: rsyslog is unpacked beside the repository.
    install: "apt-get install libestr0 libfastjson4 && apt-get download rsyslog && " +
      "dpkg -x rsyslog_*.deb .tools/rsyslog",
  },
  openssl: { package: "openssl", usedFor: "a self-signed certificate for syslog over TLS" },
  ss: { package: "iproute2", usedFor: "reading the kernel's UDP drop counters" },
  chromium: { package: "chromium", usedFor: "the web page's browser tests (playwright-core)" },
  "firefox-esr": {
    package: "firefox-esr",
    usedFor: "the web page's tests in Firefox (puppeteer-core)",
  },
  pg_ctlcluster: {
    package: "postgresql",
    usedFor: "PostgreSQL servers of the postgres sink tests (run from /usr/lib/postgresql/*/bin)",
  },
  "nats-server": { package: "nats-server", usedFor: "a JetStream cluster for the scale-out tests" },
};

const ROOT = new URL("../", import.meta.url);

const found = new Map<string, Promise<boolean>>();

/**
 * Whether `name` is on the PATH, or unpacked where {@linkcode TOOLS} says (asked once per
 * process).
 */
export function hasTool(name: string): Promise<boolean> {
  let known = found.get(name);
  if (known === undefined) {
    const unpacked = TOOLS[name]?.unpacked;
    known = new Deno.Command("sh", {
      args: [
        "-c",
        'command -v "$1" || { [ -n "$2" ] && [ -x "$2" ]; }',
        "sh",
        name,
        unpacked === undefined ? "" : decodeURIComponent(new URL(unpacked, ROOT).pathname),
      ],
      stdout: "null",
      stderr: "null",
    }).output().then((out) => out.success);
    found.set(name, known);
  }
  return known;
}

/**
 * The command that runs tool `name`: its name when it is on the PATH, else its unpacked path.
 * Throws what to install when it is neither.
 */
export async function toolPath(name: string): Promise<string> {
  await needTool(name);
  const onPath = await new Deno.Command("sh", {
    args: ["-c", 'command -v "$1"', "sh", name],
    stdout: "null",
    stderr: "null",
  }).output();
  const unpacked = TOOLS[name]?.unpacked;
  if (onPath.success || unpacked === undefined) return name;
  return decodeURIComponent(new URL(unpacked, ROOT).pathname);
}

/** The tools of {@linkcode TOOLS} this machine needs and lacks. */
export async function missingTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const [name, tool] of Object.entries(TOOLS)) {
    if ((tool.needed?.() ?? true) && !await hasTool(name)) missing.push(name);
  }
  return missing;
}

/** One sentence that says what to install for `missing`, and why. */
export function installAdvice(missing: readonly string[]): string {
  const plain = missing.filter((name) => TOOLS[name]?.install === undefined);
  const packages = [...new Set(plain.map((name) => TOOLS[name]?.package ?? name))];
  const special = missing.flatMap((name) => TOOLS[name]?.install ?? []);
  const uses = missing.map((name) => `${name}: ${TOOLS[name]?.usedFor ?? "a test"}`);
  const steps = [
    ...(packages.length > 0 ? [`apt-get install ${packages.join(" ")}`] : []),
    ...special,
  ];
  return `The tests need ${missing.join(", ")} (${uses.join("; ")}). Install first: ` +
    `${steps.join("; then ")} (Debian/Ubuntu; the same names elsewhere)`;
}

/** Throws an error saying what to install when `name` is not on the PATH. */
export async function needTool(name: string): Promise<void> {
  if (!await hasTool(name)) throw new Error(installAdvice([name]));
}

/**
 * Spawns `command`, which runs the tool `name`; when the tool is not installed, throws an error
 * saying what to install instead of Deno's "Failed to spawn".
 */
export function spawnTool(command: Deno.Command, name: string): Deno.ChildProcess {
  try {
    return command.spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new Error(installAdvice([name]), { cause: err });
    throw err;
  }
}

if (import.meta.main) {
  const missing = await missingTools();
  if (missing.length > 0) {
    console.error(installAdvice(missing));
    Deno.exit(1);
  }
}
