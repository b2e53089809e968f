/**
 * The `watch` input: local files followed like `tail -F` (`ingest/watch.ts`), as `-watch`
 * configures it.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { hostName } from "../../host_name.ts";
import type { CheckpointStore } from "../../files/checkpoint.ts";
import { compileGlob } from "../../files/glob.ts";
import { describe } from "../../_util.ts";
import { WatchInput } from "../../ingest/watch.ts";
import type { Input, InputCloseOptions } from "../../pipeline/input.ts";
import { untilAborted } from "../../pipeline/input.ts";
import { defineInput } from "../component.ts";
import type { KeyTable } from "../keys.ts";

/** The keys of a `watch` input. */
export const WATCH_KEYS = {
  paths: {
    type: "list",
    required: true,
    minItems: 1,
    path: true,
    flag: "watch",
    doc: "Files or globs to follow from their end, rotation-safe; what logboom writes is never " +
      "followed",
    check: (pattern) => {
      try {
        compileGlob(pattern);
        return undefined;
      } catch (err) {
        return `is not a glob: ${describe(err)}`;
      }
    },
  },
  max_line: {
    type: "size",
    default: "1MiB",
    flag: "maxLine",
    doc: "Longer lines are split into pieces of this size, never dropped",
  },
} as const satisfies KeyTable;

const log = getLogger(["logboom", "serve"]);

/** The `watch` input component. */
export const watchInput = defineInput({
  type: "watch",
  doc: "Local files followed like tail -F, from their end, filed under the host's name",
  keys: WATCH_KEYS,
  // New outputs must never be followed: a reload that changes them rebuilds the input, which
  // takes over its predecessor's positions.
  uses: ["outputs"],
  refuse(values) {
    const unreadable = WatchInput.unreadable(values.paths);
    if (unreadable.length === 0) return undefined;
    return `Watching files needs read permission on ${
      unreadable.map((p) => `"${p}"`).join(", ")
    }: run with --allow-read=${unreadable.join(",")}`;
  },
  build(name, values, context, previous) {
    const watch = WatchInput.start(context.router, {
      // Rebuilt on a reload: where the input it replaces stopped, so no line is read twice or
      // skipped (files it did not follow are read from their start, as files that appear are).
      store: previous instanceof WatchComponent ? previous.store : undefined,
      paths: values.paths,
      host: hostName(),
      maxLine: values.max_line,
      // Never read back what is stored: the outputs, their rotations, logboom's own state.
      outputs: context.outputs,
      stateDirs: [context.stateDir],
    });
    log.info("Watching {paths}", { paths: values.paths.map((p) => `"${p}"`).join(", ") });
    return Promise.resolve(new WatchComponent(name, watch));
  },
});

/** A {@linkcode WatchInput} as an {@linkcode Input}. */
class WatchComponent implements Input {
  readonly type = "watch";
  readonly name: string;
  readonly #watch: WatchInput;

  constructor(name: string, watch: WatchInput) {
    this.name = name;
    this.#watch = watch;
  }

  /** The positions it read up to. */
  get store(): CheckpointStore {
    return this.#watch.store;
  }

  stats(): Record<string, number> {
    return { open_files: this.#watch.openFiles };
  }

  close(options: InputCloseOptions = {}): Promise<void> {
    return untilAborted(this.#watch.close(), options.signal);
  }
}
