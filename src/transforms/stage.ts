/**
 * The processing stage: a {@linkcode Sink} between the inputs and the router that runs the
 * transform pipelines on each batch and writes what they made to the router. It keeps the sink
 * contract whole: `write` answers with the router's backpressure for the batch it made,
 * `flush(batches)` waits for the batches made from those (a batch whose lines were all dropped is
 * stored at once: nothing is left of it), and the rest is the router's.
 *
 * The per-source counters (`/api/v1/sources`, `logboom_received_lines_total`) are a tap before
 * the steps: they count lines received, dropped ones included.
 *
 * A server started from flags alone has no stage: inputs write to the router. One started from a
 * config file always has one, so that rules can come by reload; until a pipeline runs, it passes
 * batches on untouched (one check per batch).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describe } from "../_util.ts";
import type { Batch } from "../pipeline/batch.ts";
import type { Sink, SinkProblem } from "../pipeline/sink.ts";
import { Transforms } from "./pipeline.ts";
import type { FieldNeeds } from "./step.ts";
import { renderTransformMetrics } from "./metrics.ts";

const log = getLogger(["logboom", "transforms"]);

/** The property under which an input's batch notes the batch made of it. */
const MADE = Symbol("logboom.transforms.made");

/** How often a failing step is logged, at most, in ms. */
const LOG_EVERY_MS = 60_000;

/**
 * The stage as a sink.
 *
 * @example
 * ```ts
 * const stage = new TransformStage(router, compiledTransforms(config.transforms), { tap: sources });
 * if (!stage.write(batch)) await stage.writable(batch);
 * await stage.flush([batch]); // the batch the steps made of it is stored
 * ```
 */
export class TransformStage implements Sink {
  /** Always `transforms`. */
  readonly name = "transforms";
  readonly #router: Sink;
  readonly #tap: Sink | undefined;
  #transforms: Transforms;
  /** The fields read after the stage, now (the live tails' change as they come and go). */
  #needs: () => FieldNeeds;
  /** What batches that cannot carry a note were made into (see {@linkcode noteMade}). */
  readonly #made = new WeakMap<Batch, Batch | null>();
  /**
   * Whether no pipeline ran yet (none was ever configured): every batch is passed on as it is,
   * and nothing needs mapping back. Once one did, batches in flight may carry notes, so it stays
   * false.
   */
  #idle: boolean;
  /** Batches passed on untransformed because a step threw. */
  #failures = 0;
  #loggedAt = -Infinity;

  /**
   * @param router where the batches made go.
   * @param transforms the pipelines.
   * @param options `tap`: a sink that sees every batch as received, before the steps (the
   * per-source counters); `needs`: the fields the sinks and live tails read now (the same
   * object while it holds; default all).
   */
  constructor(
    router: Sink,
    transforms: Transforms,
    options: { tap?: Sink; needs?: () => FieldNeeds } = {},
  ) {
    this.#router = router;
    this.#transforms = transforms;
    this.#tap = options.tap;
    this.#needs = options.needs ?? (() => "all");
    this.#idle = transforms.pipelines.length === 0;
  }

  /** What the sinks and live tails read from the next batch on (a reload changed the sinks). */
  set needs(needs: () => FieldNeeds) {
    this.#needs = needs;
  }

  /** The pipelines running now. */
  get transforms(): Transforms {
    return this.#transforms;
  }

