/**
 * Compiled transform pipelines ({@linkcode CompiledPipeline}) and the set of them a config names
 * ({@linkcode Transforms}): which pipelines a batch's source matches, and running them on it.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";
import { compileSourceGlob, type SourceGlob } from "./source_glob.ts";
import type { Step } from "./step.ts";
import { ScratchBytes, type Trace, Work } from "./work.ts";

/** A step's counters, for `/metrics`. Work is measured per batch, never per line. */
export interface StepCounters {
  /** Batches the step ran on. */
  batches: number;
  /** Lines it was given. */
  in: number;
  /** Lines it passed on (fewer when it dropped or joined some). */
  out: number;
  /** Lines it dropped. */
  dropped: number;
  /** Lines it could not process (did not parse). */
  errors: number;
  /** Time it spent, in seconds. */
  seconds: number;
}

/** One step of a compiled pipeline. */
export interface PipelineStep {
  /** Its type, e.g. `parse`. */
  readonly type: string;
  /** Where it is: `app.steps[2] (filter)`. */
  readonly label: string;
  /** What it does. */
  readonly step: Step;
  /** Its counters (carried over by a reload that keeps the step's type at its place). */
  counters: StepCounters;
}

/** Counters at zero. */
export function newCounters(): StepCounters {
  return { batches: 0, in: 0, out: 0, dropped: 0, errors: 0, seconds: 0 };
}

/** A named pipeline, compiled: source globs and steps. */
export class CompiledPipeline {
  /** Its name in the config. */
  readonly name: string;
  /** The sources it takes, as written. */
  readonly sources: readonly string[];
  /** Its steps, in order. */
  readonly steps: readonly PipelineStep[];
  readonly #globs: readonly SourceGlob[];

  /**
   * @param name its name in the config.
   * @param sources source globs.
   * @param steps the compiled steps with their types.
   */
  constructor(
    name: string,
    sources: readonly string[],
    steps: readonly { type: string; step: Step }[],
  ) {
    this.name = name;
    this.sources = sources;
    this.#globs = sources.map(compileSourceGlob);
    this.steps = steps.map(({ type, step }, k) => ({
      type,
      step,
      label: `${name}.steps[${k}] (${type})`,
      counters: newCounters(),
    }));
  }

  /** Whether batches of `source` go through it. */
  matches(source: string): boolean {
    return this.#globs.some((glob) => glob.test(source));
  }

  /** Runs every step on `work`, timing each once for the batch; stops when no line is left. */
  run(work: Work): void {
    for (const { step, label, counters } of this.steps) {
      if (work.live === 0) return;
      const lines = work.live;
      const dropped = work.dropped;
      const errors = work.errors;
      work.step = label;
      const start = performance.now();
      step.run(work);
      counters.seconds += (performance.now() - start) / 1000;
      counters.batches++;
      counters.in += lines;
      counters.out += work.live;
      counters.dropped += work.dropped - dropped;
      counters.errors += work.errors - errors;
    }
  }

  /** Takes the counters of `previous`'s steps where a step of the same type is at the same place. */
  adoptCounters(previous: CompiledPipeline): void {
    const steps = this.steps as PipelineStep[];
    previous.steps.forEach((old, k) => {
      if (steps[k]?.type === old.type) steps[k].counters = old.counters;
    });
  }
}

/** What {@linkcode Transforms.apply} made of a batch. */
export interface Applied {
  /** The batch to pass on: the input itself when nothing changed; `undefined`: all dropped. */
  batch: Batch | undefined;
  /** The pipelines the batch went through, in order. */
  pipelines: readonly CompiledPipeline[];
  /** The batch under work, with its lines' input numbers when traced; none when no pipeline ran. */
  work?: Work;
}

/** Sources remembered with the pipelines they match; past it, the memory starts over. */
const MATCH_CACHE = 4096;

/**
 * The pipelines of a config, in its order. A batch goes through every pipeline whose sources
 * match its source, one after the other.
 */
export class Transforms {
  /** The pipelines, in the config's order. */
  readonly pipelines: readonly CompiledPipeline[];
  readonly #matched = new Map<string, readonly CompiledPipeline[]>();
  readonly #scratch = new ScratchBytes();

  /** @param pipelines in the config's order. */
  constructor(pipelines: readonly CompiledPipeline[]) {
    this.pipelines = pipelines;
  }

  /** The pipelines batches of `source` go through (remembered per source, up to a bound). */
  matching(source: string): readonly CompiledPipeline[] {
    let found = this.#matched.get(source);
    if (found === undefined) {
      found = this.pipelines.filter((p) => p.matches(source));
      if (this.#matched.size >= MATCH_CACHE) this.#matched.clear();
      this.#matched.set(source, found);
    }
    return found;
  }

  /**
   * Runs the matching pipelines on `batch`. The batch made is borrowed like any batch: its bytes
   * may be a reused buffer, valid until the next call.
   */
  apply(batch: Batch, trace?: Trace): Applied {
    const pipelines = this.matching(batch.meta.source);
    if (pipelines.length === 0) return { batch, pipelines };
    const work = new Work(batch, trace, this.#scratch);
    for (const pipeline of pipelines) pipeline.run(work);
    return { batch: work.finish(), pipelines, work };
  }
}
