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
 * durable snapshot). Loading applies the journal lines newer than the snapshot.
 *
 * @module
 */

import { join } from "node:path";
import { describe } from "../_util.ts";

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

/**
 * Checkpoints in memory, written to the state folder on {@linkcode CheckpointStore.persist}.
 *
 * @example
 * ```ts
 * const store = await CheckpointStore.open("/var/lib/logboom-agent");
 * const { records } = store.input("nginx");
 * records.get(id)!.planned.push({ end, tail, server: -1 });
 * await store.persist(); // durable once it resolves
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
  #lastSnapshot = 0;
  readonly #snapshotEveryMs: number;
  #waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  #closed = false;
  /** Writes done, for tests and metrics. */
  writes = 0;

  private constructor(
    dir: string | undefined,
    agentId: string,
    lock: Deno.FsFile | undefined,
    saved: StateFile | undefined,
    options: { journal?: JournalLine[]; snapshotEveryMs?: number } = {},
  ) {
    this.dir = dir;
    this.agentId = agentId;
    this.#lock = lock;
    this.#snapshotEveryMs = options.snapshotEveryMs ?? 200;
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
    const lines = (options.journal ?? []).filter((l) => l.q > snapshotSeq).sort((a, b) =>
      a.q - b.q
    );
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
   * `host` and random letters.
   *
   * @throws {StateLockedError} when another agent holds the folder.
   */
  static async open(
    dir: string,
    options: { agentId?: string; host?: string; snapshotEveryMs?: number } = {},
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
      const journal: JournalLine[] = [];
      for (const name of JOURNALS) {
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
      }
      const host = (options.host ?? "agent").replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 40);
      const agentId = options.agentId ?? saved?.agent ??
        `${host}-${crypto.randomUUID().slice(0, 8)}`;
      const store = new CheckpointStore(dir, agentId, lock, saved, {
        journal,
        snapshotEveryMs: options.snapshotEveryMs,
      });
      // What the journals hold is in memory now: a first snapshot covers it, then both start empty.
      await store.persist();
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
    const line: JournalLine = { q: ++this.#seq, i: input, r: record };
    const bytes = encoder.encode(JSON.stringify(line) + "\n");
    const append = this.#appending.then(async () => {
      this.#journal ??= await Deno.open(join(this.dir!, JOURNALS[this.#journalIndex]), {
        append: true,
        create: true,
      });
      let at = 0;
      while (at < bytes.length) at += await this.#journal.write(bytes.subarray(at));
    });
    this.#appending = append.catch(() => {});
    return append;
  }

  /**
   * Writes the state as it is now (a snapshot, fsynced). Resolves once a write that began after
   * this call is durable; calls made while a write runs share the next one (group commit), and
   * snapshots are at least `snapshotEveryMs` apart.
   */
  persist(): Promise<void> {
    if (this.dir === undefined) return Promise.resolve();
    if (this.#closed) return Promise.reject(new Error("Checkpoints are closed"));
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#writing ??= this.#drain();
    return done;
  }

  /** Writes the state a last time and releases the folder. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.persist();
    } finally {
      this.#closed = true;
      await this.#appending;
      this.#journal?.close();
      this.#journal = undefined;
      this.#lock?.close();
    }
  }

  async #drain(): Promise<void> {
    // A write already under way may have serialized the state before the caller's change, so
    // waiters that came during it wait for the next write.
    do {
      const gap = this.#lastSnapshot + this.#snapshotEveryMs - Date.now();
      if (gap > 0 && !this.#closed) await new Promise((resolve) => setTimeout(resolve, gap));
      const waiters = this.#waiters;
      this.#waiters = [];
      try {
        await this.#write();
        for (const waiter of waiters) waiter.resolve();
      } catch (err) {
        for (const waiter of waiters) waiter.reject(err);
      }
    } while (this.#waiters.length > 0);
    this.#writing = undefined;
  }

  async #write(): Promise<void> {
    const dir = this.dir!;
    this.#lastSnapshot = Date.now();
    let bytes = new Uint8Array(0);
    // In the journal's queue, so no append runs meanwhile: lines up to the sequence serialized
    // here are in the old journal, later ones go to the other, emptied first (the previous
    // snapshot, durable before this one started, covers every line in it).
    const switched = this.#appending.then(async () => {
      const inputs: Record<string, StreamRecord[]> = {};
      for (const [name, state] of this.#inputs) inputs[name] = [...state.records.values()];
      const file: StateFile = {
        version: 1,
        agent: this.agentId,
        server: this.server,
        seq: this.#seq,
        inputs,
      };
      bytes = encoder.encode(JSON.stringify(file));
      this.#journal?.close();
      this.#journal = undefined;
      this.#journalIndex = 1 - this.#journalIndex;
      await Deno.writeFile(join(dir, JOURNALS[this.#journalIndex]), new Uint8Array(0));
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
