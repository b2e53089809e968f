import assert from "node:assert/strict";
import { findSsSocket, findUdpSocket, procLocalAddress, UdpDropWatch } from "./udp_drops.ts";

const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

Deno.test("procLocalAddress writes addresses as /proc/net/udp does", () => {
  if (!LE) return; // the table's words are in the machine's byte order: the cases are x86's
  assert.equal(procLocalAddress("127.0.0.1", 9999), "0100007F:270F");
  assert.equal(procLocalAddress("0.0.0.0", 514), "00000000:0202");
  assert.equal(procLocalAddress("::", 514), "00000000000000000000000000000000:0202");
  assert.equal(procLocalAddress("::1", 514), "00000000000000000000000001000000:0202");
  assert.equal(procLocalAddress("[::1]", 514), "00000000000000000000000001000000:0202");
  assert.equal(
    procLocalAddress("::ffff:127.0.0.1", 80),
    "0000000000000000FFFF00000100007F:0050",
  );
  assert.equal(procLocalAddress("fe80::1:2", 80), "000080FE000000000000000002000100:0050");
  for (const bad of ["localhost", "1.2.3.256", "1::2::3", "1:2:3", "::g"]) {
    assert.equal(procLocalAddress(bad, 80), undefined, bad);
  }
});

const TABLE =
  "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
  "  121: 0100007F:270F 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 91 2 0000000000000000 0\n" +
  "  122: 00000000:270F 00000000:0000 07 00000000:0002A300 00:00000000 00000000     0        0 92 2 0000000000000000 1234\n";

Deno.test("findUdpSocket reads the drops and queued bytes of the socket at that address", () => {
  assert.deepEqual(findUdpSocket(TABLE, "00000000:270F"), { drops: 1234, queuedBytes: 0x2a300 });
  assert.deepEqual(findUdpSocket(TABLE, "0100007F:270F"), { drops: 0, queuedBytes: 0 });
  // Neither a remote address nor another port matches.
  assert.equal(findUdpSocket(TABLE, "00000000:0000"), undefined);
  assert.equal(findUdpSocket(TABLE, "0100007F:0202"), undefined);
  assert.equal(findUdpSocket("", "0100007F:0202"), undefined);
});

const SS = "UNCONN 212480 0      127.0.0.1:23458 0.0.0.0:*\n" +
  "\t skmem:(r212480,rb212992,t0,tb212992,f512,w0,o0,bl0,d2834)\n" +
  "UNCONN 0 0 0.0.0.0:23458 0.0.0.0:* skmem:(r0,rb425984,t0,tb212992,f0,w0,o0,bl0,d7)\n" +
  "UNCONN 0 0 [::]:23458 [::]:* \n\t skmem:(r1,rb2,t0,tb212992,f0,w0,o0,bl0,d3)\n";

Deno.test("findSsSocket reads drops, queued bytes and the buffer's size from ss -m", () => {
  assert.deepEqual(findSsSocket(SS, "127.0.0.1"), {
    drops: 2834,
    queuedBytes: 212480,
    bufferBytes: 212992,
  });
  assert.deepEqual(findSsSocket(SS, "0.0.0.0"), { drops: 7, queuedBytes: 0, bufferBytes: 425984 });
  assert.deepEqual(findSsSocket(SS, "::"), { drops: 3, queuedBytes: 1, bufferBytes: 2 });
  assert.equal(findSsSocket(SS, "10.0.0.1"), undefined);
  assert.equal(findSsSocket("", "127.0.0.1"), undefined);
});

Deno.test("UdpDropWatch reads from the first source that works and says once when none does", async () => {
  const addr: Deno.NetAddr = { hostname: "0.0.0.0", port: 9999, transport: "udp" };
  let table = TABLE;
  const said: string[] = [];
  const watch = new UdpDropWatch(addr, {
    everyMs: 60_000,
    sources: [
      { name: "denied", read: () => Promise.reject(new Error("NotCapable")) },
      {
        name: "table",
        read: () =>
          table === ""
            ? Promise.reject(new Error("gone"))
            : Promise.resolve(findUdpSocket(table, "00000000:270F")),
      },
    ],
    unavailable: (reason) => said.push(reason),
  });
  await watch.refresh();
  assert.equal(watch.source, "table");
  assert.deepEqual(watch.counters, { drops: 1234, queuedBytes: 0x2a300 });
  // A failed read later keeps the last counters.
  table = "";
  await watch.refresh();
  assert.equal(watch.counters?.drops, 1234);
  await watch.close();
  assert.equal(said.length, 0);

  const none = new UdpDropWatch(addr, {
    sources: [{ name: "denied", read: () => Promise.reject(new Error("NotCapable")) }],
    unavailable: (reason) => said.push(reason),
  });
  await none.refresh();
  await none.refresh();
  assert.deepEqual(said, ["denied: NotCapable"]);
  assert.equal(none.counters, undefined);
  await none.close();
});
