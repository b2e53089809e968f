/**
 * What the benchmarks ask of processes and ports. /proc is read with cat(1): Deno reads it only
 * under --allow-all, which the bench task does not grant.
 *
 * @module
 */

/** A loopback TCP port below the kernel's ephemeral range, free right now: the tests' own. */
export { freePort } from "../tests/_server.ts";

const decoder = new TextDecoder();

async function cat(path: string): Promise<string> {
  const out = await new Deno.Command("cat", { args: [path], stderr: "null" }).output();
  return decoder.decode(out.stdout);
}

/** Peak resident memory (VmHWM) of `pid`, in kB. */
export async function peakRssKb(pid: number): Promise<number> {
  return Number(/VmHWM:\s+(\d+)/.exec(await cat(`/proc/${pid}/status`))?.[1] ?? NaN);
}

/** CPU seconds (user + system) `pid` used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await cat(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat(5), counted from the state field (3): utime, stime in clock ticks.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Where the benchmarks build their Go programs: `$BENCH_BIN`, as `run-peer.sh` uses it. */
export const BENCH_BIN: string = Deno.env.get("BENCH_BIN") ??
  `${Deno.env.get("TMPDIR") ?? "/tmp"}/logbench-bin`;

/**
 * Builds the Go program `source` into `BENCH_BIN/name`, unless the binary there is newer than its
 * source; returns the binary's path.
 */
export async function buildGo(source: string, name: string): Promise<string> {
  const exe = `${BENCH_BIN}/${name}`;
  const [built, src] = await Promise.all([
    Deno.stat(exe).catch(() => undefined),
    Deno.stat(source),
  ]);
  if (built?.mtime && src.mtime && built.mtime > src.mtime) return exe;
  await Deno.mkdir(BENCH_BIN, { recursive: true });
  const out = await new Deno.Command("go", {
    args: ["build", "-o", exe, source],
    env: { GO111MODULE: "off", GOCACHE: `${BENCH_BIN}/.gocache` },
  }).output();
  if (!out.success) throw new Error(`Cannot build ${source}: ${decoder.decode(out.stderr)}`);
  return exe;
}

/**
 * Keeps a child's stderr flowing (its last 4 KiB kept for messages); `seen` resolves `true` once
 * `marker` was written, `false` if the stream ended first.
 */
export function drain(stream: ReadableStream<Uint8Array>, marker = "") {
  let text = "";
  let found = false;
  const { promise: seen, resolve } = Promise.withResolvers<boolean>();
  const done = (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text = (text + chunk).slice(-4096);
      if (!found && marker !== "" && text.includes(marker)) resolve(found = true);
    }
    resolve(found);
  })();
  return { text: () => text, done, seen };
}
