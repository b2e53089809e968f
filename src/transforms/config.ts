/**
 * The `transforms` section of a server config: named pipelines, each with the sources it takes
 * (globs) and its steps in order. {@linkcode readTransforms} checks it (every problem at its key
 * path, `transforms.app.steps[2].pattern`) and compiles every step once, there;
 * {@linkcode compiledTransforms} hands the compiled pipelines to the server.
 *
 * ```yaml
 * transforms:
 *   app:
 *     sources: ["app", "app-*"]
 *     steps:
 *       - { type: parse, format: json }
 *       - { type: level, fields: [level] }
 *       - { type: filter, level: ">=info" }
 * ```
 *
 * @module
 */

import {
  keyPath,
  type KeyTable,
  nearest,
  type Problems,
  readKeys,
  show,
  type Value,
} from "../config/keys.ts";
import { CompiledPipeline, Transforms } from "./pipeline.ts";
import { STEPS } from "./registry.ts";
import { type Step, StepKeyError } from "./step.ts";

/** The keys of one pipeline, besides `steps`. */
export const PIPELINE_KEYS = {
  sources: {
    type: "list",
    default: ["*"],
    minItems: 1,
    doc: "The sources whose lines it takes, as globs (* any text, ? one character): tcp, " +
      "app-*, an HTTP ingest's ?source=; a batch goes through every pipeline that takes it, in " +
      "the file's order",
  },
} as const satisfies KeyTable;

/** What the reference page says of `steps`. */
export const STEPS_DOC = "The steps, in order: a list of { type: <step>, <its keys> } " +
  "(required, at least one)";

/** One step as the config holds it: its type and its checked values. */
export interface StepConfig {
  /** The step type, e.g. `parse`. */
  type: string;
  /** Its values, by key. */
  [key: string]: Value;
}

/** One pipeline as the config holds it. */
export interface PipelineConfig {
  /** Source globs. */
  sources: string[];
  /** Steps in order. */
  steps: StepConfig[];
}

/** The `transforms` section: pipelines by name, in the file's order. */
export type TransformsConfig = Record<string, PipelineConfig>;

/** Pipeline names: they label metrics. */
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Each checked pipeline's compiled form, made once by {@linkcode readTransforms}. */
const compiled = new WeakMap<PipelineConfig, CompiledPipeline>();

/**
 * Reads the `transforms` section `doc` (at key path `at`): `undefined` when the config has none
 * (`doc` undefined); an empty section (`transforms: {}`, or `transforms:` alone) is `{}`. Every
 * step is compiled here; what does not compile is a problem at its key.
 */
export function readTransforms(
  doc: unknown,
  problems: Problems,
  at = "transforms",
): TransformsConfig | undefined {
  if (doc === undefined) return undefined;
  if (doc === null) return {};
  if (!isMapping(doc)) {
    problems.add(at, `must be a mapping of pipeline names to pipelines, got ${show(doc)}`);
    return {};
  }
  const out: TransformsConfig = {};
  for (const [name, value] of Object.entries(doc)) {
    const path = keyPath(at, name);
    if (!NAME.test(name)) problems.add(path, "a name is 1 to 64 letters, digits, _ or -");
    if (!isMapping(value)) {
      problems.add(path, `must be a mapping with sources and steps, got ${show(value)}`);
      continue;
    }
    const before = problems.list.length;
    const { sources } = readKeys(PIPELINE_KEYS, value, path, problems, { ignore: ["steps"] });
    const steps = readSteps(value.steps, keyPath(path, "steps"), problems);
    const pipeline: PipelineConfig = { sources, steps: steps.map((s) => s.config) };
    out[name] = pipeline;
    if (problems.list.length === before) {
      compiled.set(pipeline, new CompiledPipeline(name, sources, steps.map((s) => s.compiled!)));
    }
  }
  return out;
}

/** The compiled step and its config, or its config alone when it does not compile. */
interface ReadStep {
  config: StepConfig;
  compiled?: { type: string; step: Step };
}

function readSteps(doc: unknown, at: string, problems: Problems): ReadStep[] {
  if (doc === undefined || doc === null) {
    problems.add(at, `is required: ${STEPS_DOC}`);
    return [];
  }
  if (!Array.isArray(doc) || doc.length === 0) {
    problems.add(at, `must be a list of steps (at least one), got ${show(doc)}`);
    return [];
  }
  const out: ReadStep[] = [];
  doc.forEach((item, k) => {
    const path = `${at}[${k}]`;
    if (!isMapping(item)) {
      problems.add(
        path,
        `must be a mapping such as { type: parse, format: json }, got ${show(item)}`,
      );
      return;
    }
    const component = stepType(item.type, keyPath(path, "type"), problems);
    if (component === undefined) return;
    const before = problems.list.length;
    const values = readKeys(component.keys, item, path, problems, { ignore: ["type"] });
    const config: StepConfig = { type: component.type, ...values };
    if (problems.list.length > before) {
      out.push({ config });
      return;
    }
    try {
      out.push({ config, compiled: { type: component.type, step: component.compile(values) } });
    } catch (err) {
      if (!(err instanceof StepKeyError)) throw err;
      problems.add(keyPath(path, err.key), err.message);
      out.push({ config });
    }
  });
  return out;
}

function stepType(type: unknown, at: string, problems: Problems) {
  const types = Object.keys(STEPS);
  if (type === undefined) {
    problems.add(at, `is required: one of ${types.join(", ")}`);
    return undefined;
  }
  if (typeof type === "string" && Object.hasOwn(STEPS, type)) return STEPS[type];
  const near = typeof type === "string" ? nearest(type, types) : undefined;
  problems.add(
    at,
    `must be one of ${types.join(", ")}, got ${show(type)}` +
      (near === undefined ? "" : `; did you mean "${near}"?`),
  );
  return undefined;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The compiled pipelines of a checked `transforms` section, in its order: each compiled once, by
 * {@linkcode readTransforms}.
 *
 * @throws {TypeError} for a pipeline that was not read by {@linkcode readTransforms} without
 * problems.
 */
export function compiledTransforms(config: TransformsConfig): Transforms {
  return new Transforms(
    Object.entries(config).map(([name, pipeline]) => {
      const found = compiled.get(pipeline);
      if (found === undefined) throw new TypeError(`Transform pipeline ${name} was not checked`);
      return found;
    }),
  );
}

/**
 * The `transforms` section of a parsed config document (a whole server config, or a file that
 * holds only that section; other sections are not read), checked and compiled.
 *
 * @throws {TypeError} never; problems go to `problems`, and the result is `undefined` when
 * there are any or the document has no `transforms` section (a problem too).
 */
export function transformsOfDocument(doc: unknown, problems: Problems): Transforms | undefined {
  if (!isMapping(doc)) {
    problems.add("", "the file must hold a mapping with a transforms section");
    return undefined;
  }
  if (!Object.hasOwn(doc, "transforms")) {
    problems.add("transforms", "is missing: the rules to test");
    return undefined;
  }
  const config = readTransforms(doc.transforms, problems);
  return config === undefined || !problems.empty ? undefined : compiledTransforms(config);
}
