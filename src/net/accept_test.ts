import assert from "node:assert/strict";
import { acceptLoop, type Acceptor, ConnectionGate } from "./accept.ts";

/** An error as Deno's ops throw them: a class and an errno-style code. */
function osError(code: string): Error {
  const err = code === "ECONNABORTED"
    ? new Deno.errors.ConnectionAborted("Software caused connection abort (os error 103)")
    : new Error(`${code} (os error)`);
  Object.assign(err, { code });
  return err;
}

/** A connection stand-in: only close() is called on it here. */
function fakeConn(id: number): Deno.Conn & { id: number; closed: boolean } {
  const conn = {
    id,
    closed: false,
    close() {
      conn.closed = true;
    },
  };
  return conn as unknown as Deno.Conn & { id: number; closed: boolean };
}

/** Accepts from a script of results, then reports the listener closed. */
function scripted(results: (Error | Deno.Conn)[]): Acceptor {
  let i = 0;
  return {
    accept() {
      const next = results[i++];
      if (next === undefined) return Promise.reject(new Deno.errors.BadResource("closed"));
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
  };
}

Deno.test("connections reset before accept are counted and never delay the next client", async () => {
  const resets = Array.from({ length: 30 }, (_, i) => osError(i % 2 ? "ECONNABORTED" : "ENOTCONN"));
  const good = fakeConn(1);
  const gate = new ConnectionGate(10);
  const served: Deno.Conn[] = [];
  const sleeps: number[] = [];
  await acceptLoop(scripted([...resets, good]), {
    gate,
    transport: "tcp",
    serve: (conn) => served.push(conn),
    stopped: () => false,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
  });
  assert.deepEqual(served, [good]);
  // The old loop slept 100 ms after each of these: 3 s before the good client was served.
  assert.deepEqual(sleeps, []);
  assert.deepEqual(gate.stats.acceptErrors, { ENOTCONN: 15, ECONNABORTED: 15 });
  assert.equal(gate.open, 1);
});

Deno.test("out of descriptors, accepting backs off briefly, or until a connection closes", async () => {
  const gate = new ConnectionGate(10);
  assert.ok(gate.tryEnter("http"));
  const sleeps: number[] = [];
  const pending: (() => void)[] = [];
  const served: Deno.Conn[] = [];
  const good = fakeConn(2);
  const loop = acceptLoop(
    scripted([osError("EMFILE"), osError("EMFILE"), osError("ENFILE"), good]),
    {
      gate,
      transport: "tcp",
      serve: (conn) => served.push(conn),
      stopped: () => false,
      sleep: (ms) => {
        sleeps.push(ms);
        return new Promise((resolve) => pending.push(resolve));
      },
    },
  );
  // Backoffs: the first ends by its timer, the second because a connection closed.
  await waitFor(() => pending.length === 1);
  pending[0]();
  await waitFor(() => pending.length === 2);
  gate.leave("http");
  await waitFor(() => pending.length === 3);
  pending[2]();
  await loop;
  assert.deepEqual(sleeps, [10, 20, 40]);
  assert.deepEqual(served, [good]);
  assert.deepEqual(gate.stats.acceptErrors, { EMFILE: 2, ENFILE: 1 });
});

Deno.test("past the cap a connection is refused at once and counted, over every transport", async () => {
  const gate = new ConnectionGate(2);
  assert.ok(gate.tryEnter("tcp"));
  const conns = [fakeConn(1), fakeConn(2), fakeConn(3)];
  const served: Deno.Conn[] = [];
  const refused: Deno.Conn[] = [];
  await acceptLoop(scripted(conns), {
    gate,
    transport: "http",
    serve: (conn) => served.push(conn),
    refuse: (conn) => {
      refused.push(conn);
      conn.close();
    },
    stopped: () => false,
  });
  assert.deepEqual(served, [conns[0]]);
  assert.deepEqual(refused, [conns[1], conns[2]]);
  assert.ok(conns[1].closed && conns[2].closed && !conns[0].closed);
  assert.deepEqual(gate.stats.refused, { http: 2 });
  assert.deepEqual(gate.stats.open, { tcp: 1, http: 1 });
  gate.leave("tcp");
  assert.ok(gate.tryEnter("http"));
  assert.deepEqual(gate.stats.open, { tcp: 0, http: 2 });
});

Deno.test("a connection accepted while stopping is closed, not served", async () => {
  let stopping = false;
  const conn = fakeConn(1);
  const served: Deno.Conn[] = [];
  const gate = new ConnectionGate(5);
  await acceptLoop({
    accept() {
      stopping = true;
      return Promise.resolve(conn);
    },
  }, { gate, transport: "tcp", serve: (c) => served.push(c), stopped: () => stopping });
  assert.deepEqual(served, []);
  assert.ok(conn.closed);
  assert.equal(gate.open, 0);
});

Deno.test("the gate refuses a limit that is not a whole number above 0", () => {
  assert.throws(() => new ConnectionGate(0), RangeError);
  assert.throws(() => new ConnectionGate(1.5), RangeError);
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await Promise.resolve();
  assert.ok(condition(), "condition never held");
}