  /**
   * Runs `next` from the next batch on (a reload). A pipeline whose config did not change keeps
   * running as it was (its counters, the last level of each stream); a changed one starts anew,
   * keeping the counters of the steps that kept their type and place.
   *
   * @param unchanged the names of the pipelines whose config did not change.
   */
  configure(next: Transforms, unchanged: ReadonlySet<string> = new Set()): void {
    const running = new Map(this.#transforms.pipelines.map((p) => [p.name, p]));
    const pipelines = next.pipelines.map((pipeline) => {
      const old = running.get(pipeline.name);
      if (old === undefined) return pipeline;
      if (unchanged.has(pipeline.name)) return old;
      pipeline.adoptCounters(old);
      return pipeline;
    });
    this.#transforms = new Transforms(pipelines);
    if (pipelines.length > 0) this.#idle = false;
  }

  /** Transforms `batch` and writes what is left of it to the router. */
  write(batch: Batch): boolean {
    this.#tap?.write(batch);
    if (this.#idle) return this.#router.write(batch);
    const made = this.#apply(batch);
    if (made === batch) return this.#router.write(batch);
    this.#noteMade(batch, made ?? null);
    // Nothing left to store: nothing queued, no reason to wait.
    return made === undefined ? true : this.#router.write(made);
  }

  /**
   * Notes what `batch` was made into (`null`: nothing), for `writable` and `flush`: on the batch
   * object itself, under a private symbol, not enumerable (spreading the batch does not copy it).
   * A `WeakMap` would do the same at 10-15% more CPU for the whole stage on TCP lines (measured:
   * V8 sweeps weak tables at every young collection); it is kept for a batch that cannot take a
   * property (frozen).
   */
  #noteMade(batch: Batch, made: Batch | null): void {
    if (Object.isExtensible(batch)) {
      Object.defineProperty(batch, MADE, { value: made, configurable: true, writable: true });
    } else this.#made.set(batch, made);
  }

  /** What `batch` was made into: `null` nothing, `undefined` not known (passed on as it was). */
  #madeOfOne(batch: Batch): Batch | null | undefined {
    return Object.hasOwn(batch, MADE)
      ? (batch as unknown as Record<symbol, Batch | null>)[MADE]
      : this.#made.get(batch);
  }

  #apply(batch: Batch): Batch | undefined {
    try {
      return this.#transforms.apply(batch, undefined, this.#needs()).batch;
    } catch (err) {
      // A step's bug must never lose accepted lines: they go on as received.
      this.#failures++;
      const now = Date.now();
      if (now - this.#loggedAt >= LOG_EVERY_MS) {
        this.#loggedAt = now;
        log.error(
          "A transform step failed; the batch is stored as received ({failures} so far): {error}",
          { failures: this.#failures, error: describe(err) },
        );
      }
      return batch;
    }
  }

  /** The batches the steps made of `batches`; one passed on as it was stands for itself. */
  #madeOf(batches: readonly Batch[]): Batch[] {
    const out: Batch[] = [];
    for (const batch of batches) {
      const made = this.#madeOfOne(batch);
      if (made === undefined) out.push(batch);
      else if (made !== null) out.push(made);
    }
    return out;
  }

  /** Whether the router's queue is at its bound. */
  get full(): boolean {
    return this.#router.full;
  }

  /** Resolves once the router has room (for what the steps made of `batch`, when given). */
  writable(batch?: Batch): Promise<void> {
    if (batch === undefined || this.#idle) return this.#router.writable(batch);
    const made = this.#madeOfOne(batch);
    if (made === null) return Promise.resolve();
    return this.#router.writable(made ?? batch);
  }

  /** Resolves once what the steps made of `batches` (of everything, without) is stored. */
  flush(batches?: readonly Batch[]): Promise<void> {
    if (batches === undefined || this.#idle) return this.#router.flush(batches);
    return this.#router.flush(this.#madeOf(batches));
  }

  /** The router's answer for lines from `origin`. */
  blocked(origin: Pick<Batch, "meta" | "receivedAt">): boolean {
    return this.#router.blocked?.(origin) ?? false;
  }

  /** The router's problems. */
  problems(): readonly SinkProblem[] {
    return this.#router.problems?.() ?? [];
  }

  /** Closes the router (the tap holds nothing). */
  async close(options: { signal?: AbortSignal } = {}): Promise<void> {
    await Promise.all([this.#router.close(options), this.#tap?.close(options)]);
  }

  /** The steps' counters as a Prometheus text page part (`/metrics`). */
  metrics(): string {
    return renderTransformMetrics(this.#transforms.pipelines, this.#failures);
  }
}
