/**
 * Datagrams the kernel dropped for a UDP socket. Deno has neither `SO_RXQ_OVFL` nor
 * `getsockopt`, so the kernel's per-socket counters are read from outside: the `drops` column of
 * `/proc/net/udp` and `/proc/net/udp6` (Linux), or `ss -u -a -n -m` (iproute2), whose
 * `skmem:(r…,rb…,…,d…)` shows the same drops with the bytes queued and the buffer's size.
 *
 * Deno reads nothing under `/proc/self` (where `/proc/net` points) without `--allow-all`, so
 * with narrow permissions the counters come from `ss`, which `--allow-run=ss` allows. With
 * neither, the watch says once that drops cannot be counted.
 *
 * @module
 */

/** What the kernel reports for one socket. */
export interface UdpSocketCounters {
  /** Datagrams dropped since the socket was opened (full receive buffer, bad checksum). */
  drops: number;
  /** Bytes queued in the socket's receive buffer now. */
  queuedBytes: number;
  /** The socket's receive buffer size in bytes (`SO_RCVBUF`), when the source shows it (ss). */
  bufferBytes?: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * The `local_address` column `/proc/net/udp{,6}` shows for an address and port: each 32-bit word
 * of the address printed as hex in the machine's byte order, `:`, the port in hex. Returns
 * `undefined` for a hostname that is not an IP address.
 *
 * @example
 * ```ts
 * procLocalAddress("127.0.0.1", 9999); // "0100007F:270F" on x86
 * ```
 */
export function procLocalAddress(hostname: string, port: number): string | undefined {
  const bytes = ipBytes(hostname);
  if (bytes === undefined) return undefined;
  let hex = "";
  for (let i = 0; i < bytes.length; i += 4) {
    const word = LITTLE_ENDIAN
      ? [bytes[i + 3], bytes[i + 2], bytes[i + 1], bytes[i]]
      : [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
    for (const b of word) hex += b.toString(16).padStart(2, "0");
  }
  return `${hex.toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * Finds the socket bound to `local` (as {@linkcode procLocalAddress} writes it) in the text of
 * `/proc/net/udp` or `/proc/net/udp6`; `undefined` when no row has it.
 */
export function findUdpSocket(table: string, local: string): UdpSocketCounters | undefined {
  let at = table.indexOf(` ${local} `);
  while (at !== -1) {
    const start = table.lastIndexOf("\n", at) + 1;
    let end = table.indexOf("\n", at);
    if (end === -1) end = table.length;
    const columns = table.slice(start, end).trim().split(/\s+/);
    // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer drops
    if (columns[1] === local && columns.length >= 13) {
      const rx = columns[4].split(":")[1] ?? "";
      const drops = Number(columns[12]);
      const queuedBytes = parseInt(rx, 16);
      if (Number.isSafeInteger(drops) && Number.isSafeInteger(queuedBytes)) {
        return { drops, queuedBytes };
      }
    }
    at = table.indexOf(` ${local} `, end);
  }
  return undefined;
}

/** The 4 or 16 bytes of an IPv4 or IPv6 address, or `undefined`. */
function ipBytes(hostname: string): number[] | undefined {
  const host = hostname.startsWith("[") && hostname.endsWith("]")
    ? hostname.slice(1, -1)
    : hostname;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4 !== null) {
    const bytes = v4.slice(1).map(Number);
    return bytes.every((b) => b <= 255) ? bytes : undefined;
  }
  if (!host.includes(":")) return undefined;
  let text = host;
  const dot = text.lastIndexOf(":");
  if (text.includes(".", dot)) {
    // An IPv4 tail (`::ffff:127.0.0.1`) is two groups.
    const v4bytes = ipBytes(text.slice(dot + 1));
    if (v4bytes === undefined) return undefined;
    const hi = (v4bytes[0] << 8 | v4bytes[1]).toString(16);
    const lo = (v4bytes[2] << 8 | v4bytes[3]).toString(16);
    text = `${text.slice(0, dot + 1)}${hi}:${lo}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string) => part === "" ? [] : part.split(":").map((g) => parseInt(g, 16));
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  const groups = head.length + rest.length;
  if (groups > 8 || (halves.length === 1 && groups !== 8)) return undefined;
  const words = [...head, ...new Array(8 - groups).fill(0), ...rest];
  if (words.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffff)) return undefined;
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

/**
 * Finds the socket bound to `hostname` in the output of `ss -u -a -n -m -H 'sport = :PORT'`
 * (rows of `State Recv-Q Send-Q Local:Port Peer:Port`, each followed by its `skmem:(…)`);
 * `undefined` when no row has it.
 */
export function findSsSocket(output: string, hostname: string): UdpSocketCounters | undefined {
  const rows = output.split("\n");
  const host = hostname.replace(/^\[|\]$/g, "");
  const any = host === "0.0.0.0" || host === "::";
  let found: UdpSocketCounters | undefined;
  for (let i = 0; i < rows.length; i++) {
    const mem = /skmem:\(([^)]*)\)/.exec(rows[i]);
    if (mem === null) continue;
    // The address is on the row itself (ss -m on one line when piped) or on the row before.
    const addressRow = /\S+:\d+\s/.test(rows[i].slice(0, mem.index)) ? rows[i] : rows[i - 1] ?? "";
    const local = addressRow.trim().split(/\s+/)[3] ?? "";
    const localHost = local.slice(0, local.lastIndexOf(":")).replace(/^\[|\]$/g, "")
      .replace(/%.*$/, "");
    const matches = localHost === host || (any && (localHost === "*" || localHost === "::"));
    if (!matches) continue;
    const fields = new Map<string, number>();
    for (const part of mem[1].split(",")) {
      const m = /^([a-z]+)(\d+)$/.exec(part);
      if (m !== null) fields.set(m[1], Number(m[2]));
    }
    const drops = fields.get("d");
    const queued = fields.get("r");
    if (drops === undefined || queued === undefined) continue;
    found = { drops, queuedBytes: queued, bufferBytes: fields.get("rb") };
    break;
  }
  return found;
}

