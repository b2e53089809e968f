/**
 * Compiled transform pipelines ({@linkcode CompiledPipeline}) and the set of them a config names
 * ({@linkcode Transforms}): which pipelines a batch's source matches, and running them on it.
 *
 * @module
 */

import type { Batch } from "../pipeline/batch.ts";
import { compileSourceGlob, type SourceGlob } from "./source_glob.ts";
import type { FieldNeeds, Step } from "./step.ts";
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
  /** The last plan: for what is read after the pipeline, what is read after each step. */
  #plan: { after: FieldNeeds; steps: FieldNeeds[]; before: FieldNeeds } | undefined;

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

  /**
   * The fields read before the pipeline when `after` are read after it (the same object as
   * long as `after` is the same object: plans are kept).
   */
  needsBefore(after: FieldNeeds): FieldNeeds {
    return this.#planFor(after).before;
  }

  #planFor(after: FieldNeeds): { after: FieldNeeds; steps: FieldNeeds[]; before: FieldNeeds } {
    if (this.#plan?.after === after) return this.#plan;
    const steps: FieldNeeds[] = new Array(this.steps.length);
    let needs = after;
    for (let k = this.steps.length - 1; k >= 0; k--) {
      steps[k] = needs;
      const { step } = this.steps[k];
      needs = step.needs === undefined ? "all" : step.needs(needs);
    }
    return this.#plan = { after, steps, before: needs };
  }

  /**
   * Runs every step on `work`, timing each once for the batch; stops when no line is left.
   *
   * @param after the fields read after the pipeline; default all.
   */
  run(work: Work, after: FieldNeeds = "all"): void {
    const wanted = this.#planFor(after).steps;
    for (let k = 0; k < this.steps.length; k++) {
      const { step, label, counters } = this.steps[k];
      if (work.live === 0) return;
      work.wanted = wanted[k];
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
   *
   * @param after the fields read after the pipelines (by the sinks and live tails); default all.
   *   Pass the same object while it holds: the pipelines plan their steps' needs once for it.
   */
  apply(batch: Batch, trace?: Trace, after: FieldNeeds = "all"): Applied {
    const pipelines = this.matching(batch.meta.source);
    if (pipelines.length === 0) return { batch, pipelines };
    const work = new Work(batch, trace, this.#scratch);
    if (pipelines.length === 1) pipelines[0].run(work, after);
    else {
      // Each pipeline gives what the ones after it read, too.
      const afters: FieldNeeds[] = new Array(pipelines.length);
      let needs = after;
      for (let j = pipelines.length - 1; j >= 0; j--) {
        afters[j] = needs;
        needs = pipelines[j].needsBefore(needs);
      }
      for (let j = 0; j < pipelines.length; j++) pipelines[j].run(work, afters[j]);
    }
    const ownFields = after === "all" || after.size > 0;
    return { batch: work.finish({ ownFields }), pipelines, work };
  }
}
