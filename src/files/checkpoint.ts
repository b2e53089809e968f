/**
 * The agent's checkpoints: for every file stream, how far the server acknowledged it, and the
 * batches sent past that point. One JSON file in the state folder, rewritten whole and atomically
 * (temporary file, fsync, rename, fsync of the folder), so a crash at any instant leaves either the
 * previous state or the new one, never a torn one.
 *
 * Why the batches past the checkpoint are kept too: the server refuses a batch whose end offset is
 * at or below the stream's high-water mark, but stores a batch that straddles the mark whole. A
 * batch is therefore planned here (its end offset written down) before it is sent, and after a
 * crash the agent resends from the checkpoint with exactly the planned boundaries, so each resent
 * batch is either wholly refused as a duplicate or wholly new: every line exactly once.
 *
 * Plans go to a journal (`plans-0.jsonl`, `plans-1.jsonl`): one appended line per batch, the
 * stream's whole record, written before the batch is sent but not fsynced, so the send never
 * waits for the disk (a file's page cache survives the agent's crash; an fsync behind a server
 * writing 100 MB/s to the same disk can take a tenth of a second). The snapshot
 * (`checkpoints.json`) is written atomically and fsynced after acknowledgements, at most every
 * `snapshotEveryMs`; each snapshot records the journal sequence it covers, and starting a snapshot
 * switches the journal to the other file, emptying it (its lines are covered by the previous,
 * durable snapshot). Loading applies the journal lines newer than the snapshot. A journal is only
 * emptied when the last durable snapshot covers every line in it: after a failed snapshot the
 * journal stays where it is until a snapshot succeeds.
 *
 * A snapshot that cannot be written (disk full, permissions) is reported and retried with backoff
 * until it succeeds; meanwhile {@linkcode CheckpointStore.writable} holds shipping back, so no
 * batch is sent past a checkpoint that could not be written.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { join } from "node:path";
import { describe } from "../_util.ts";
import { type Clock, pause, SYSTEM_CLOCK } from "../clock.ts";

/** A batch sent (or about to be) past the checkpoint, not yet acknowledged. */
export interface PlannedBatch {
  /** The stream offset the batch ends at. */
  end: number;
  /** The tail fingerprint at `end`. */
  tail: string;
  /** Index of the server it goes to (in the config's order); -1 when not chosen yet. */
  server: number;
  /** Whether the batch ends with a last line that had no newline (the file was let go). */
  final?: boolean;
}

/** What the agent knows of one file stream. */
export interface StreamRecord {
  /** The stream id sent as `X-Stream-Id`: unique for every stream the agent ever read. */
  stream: string;
  /** The path the file was last seen at. */
  path: string;
  /** Device of the file holding the stream. */
  dev: number;
  /** Inode of the file holding the stream. */
  ino: number;
  /** Fingerprint of the first `headLen` bytes. */
  head: string;
  /** How many bytes `head` covers (up to 1 KiB, grown as the file grows). */
  headLen: number;
  /** Acknowledged offset: every byte before it is stored by a server. */
  offset: number;
  /** Fingerprint of the bytes just before `offset`. */
  tail: string;
  /** The file's size when last seen. */
  size: number;
  /** The file's modification time when last seen, in ms. */
  mtime: number;
  /** Batches past `offset`, in order. */
  planned: PlannedBatch[];
  /** When the file was last found, in ms since the epoch. */
  seen: number;
  /** Whether the content no longer lives at `dev`/`ino` (truncated or replaced): kept to find a copy. */
  orphan?: boolean;
}

/** The checkpoints of one input. */
export interface InputState {
  /** Stream records by stream id. */
  readonly records: Map<string, StreamRecord>;
  /** Whether the input had checkpoints before this run (so `start_at` no longer applies). */
  readonly known: boolean;
}

/** The state folder is in use by another agent. */
export class StateLockedError extends Error {
  /** @param dir the state folder. */
  constructor(dir: string) {
    super(`State folder "${dir}" is in use by another agent`);
    this.name = "StateLockedError";
  }
}