/** Reads a socket's counters; `undefined` when the socket is not in what it read. */
type CounterSource = (addr: Deno.NetAddr) => Promise<UdpSocketCounters | undefined>;

/** Reads `/proc/net/udp` (or `udp6`). */
export const procSource: CounterSource = async (addr) => {
  const path = addr.hostname.includes(":") ? "/proc/net/udp6" : "/proc/net/udp";
  return findUdpSocket(
    await Deno.readTextFile(path),
    procLocalAddress(addr.hostname, addr.port) ?? "",
  );
};

/** Runs `ss`. */
export const ssSource: CounterSource = async (addr) => {
  const out = await new Deno.Command("ss", {
    args: ["-u", "-a", "-n", "-m", "-H", `sport = :${addr.port}`],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!out.success) throw new Error(`ss exited with ${out.code}`);
  return findSsSocket(new TextDecoder().decode(out.stdout), addr.hostname);
};

/**
 * The ways this process may read the counters, best first, asked without a prompt: `/proc` when
 * reading it is allowed (Deno wants `--allow-all` for it), `ss` when running it is.
 */
export function allowedSources(): { name: string; read: CounterSource }[] {
  const granted = (descriptor: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(descriptor).state === "granted";
  const sources: { name: string; read: CounterSource }[] = [];
  if (Deno.build.os !== "linux") return sources;
  if (granted({ name: "read", path: "/proc/net/udp" })) {
    sources.push({ name: "/proc/net/udp", read: procSource });
  }
  if (granted({ name: "run", command: "ss" })) sources.push({ name: "ss", read: ssSource });
  return sources;
}

/** Options of {@linkcode UdpDropWatch}. */
export interface UdpDropWatchOptions {
  /** How often the counters are read, in ms. Default 1000 from `/proc`, 5000 from `ss`. */
  everyMs?: number;
  /** Where to read them, best first. Default {@linkcode allowedSources}. */
  sources?: { name: string; read: CounterSource }[];
  /** Called once when no source works, with why. */
  unavailable?: (reason: string) => void;
}

/**
 * Reads a socket's kernel counters periodically while the socket is open, from the first source
 * that works.
 */
export class UdpDropWatch {
  readonly #addr: Deno.NetAddr;
  readonly #sources: { name: string; read: CounterSource }[];
  readonly #everyMs: number | undefined;
  #unavailable: ((reason: string) => void) | undefined;
  #source: { name: string; read: CounterSource } | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #last: UdpSocketCounters | undefined;
  #reading: Promise<void> | undefined;
  #closed = false;

  /**
   * @param addr the socket's bound address.
   * @param options how often and where to read.
   */
  constructor(addr: Deno.NetAddr, options: UdpDropWatchOptions = {}) {
    this.#addr = addr;
    this.#sources = [...(options.sources ?? allowedSources())];
    this.#everyMs = options.everyMs;
    this.#unavailable = options.unavailable;
    void this.refresh().then(() => this.#schedule());
  }

  /** Where the counters come from, once a read worked. */
  get source(): string | undefined {
    return this.#source?.name;
  }

  /** The counters last read; `undefined` before the first read or when none can be. */
  get counters(): UdpSocketCounters | undefined {
    return this.#last;
  }

  /** Reads the counters now (one read at a time); resolves when done. Never rejects. */
  refresh(): Promise<void> {
    return this.#reading ??= this.#refresh().finally(() => this.#reading = undefined);
  }

  async #refresh(): Promise<void> {
    const errors: string[] = [];
    while (this.#source === undefined && this.#sources.length > 0) {
      const candidate = this.#sources[0];
      try {
        const found = await candidate.read(this.#addr);
        this.#source = candidate;
        if (found !== undefined) this.#last = found;
        return;
      } catch (err) {
        errors.push(`${candidate.name}: ${err instanceof Error ? err.message : String(err)}`);
        this.#sources.shift();
      }
    }
    if (this.#source === undefined) {
      if (this.#sources.length === 0 && this.#unavailable !== undefined) {
        const say = this.#unavailable;
        this.#unavailable = undefined;
        say(errors.length > 0 ? errors.join("; ") : "no permission to read them");
      }
      return;
    }
    try {
      const found = await this.#source.read(this.#addr);
      // A missing row keeps the last counters: the socket is closing.
      if (found !== undefined) this.#last = found;
    } catch {
      // Read again at the next tick.
    }
  }

  #schedule(): void {
    if (this.#closed || this.#source === undefined) return;
    const everyMs = this.#everyMs ?? (this.#source.read === ssSource ? 5000 : 1000);
    this.#timer = setTimeout(() => void this.refresh().then(() => this.#schedule()), everyMs);
  }

  /** Stops reading; resolves once a read under way is done. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#reading;
    clearTimeout(this.#timer);
  }
}
