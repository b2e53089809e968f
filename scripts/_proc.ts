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