/** The checkpoint file's name in the state folder. */
export const CHECKPOINT_FILE = "checkpoints.json";

interface StateFile {
  version: 1;
  agent: string;
  server: number;
  /** The last journal sequence the snapshot covers. */
  seq?: number;
  inputs: Record<string, StreamRecord[]>;
}

/** One journal line: an input's stream record as it was when a batch was planned. */
interface JournalLine {
  q: number;
  i: string;
  r: StreamRecord;
}

const JOURNALS = ["plans-0.jsonl", "plans-1.jsonl"];

const encoder = new TextEncoder();
const log = getLogger(["logboom", "files", "checkpoints"]);
/** First and longest wait before a failed snapshot is tried again, in ms. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5000;
/** A failing streak is reported again at most this often, in ms. */
const REPORT_EVERY_MS = 30_000;

/**
 * Checkpoints in memory, written to the state folder on {@linkcode CheckpointStore.persist}.
 *
 * @example
 * ```ts
 * const store = await CheckpointStore.open("/var/lib/logboom-agent");
 * const { records } = store.input("nginx");
 * records.get(id)!.planned.push({ end, tail, server: -1 });
 * await store.persist(); // durable once it resolves
 * store.schedule(); // or: written soon, failures reported and retried by the store
 * ```
 */
export class CheckpointStore {
  /** The state folder, or `undefined` for checkpoints kept in memory only. */
  readonly dir: string | undefined;
  /** The agent's id, kept across runs. */
  readonly agentId: string;
  /** The server the agent last preferred (an index into the config's list). */
  server = 0;
  readonly #inputs = new Map<string, InputState>();
  readonly #lock: Deno.FsFile | undefined;
  #writing: Promise<void> | undefined;
  /** Journal sequence: the last line appended. */
  #seq = 0;
  #journal: Deno.FsFile | undefined;
  #journalIndex = 0;
  /** Journal appends under way, so a switch waits for them. */
  #appending = Promise.resolve();
  /** The newest journal line in each journal file. */
  readonly #journalMax = [0, 0];
  /** The journal sequence the last durable snapshot covers. */
  #durableSeq = 0;
  #lastSnapshot = 0;
  readonly #snapshotEveryMs: number;
  readonly #clock: Clock;
  #waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  /** A snapshot was asked for with {@linkcode schedule} and not written yet. */
  #dirty = false;
  /** Failed snapshots in a row (0: the last one was written). */
  #failing = 0;
  #lastReport = 0;
  /** Shippers waiting for a snapshot to succeed again. */
  readonly #writableWaiters = new Set<() => void>();
  /** Cancels the wait before the next try. */
  readonly #closing = new AbortController();
  #closed = false;
  /** Writes done, for tests and metrics. */
  writes = 0;
  /** Snapshots that could not be written (each is retried), for tests and metrics. */
  failures = 0;

