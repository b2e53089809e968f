/**
 * The receive buffer (`SO_RCVBUF`) of a UDP socket that Deno opened. Deno's API cannot set it
 * (`node:dgram`'s `recvBufferSize` is accepted but not applied), so this module calls the C
 * library through FFI (`Deno.dlopen`, allowed by `--allow-ffi`): it finds the socket's file
 * descriptor by asking `getsockname` of each descriptor from 3 up for a UDP socket bound to the
 * socket's address and port (no `/proc`, which Deno refuses without `--allow-all`), then sets the
 * size with `SO_RCVBUFFORCE` when the process may (root, `CAP_NET_ADMIN`: past
 * `net.core.rmem_max`) or else `SO_RCVBUF` (capped by `net.core.rmem_max`), and reads back what
 * the kernel gave.
 *
 * Sizes are the buffer as the kernel counts it: what `getsockopt(SO_RCVBUF)` and `ss -m` (`rb`)
 * show, and what `net.core.rmem_default` sets. The kernel doubles the value `setsockopt` is
 * given (the half it adds is for its bookkeeping), so half the size is asked.
 *
 * Linux only; the C library is opened only when a size is asked, and closed after.
 *
 * @module
 */

/** The C library every glibc Linux program has (Deno's own builds link it). */
const LIBC = "libc.so.6";

// Linux's values on every architecture Deno runs on (asm-generic).
const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const SOCK_DGRAM = 2;
const AF_INET = 2;
const AF_INET6 = 10;
const RLIMIT_NOFILE = 7;
/** Descriptors looked at, at most (a larger `ulimit -n` still stops here). */
const MAX_FDS = 1 << 20;
/** The largest size: the kernel keeps it in an `int`, doubled. */
export const MAX_RECEIVE_BUFFER = 1024 * 1024 * 1024;
/** The smallest size asked (the kernel raises anything under about 4.5 KiB to that). */
export const MIN_RECEIVE_BUFFER = 4 * 1024;

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  9: "EBADF",
  12: "ENOMEM",
  13: "EACCES",
  22: "EINVAL",
  88: "ENOTSOCK",
  92: "ENOPROTOOPT",
};

const SYMBOLS = {
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** What the kernel gave a socket. */
export interface ReceiveBuffer {
  /** The size asked, in bytes. */
  asked: number;
  /** The size the kernel gave (`getsockopt(SO_RCVBUF)`), in bytes. */
  bytes: number;
  /** Whether `SO_RCVBUFFORCE` set it (past `net.core.rmem_max`). */
  forced: boolean;
  /**
   * When the kernel gave less than asked: the `net.core.rmem_max` that capped it (half of what it
   * gave); `undefined` otherwise.
   */
  rmemMax?: number;
  /** The socket's file descriptor. */
  fd: number;
}

/** Why a size could not be set: `reason` says what, in one line. */
export class ReceiveBufferError extends Error {
  /** `permission` (no `--allow-ffi`), `unsupported` (not Linux, no glibc), or `failed`. */
  readonly reason: "permission" | "unsupported" | "failed";

  /**
   * @param reason the kind.
   * @param message the line to show.
   */
  constructor(reason: "permission" | "unsupported" | "failed", message: string) {
    super(message);
    this.name = "ReceiveBufferError";
    this.reason = reason;
  }
}

/** Options of {@linkcode setReceiveBuffer}. */
export interface SetReceiveBufferOptions {
  /**
   * Try `SO_RCVBUFFORCE` first (it works for root and `CAP_NET_ADMIN`, past `rmem_max`).
   * Default `true`; tests turn it off to see the cap an unprivileged process meets.
   */
  force?: boolean;
}

/**
 * Sets the receive buffer of the UDP socket bound to `addr` in this process (`socket.addr` of a
 * `Deno.listenDatagram`), and tells what the kernel gave.
 *
 * @example
 * ```ts ignore
 * const socket = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 5140 });
 * const got = setReceiveBuffer(socket.addr as Deno.NetAddr, 8 * 1024 * 1024);
 * got.bytes; // 8388608, or less when net.core.rmem_max caps it
 * ```
 *
 * @throws {ReceiveBufferError} when it cannot be set: no `--allow-ffi`, not Linux with glibc,
 * no such socket, or the kernel refused.
 */
export function setReceiveBuffer(
  addr: Deno.NetAddr,
  bytes: number,
  options: SetReceiveBufferOptions = {},
): ReceiveBuffer {
  if (!Number.isSafeInteger(bytes) || bytes < MIN_RECEIVE_BUFFER || bytes > MAX_RECEIVE_BUFFER) {
    throw new RangeError(`A receive buffer is 4 KiB to 1 GiB, not ${bytes} bytes`);
  }
  return withLibc((libc) => {
    const fd = findUdpSocket(libc, addr);
    if (fd === undefined) {
      throw new ReceiveBufferError(
        "failed",
        `no UDP socket bound to ${addr.hostname}:${addr.port} among this process's descriptors`,
      );
    }
    // The kernel doubles what it is given.
    const half = Math.ceil(bytes / 2);
    let forced = false;
    if (options.force ?? true) forced = setInt(libc, fd, SO_RCVBUFFORCE, half) === 0;
    if (!forced && setInt(libc, fd, SO_RCVBUF, half) !== 0) {
      throw new ReceiveBufferError("failed", `setsockopt(SO_RCVBUF) failed: ${errno(libc)}`);
    }
    const got = getInt(libc, fd, SO_RCVBUF);
    if (got === undefined) {
      throw new ReceiveBufferError("failed", `getsockopt(SO_RCVBUF) failed: ${errno(libc)}`);
    }
    return { asked: bytes, bytes: got, forced, rmemMax: got < bytes ? got / 2 : undefined, fd };
  });
}

/** Reads the receive buffer of the UDP socket bound to `addr`, as {@linkcode setReceiveBuffer}. */
export function getReceiveBuffer(addr: Deno.NetAddr): number {
  return withLibc((libc) => {
    const fd = findUdpSocket(libc, addr);
    const got = fd === undefined ? undefined : getInt(libc, fd, SO_RCVBUF);
    if (got === undefined) {
      throw new ReceiveBufferError(
        "failed",
        `no UDP socket bound to ${addr.hostname}:${addr.port} among this process's descriptors`,
      );
    }
    return got;
  });
}

/**
 * Why this process cannot set a receive buffer, asked without a prompt; `undefined` when it may
 * try.
 */
export function receiveBufferUnavailable(): ReceiveBufferError | undefined {
  if (Deno.build.os !== "linux") {
    return new ReceiveBufferError("unsupported", `not supported on ${Deno.build.os}`);
  }
  if (Deno.permissions.querySync({ name: "ffi", path: LIBC }).state !== "granted") {
    return new ReceiveBufferError(
      "permission",
      "setting it calls the C library, which needs Deno's --allow-ffi",
    );
  }
  return undefined;
}

function withLibc<T>(use: (libc: Libc) => T): T {
  const unavailable = receiveBufferUnavailable();
  if (unavailable !== undefined) throw unavailable;
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(LIBC, SYMBOLS);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ReceiveBufferError("unsupported", `cannot open ${LIBC} (${why})`);
  }
  try {
    return use(lib.symbols);
  } finally {
    lib.close();
  }
}

