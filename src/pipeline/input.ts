/**
 * The contract every input (TCP lines, HTTP ingest, watched files, later syslog and UDP) fulfils
 * once it is running, beside {@linkcode Sink}'s for destinations: a name, counters, and a close
 * that stores what the input already took before it resolves.
 *
 * It lives in `pipeline/`, not `config/`, because it is the core's contract, like `sink.ts`:
 * inputs implement it without knowing how they are configured, and `config/` only builds them.
 *
 * @module
 */

/** Options of {@linkcode Input.close}. */
export interface InputCloseOptions {
  /**
   * When it aborts, the input stops waiting for its clients and its lines to settle and the close
   * rejects with its reason. Without it the input takes the time it needs (bounded by the input:
   * TCP drains for at most 2 s).
   */
  signal?: AbortSignal;
}

/** A running input: takes lines from somewhere and writes them, as batches, to a sink. */
export interface Input {
  /** The input's name in the config, e.g. `tcp`; unique among inputs. */
  readonly name: string;
  /** The component it was built from, e.g. `tcp`, `http`, `watch`. */
  readonly type: string;
  /**
   * Where it listens, as a URL for the startup line (`tcp://0.0.0.0:8080`), with the port
   * actually bound; `undefined` for inputs that do not listen (watched files).
   */
  readonly address?: string;
  /** Counters of the moment, by name: open connections, files followed. */
  stats(): Record<string, number>;
  /**
   * Stops taking new lines, writes what was taken to the sink, then releases sockets and files.
   * Lines already accepted are never dropped by a close: they are in the sink when it resolves.
   */
  close(options?: InputCloseOptions): Promise<void>;
}

/**
 * `work`, or a rejection with the signal's reason once `signal` aborts first (the work goes on
 * unwatched): how an input bounds a close it cannot interrupt.
 */
export function untilAborted<T>(work: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return work;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