  private constructor(
    dir: string | undefined,
    agentId: string,
    lock: Deno.FsFile | undefined,
    saved: StateFile | undefined,
    options: { journals?: JournalLine[][]; snapshotEveryMs?: number; clock?: Clock } = {},
  ) {
    this.dir = dir;
    this.agentId = agentId;
    this.#lock = lock;
    this.#snapshotEveryMs = options.snapshotEveryMs ?? 200;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    if (saved !== undefined) {
      this.server = Number.isSafeInteger(saved.server) ? saved.server : 0;
      this.#seq = Number.isSafeInteger(saved.seq) ? saved.seq! : 0;
      for (const [name, records] of Object.entries(saved.inputs ?? {})) {
        const map = new Map<string, StreamRecord>();
        for (const record of records) if (isRecord(record)) map.set(record.stream, record);
        this.#inputs.set(name, { records: map, known: true });
      }
    }
    const snapshotSeq = this.#seq;
    this.#durableSeq = snapshotSeq;
    const journals = options.journals ?? [];
    journals.forEach((lines, i) => {
      for (const line of lines) this.#journalMax[i] = Math.max(this.#journalMax[i], line.q);
    });
    const lines = journals.flat().filter((l) => l.q > snapshotSeq).sort((a, b) => a.q - b.q);
    for (const line of lines) this.#apply(line);
    for (const line of lines) this.#seq = Math.max(this.#seq, line.q);
  }

  /** Applies a journal line: the record as planned, its plans merged with those known. */
  #apply(line: JournalLine): void {
    let state = this.#inputs.get(line.i);
    if (state === undefined) {
      state = { records: new Map(), known: true };
      this.#inputs.set(line.i, state);
    }
    const known = state.records.get(line.r.stream);
    const record: StreamRecord = { ...line.r, planned: [...line.r.planned] };
    if (known !== undefined && known.offset > record.offset) {
      record.offset = known.offset;
      record.tail = known.tail;
    }
    const ends = new Map<number, PlannedBatch>();
    for (const plan of [...(known?.planned ?? []), ...record.planned]) {
      if (plan.end > record.offset) ends.set(plan.end, plan);
    }
    record.planned = [...ends.values()].sort((a, b) => a.end - b.end);
    state.records.set(record.stream, record);
  }

  /** Checkpoints that last as long as the process (`serve -watch`). */
  static memory(agentId = "local"): CheckpointStore {
    return new CheckpointStore(undefined, agentId, undefined, undefined);
  }

  /**
   * Opens the state folder (creating it), locks it against a second agent, and loads the
   * checkpoints. `agentId` is used when given; otherwise the saved one, or a new one made from
   * `host` and random letters. `clock`: time for the snapshots' spacing and retries (tests).
   *
   * @throws {StateLockedError} when another agent holds the folder.
   */
  static async open(
    dir: string,
    options: { agentId?: string; host?: string; snapshotEveryMs?: number; clock?: Clock } = {},
  ): Promise<CheckpointStore> {
    await Deno.mkdir(dir, { recursive: true });
    const lock = await Deno.open(join(dir, "lock"), { read: true, write: true, create: true });
    try {
      if (!(await lock.tryLock(true))) throw new StateLockedError(dir);
      let saved: StateFile | undefined;
      try {
        saved = JSON.parse(await Deno.readTextFile(join(dir, CHECKPOINT_FILE)));
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) {
          throw new Error(
            `Checkpoints in "${join(dir, CHECKPOINT_FILE)}" cannot be read: ${describe(err)}`,
          );
        }
      }
      const journals: JournalLine[][] = [];
      for (const name of JOURNALS) {
        const journal: JournalLine[] = [];
        let text = "";
        try {
          text = await Deno.readTextFile(join(dir, name));
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
        }
        for (const line of text.split("\n")) {
          // A line torn by a crash mid-append is skipped: its batch was not sent yet.
          const parsed = parseJournalLine(line);
          if (parsed !== undefined) journal.push(parsed);
        }
        journals.push(journal);
      }
      const host = (options.host ?? "agent").replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 40);
      const agentId = options.agentId ?? saved?.agent ??
        `${host}-${crypto.randomUUID().slice(0, 8)}`;
      const store = new CheckpointStore(dir, agentId, lock, saved, {
        journals,
        snapshotEveryMs: options.snapshotEveryMs,
        clock: options.clock,
      });
      // What the journals hold is in memory now: a first snapshot covers it, then both start empty.
      try {
        await store.#write();
      } catch (err) {
        throw new Error(`Checkpoints in "${dir}" cannot be written: ${describe(err)}`);
      }
      return store;
    } catch (err) {
      lock.close();
      throw err;
    }
  }

  /** The checkpoints of input `name` (created empty, as not known, when it has none). */
  input(name: string): InputState {
    let state = this.#inputs.get(name);
    if (state === undefined) {
      state = { records: new Map(), known: false };
      this.#inputs.set(name, state);
    }
    return state;
  }

  /** Names of the inputs that have checkpoints. */
  inputNames(): string[] {
    return [...this.#inputs.keys()];
  }

  /** Forgets an input's checkpoints. */
  dropInput(name: string): void {
    this.#inputs.delete(name);
  }

  /**
   * Writes `record` (of input `input`) to the journal, as it is now with its plans: call it after
   * planning a batch and before sending it. Resolves once the line is written (not fsynced).
   */
  journal(input: string, record: StreamRecord): Promise<void> {
    if (this.dir === undefined) return Promise.resolve();
    if (this.#closed) return Promise.reject(new Error("Checkpoints are closed"));
    const seq = ++this.#seq;
    const line: JournalLine = { q: seq, i: input, r: record };
    const bytes = encoder.encode(JSON.stringify(line) + "\n");
    const append = this.#appending.then(async () => {
      const index = this.#journalIndex;
      this.#journal ??= await Deno.open(join(this.dir!, JOURNALS[index]), {
        append: true,
        create: true,
      });
      // Counted before the write: a line written in part is still a line the file may hold.
      this.#journalMax[index] = Math.max(this.#journalMax[index], seq);
      let at = 0;
      while (at < bytes.length) at += await this.#journal.write(bytes.subarray(at));
    });
    this.#appending = append.catch(() => {});
    return append;
  }

  /**
   * Writes the state as it is now (a snapshot, fsynced). Resolves once a write that began after
   * this call is durable; calls made while a write runs share the next one (group commit), and
   * snapshots are at least `snapshotEveryMs` apart. A write that fails is reported and tried
   * again until one succeeds; the promise rejects only when the store is closed first.
   */
  persist(): Promise<void> {
    if (this.dir === undefined) return Promise.resolve();
    if (this.#closed) return Promise.reject(new Error("Checkpoints are closed"));
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#writing ??= this.#drain();
    return done;
  }

  /**
   * Asks for a snapshot soon, without waiting for it: failures are reported and retried by the
   * store ({@linkcode writable} tells shippers to wait meanwhile).
   */
  schedule(): void {
    if (this.dir === undefined || this.#closed) return;
    this.#dirty = true;
    this.#writing ??= this.#drain();
  }

  /** Whether the last snapshot failed (it is being retried). */
  get failing(): boolean {
    return this.#failing > 0;
  }

  /**
   * Resolves at once while snapshots are written; after a failed one, once a retry succeeds (or
   * the store closes). Rejects when `signal` aborts first.
   */
  writable(signal?: AbortSignal): Promise<void> {
    if (this.#failing === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const done = () => {
        this.#writableWaiters.delete(done);
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        this.#writableWaiters.delete(done);
        reject(signal!.reason);
      };
      this.#writableWaiters.add(done);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Writes the state a last time and releases the folder.
   *
   * @throws the file system's error when that last snapshot cannot be written (the journal still
   * holds every plan made).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closing.abort();
    await this.#writing;
    const waiters = this.#waiters.splice(0);
    try {
      if (this.dir !== undefined) await this.#write();
      for (const waiter of waiters) waiter.resolve();
    } catch (err) {
      for (const waiter of waiters) waiter.reject(err);
      throw err;
    } finally {
      this.#closed = true;
      this.#wakeWritable();
      await this.#appending;
      this.#journal?.close();
      this.#journal = undefined;
      this.#lock?.close();
    }
  }

  async #drain(): Promise<void> {
    // A write already under way may have serialized the state before the caller's change, so
    // waiters that came during it wait for the next write.
    while ((this.#waiters.length > 0 || this.#dirty) && !this.#closing.signal.aborted) {
      const gap = this.#lastSnapshot + this.#snapshotEveryMs - this.#clock.now();
      if (gap > 0 && !(await this.#pause(gap))) break;
      const waiters = this.#waiters;
      this.#waiters = [];
      this.#dirty = false;
      try {
        await this.#write();
      } catch (err) {
        // Kept waiting: the next try writes their changes too.
        this.#waiters.unshift(...waiters);
        this.#dirty = true;
        this.#failed(err);
        const backoff = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (this.#failing - 1));
        if (!(await this.#pause(backoff))) break;
        continue;
      }
      if (this.#failing > 0) {
        log.info("Checkpoints written again after {failures} failed attempts", {
          failures: this.#failing,
        });
        this.#failing = 0;
        this.#wakeWritable();
      }
      for (const waiter of waiters) waiter.resolve();
    }
    this.#writing = undefined;
  }

  #failed(err: unknown): void {
    this.failures++;
    this.#failing++;
    const now = this.#clock.now();
    if (this.#failing === 1 || now - this.#lastReport >= REPORT_EVERY_MS) {
      this.#lastReport = now;
      log.error(
        "Cannot write checkpoints in {dir} ({failures} attempts so far): {error}; shipping " +
          "waits and the write is retried",
        { dir: this.dir, failures: this.#failing, error: describe(err) },
      );
    }
  }

  /** Waits `ms`; `false` when the store is closing. */
  async #pause(ms: number): Promise<boolean> {
    const signal = this.#closing.signal;
    if (signal.aborted) return false;
    await pause(this.#clock, ms, signal);
    return !signal.aborted;
  }

  #wakeWritable(): void {
    for (const wake of [...this.#writableWaiters]) wake();
  }

  async #write(): Promise<void> {
    const dir = this.dir!;
    this.#lastSnapshot = this.#clock.now();
    let bytes = new Uint8Array(0);
    // In the journal's queue, so no append runs meanwhile: lines up to the sequence serialized
    // here are in the old journal, later ones go to the other, emptied first (the previous
    // snapshot, durable before this one started, covers every line in it).
    let seq = 0;
    const switched = this.#appending.then(async () => {
      const inputs: Record<string, StreamRecord[]> = {};
      for (const [name, state] of this.#inputs) inputs[name] = [...state.records.values()];
      seq = this.#seq;
      const file: StateFile = { version: 1, agent: this.agentId, server: this.server, seq, inputs };
      bytes = encoder.encode(JSON.stringify(file));
      const other = 1 - this.#journalIndex;
      // The other journal may only be emptied when a durable snapshot covers all of it: after a
      // failed snapshot it holds the only copy of its plans, so appends stay where they are.
      if (this.#journalMax[other] > this.#durableSeq) return;
      this.#journal?.close();
      this.#journal = undefined;
      this.#journalIndex = other;
      await Deno.writeFile(join(dir, JOURNALS[other]), new Uint8Array(0));
      this.#journalMax[other] = 0;
    });
    this.#appending = switched.catch(() => {});
    await switched;
    const temporary = join(dir, `${CHECKPOINT_FILE}.tmp`);
    {
      using out = await Deno.open(temporary, { write: true, create: true, truncate: true });
      let at = 0;
      while (at < bytes.length) at += await out.write(bytes.subarray(at));
      await out.syncData();
    }
    await Deno.rename(temporary, join(dir, CHECKPOINT_FILE));
    try {
      using folder = await Deno.open(dir, { read: true });
      await folder.sync();
    } catch {
      // Some file systems refuse to fsync a folder; the rename is still atomic.
    }
    this.#durableSeq = Math.max(this.#durableSeq, seq);
    this.writes++;
  }
}

function parseJournalLine(text: string): JournalLine | undefined {
  if (text === "") return undefined;
  try {
    const line = JSON.parse(text) as JournalLine;
    if (Number.isSafeInteger(line.q) && typeof line.i === "string" && isRecord(line.r)) return line;
  } catch {
    // Torn.
  }
  return undefined;
}

function isRecord(value: unknown): value is StreamRecord {
  const r = value as StreamRecord;
  return typeof r === "object" && r !== null && typeof r.stream === "string" &&
    typeof r.path === "string" && Number.isSafeInteger(r.offset) && Array.isArray(r.planned);
}