/** The descriptor of the UDP socket bound to `addr`, looked for from 3 up. */
function findUdpSocket(libc: Libc, addr: Deno.NetAddr): number | undefined {
  const want = normalHost(addr.hostname);
  const sockaddr = new Uint8Array(128);
  const length = new Uint32Array(1);
  const lengthBytes = new Uint8Array(length.buffer);
  const family = new Uint16Array(sockaddr.buffer, 0, 1);
  const limit = openFileLimit(libc);
  for (let fd = 3; fd < limit; fd++) {
    length[0] = sockaddr.length;
    if (libc.getsockname(fd, sockaddr, lengthBytes) !== 0) continue;
    const port = sockaddr[2] << 8 | sockaddr[3];
    if (port !== addr.port) continue;
    let host: string;
    if (family[0] === AF_INET) host = sockaddr.subarray(4, 8).join(".");
    else if (family[0] === AF_INET6) host = ipv6Text(sockaddr.subarray(8, 24));
    else continue;
    if (normalHost(host) !== want || getInt(libc, fd, SO_TYPE) !== SOCK_DGRAM) continue;
    return fd;
  }
  return undefined;
}

/** The soft `RLIMIT_NOFILE`: descriptors are below it. At most {@linkcode MAX_FDS}. */
function openFileLimit(libc: Libc): number {
  const limit = new BigUint64Array(2);
  if (libc.getrlimit(RLIMIT_NOFILE, new Uint8Array(limit.buffer)) !== 0) return MAX_FDS;
  return Number(limit[0] < BigInt(MAX_FDS) ? limit[0] : BigInt(MAX_FDS));
}

/** An address in one spelling (the URL parser's), so `::1` and `0:0:…:1` compare equal. */
function normalHost(hostname: string): string {
  const bare = hostname.replace(/^\[|\]$/g, "");
  try {
    return new URL(`http://${bare.includes(":") ? `[${bare}]` : bare}/`).hostname;
  } catch {
    return bare;
  }
}

function ipv6Text(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8 | bytes[i + 1]).toString(16));
  return groups.join(":");
}

function setInt(libc: Libc, fd: number, option: number, value: number): number {
  return libc.setsockopt(fd, SOL_SOCKET, option, new Uint8Array(new Int32Array([value]).buffer), 4);
}

function getInt(libc: Libc, fd: number, option: number): number | undefined {
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  const done = libc.getsockopt(
    fd,
    SOL_SOCKET,
    option,
    new Uint8Array(value.buffer),
    new Uint8Array(length.buffer),
  );
  return done === 0 ? value[0] : undefined;
}

/** The C library's `errno` of the last call, by name. */
function errno(libc: Libc): string {
  const at = libc.__errno_location();
  if (at === null) return "unknown error";
  const code = new Deno.UnsafePointerView(at).getInt32();
  return ERRNO_NAMES[code] ?? `errno ${code}`;
}
