import assert from "node:assert/strict";
import { bindFreePort } from "../../tests/_server.ts";
import { findSsSocket } from "../ingest/udp_drops.ts";
import {
  getReceiveBuffer,
  MAX_RECEIVE_BUFFER,
  MIN_RECEIVE_BUFFER,
  ReceiveBufferError,
  receiveBufferUnavailable,
  setReceiveBuffer,
} from "./socket_buffer.ts";

const MiB = 1024 * 1024;

/** The buffer size `ss` shows for the UDP socket at `addr` (what an operator would check). */
async function ssBuffer(addr: Deno.NetAddr): Promise<number | undefined> {
  const out = await new Deno.Command("ss", {
    args: ["-u", "-a", "-n", "-m", "-H", `sport = :${addr.port}`],
    stdout: "piped",
    stderr: "null",
  }).output();
  return findSsSocket(new TextDecoder().decode(out.stdout), addr.hostname)?.bufferBytes;
}

/** A UDP socket on a free test port, closed at the end of its scope. */
function udpSocket(hostname: string): Deno.DatagramConn & Disposable {
  const socket = bindFreePort((port) => Deno.listenDatagram({ transport: "udp", hostname, port }));
  return Object.assign(socket, { [Symbol.dispose]: () => socket.close() });
}

/** `net.core.rmem_max` (Deno reads nothing under /proc without --allow-all: cat does). */
async function rmemMax(): Promise<number> {
  const out = await new Deno.Command("cat", {
    args: ["/proc/sys/net/core/rmem_max"],
    stdout: "piped",
  }).output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

/** Whether this process may pass net.core.rmem_max (root or CAP_NET_ADMIN). */
function privileged(): boolean {
  return Deno.uid() === 0;
}

Deno.test("the receive buffer of a socket Deno opened is set, as ss shows it, not a TCP listener's on the same port", async () => {
  // A TCP listener on the same port takes a lower descriptor: the UDP socket must be the one set.
  using tcp = bindFreePort((port) => Deno.listen({ hostname: "127.0.0.1", port }));
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: "127.0.0.1",
    port: (tcp.addr as Deno.NetAddr).port,
  });
  using udp = Object.assign(socket, { [Symbol.dispose]: () => socket.close() });
  const addr = udp.addr as Deno.NetAddr;
  const before = getReceiveBuffer(addr);
  assert.equal(await ssBuffer(addr), before);
  const got = setReceiveBuffer(addr, 4 * MiB);
  const expected = privileged() ? 4 * MiB : Math.min(4 * MiB, 2 * await rmemMax());
  assert.equal(got.bytes, expected);
  assert.equal(got.asked, 4 * MiB);
  assert.equal(got.forced, privileged());
  assert.equal(await ssBuffer(addr), expected);
  assert.equal(getReceiveBuffer(addr), expected);
});

Deno.test("without SO_RCVBUFFORCE the kernel caps the buffer at twice net.core.rmem_max, and it says so", async () => {
  const max = await rmemMax();
  const asked = Math.min(MAX_RECEIVE_BUFFER, 4 * max);
  if (2 * max >= asked) return; // rmem_max is too large to meet here.
  using udp = udpSocket("127.0.0.1");
  const addr = udp.addr as Deno.NetAddr;
  const got = setReceiveBuffer(addr, asked, { force: false });
  assert.deepEqual(
    { bytes: got.bytes, forced: got.forced, rmemMax: got.rmemMax },
    { bytes: 2 * max, forced: false, rmemMax: max },
  );
  assert.equal(await ssBuffer(addr), 2 * max);
});

Deno.test("an IPv6 socket is found by its address", async (t) => {
  let udp: Deno.DatagramConn;
  try {
    udp = udpSocket("::1");
  } catch (err) {
    // A machine without IPv6; a missing permission is a failure.
    if (!(err instanceof Deno.errors.AddrNotAvailable)) throw err;
    await t.step({ name: "no IPv6 loopback here", ignore: true, fn: () => {} });
    return;
  }
  try {
    const addr = udp.addr as Deno.NetAddr;
    const expected = privileged() ? MiB : Math.min(MiB, 2 * await rmemMax());
    assert.equal(setReceiveBuffer(addr, MiB).bytes, expected);
    assert.equal(await ssBuffer(addr), expected);
    assert.equal(
      getReceiveBuffer({ ...addr, hostname: "0:0:0:0:0:0:0:1" }),
      getReceiveBuffer(addr),
    );
  } finally {
    udp.close();
  }
});

Deno.test("an address no socket of this process is bound to is an error that says so", () => {
  using udp = udpSocket("127.0.0.1");
  const port = (udp.addr as Deno.NetAddr).port;
  const elsewhere: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.2", port };
  assert.throws(
    () => setReceiveBuffer(elsewhere, MiB),
    (err) =>
      err instanceof ReceiveBufferError && err.reason === "failed" &&
      err.message.includes(`127.0.0.2:${port}`),
  );
});

Deno.test({
  name: "without --allow-ffi it says which permission it needs, without asking for it",
  permissions: { ffi: false },
  fn() {
    const addr: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 5140 };
    assert.equal(receiveBufferUnavailable()?.reason, "permission");
    assert.throws(
      () => setReceiveBuffer(addr, MiB),
      (err) =>
        err instanceof ReceiveBufferError && err.reason === "permission" &&
        err.message.includes("--allow-ffi"),
    );
  },
});

Deno.test("a size past what the kernel keeps is refused before any call", () => {
  const addr: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 5140 };
  assert.throws(() => setReceiveBuffer(addr, MAX_RECEIVE_BUFFER + 1), RangeError);
  assert.throws(() => setReceiveBuffer(addr, MIN_RECEIVE_BUFFER - 1), RangeError);
});
