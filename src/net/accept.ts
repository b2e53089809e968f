/**
 * The accept loop both the TCP input and the HTTP server run, and the gate that caps their
 * connections together.
 *
 * - A connection reset before it was accepted (`ECONNABORTED`, `ENOTCONN`, `ECONNRESET`) is
 *   counted and the loop goes on at once: clients behind it are never delayed.
 * - Running out of file descriptors (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) is counted, and the
 *   loop waits until a connection closes or a short backoff (10 ms, doubling up to 1 s) passes;
 *   the waiting connections stay in the kernel's backlog.
 * - Past {@linkcode ConnectionGate.max}, a new connection is accepted and closed at once (the
 *   caller may first write a short refusal, e.g. an HTTP 503), and counted as refused.
 *
 * @module
 */

/** Connection counters of one process, for `/metrics`. */
export interface NetStats {
  /** Open connections, by transport. */
  readonly open: Record<string, number>;
  /** Connections accepted, by transport. */
  readonly accepted: Record<string, number>;
  /** Connections closed at once because {@linkcode ConnectionGate.max} were open, by transport. */
  readonly refused: Record<string, number>;
  /** Connections closed by a timeout, by phase (`idle`, `header`, `body`, `send`). */
  readonly timedOut: Record<string, number>;
  /** Failed accepts, by error code (`EMFILE`, `ECONNABORTED`, ...). */
  readonly acceptErrors: Record<string, number>;
}

/**
 * Caps the connections open at once over every listener that shares it.
 *
 * @example
 * ```ts
 * const gate = new ConnectionGate(4096);
 * if (gate.tryEnter("tcp")) {
 *   // ... serve, then:
 *   gate.leave("tcp");
 * }
 * ```
 */
export class ConnectionGate {
  /**
   * Most connections open at once. A config reload may set it: a lower cap closes nothing, it
   * refuses new connections until enough have closed.
   */
  max: number;
  /** Counters (a live object: read, do not keep). */
  readonly stats: NetStats = {
    open: {},
    accepted: {},
    refused: {},
    timedOut: {},
    acceptErrors: {},
  };
  #open = 0;
  #waiters: (() => void)[] = [];

  /** @param max most connections open at once, at least 1. */
  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`The connection limit must be a whole number above 0, got "${max}"`);
    }
    this.max = max;
  }

  /** Connections open now, over every transport. */
  get open(): number {
    return this.#open;
  }

  /** Takes a slot for a new connection; `false` (counted as refused) when all are taken. */
  tryEnter(transport: string): boolean {
    if (this.#open >= this.max) {
      count(this.stats.refused, transport);
      return false;
    }
    this.#open++;
    count(this.stats.open, transport);
    count(this.stats.accepted, transport);
    return true;
  }

  /** Gives a slot back. */
  leave(transport: string): void {
    this.#open--;
    this.stats.open[transport]--;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves when a connection next closes. */
  whenLeft(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Counts a connection closed by a timeout in `phase`. */
  timedOut(phase: string): void {
    count(this.stats.timedOut, phase);
  }

  /** Counts a failed accept. */
  acceptFailed(code: string): void {
    count(this.stats.acceptErrors, code);
  }
}

/** What accepts connections: a `Deno.Listener`, or a fake in tests. */
export interface Acceptor {
  /** The next connection. */
  accept(): Promise<Deno.Conn>;
}

/** Options of {@linkcode acceptLoop}. */
export interface AcceptLoopOptions {
  /** The cap shared with the other listeners. */
  gate: ConnectionGate;
  /** The transport, as counted: `tcp` or `http`. */
  transport: string;
  /** Takes an accepted connection that holds a slot; the slot is its to give back. */
  serve: (conn: Deno.Conn) => void;
  /**
   * Closes a connection refused at the cap; may first write a short refusal. Default: close.
   * Must not throw.
   */
  refuse?: (conn: Deno.Conn) => void;
  /** Called once per failed accept, with the error's code (for a log line). */
  failed?: (code: string, err: unknown) => void;
  /** Whether the loop should stop: checked after each accept. */
  stopped: () => boolean;
  /** Waits `ms`. Default `setTimeout`; tests inject a fake. */
  sleep?: (ms: number) => Promise<void>;
}

/** Accept errors that mean the process is out of descriptors or buffers: back off. */
const PRESSURE = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);
const MIN_BACKOFF_MS = 10;
const MAX_BACKOFF_MS = 1000;

/**
 * Accepts connections until the listener closes (or `stopped()` says so). Resolves then; never
 * rejects for an accept error.
 */
export async function acceptLoop(acceptor: Acceptor, options: AcceptLoopOptions): Promise<void> {
  const { gate, transport, serve, refuse = closeQuietly, failed, stopped } = options;
  const sleep = options.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  let backoff = MIN_BACKOFF_MS;
  while (!stopped()) {
    let conn: Deno.Conn;
    try {
      conn = await acceptor.accept();
    } catch (err) {
      if (stopped() || err instanceof Deno.errors.BadResource) return;
      if (err instanceof Deno.errors.Interrupted) return;
      const code = errorCode(err);
      gate.acceptFailed(code);
      failed?.(code, err);
      if (PRESSURE.has(code)) {
        // Out of descriptors: accepting again at once would fail again. A closing connection
        // frees one; the backoff covers descriptors freed elsewhere (a file closed).
        await Promise.race([gate.whenLeft(), sleep(backoff)]);
        backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
      }
      continue;
    }
    backoff = MIN_BACKOFF_MS;
    if (stopped()) {
      closeQuietly(conn);
      return;
    }
    if (!gate.tryEnter(transport)) {
      refuse(conn);
      continue;
    }
    serve(conn);
  }
}

/** The `code` of an error from a Deno op (`EMFILE`, `ECONNABORTED`, ...), or its class name. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && /^[A-Z0-9_]{1,32}$/.test(code)) return code;
  return err instanceof Error ? err.name : "unknown";
}

/** Closes a connection that may be closed already. */
export function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

function count(counters: Record<string, number>, key: string): void {
  counters[key] = (counters[key] ?? 0) + 1;
}
