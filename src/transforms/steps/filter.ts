/**
 * The `filter` step (keep or drop lines on a condition) and the `route` step (send lines on a
 * condition to another file, through the field `_route` a path template reads as
 * `{fields._route}`). Their conditions: `condition.ts`.
 *
 * @module
 */

import { compileCondition, type Condition, type ConditionValues } from "../condition.ts";
import {
  atKey,
  CONDITION_KEYS,
  defineStep,
  needsWith,
  ROUTE_FIELD,
  type Step,
  StepKeyError,
} from "../step.ts";
import type { Work } from "../work.ts";

/** Compiles the condition keys of `values`, each problem at its key. */
function condition(values: ConditionValues): Condition | undefined {
  if (values.field === undefined) {
    for (const key of ["equals", "matches"] as const) {
      if (values[key] !== undefined) throw new StepKeyError(key, "needs field: the field to test");
    }
  }
  atKey("level", () => compileCondition({ level: values.level }));
  atKey("matches", () => compileCondition({ field: "x", matches: values.matches }));
  atKey("regex", () => compileCondition({ regex: values.regex }));
  return compileCondition(values);
}

/** The `filter` step. */
export const filterStep = defineStep({
  type: "filter",
  doc: "Keeps (action: include) or drops (action: exclude) the lines for which every condition " +
    "given holds: level, field (with equals or matches), regex",
  keys: {
    action: {
      type: "choice",
      choices: ["include", "exclude"],
      default: "include",
      doc: "include: keep only the lines that match; exclude: drop them",
    },
    ...CONDITION_KEYS,
  },
  compile(values) {
    const test = condition(values);
    if (test === undefined) {
      throw new StepKeyError("action", "needs a condition: level, field or regex");
    }
    const include = values.action === "include";
    const reads = values.field === undefined ? [] : [values.field];
    return {
      run(work: Work) {
        for (let i = 0; i < work.lines; i++) {
          if (work.isLive(i) && test(work, i) !== include) work.drop(i);
        }
      },
      needs: (after) => needsWith(after, reads),
    } satisfies Step;
  },
});

const ROUTE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** The `route` step. */
export const routeStep = defineStep({
  type: "route",
  doc: "Sets the field `_route` to `to` on the lines for which every condition given holds (all " +
    "lines without one), unless an earlier route set it: the first route that matches wins. A " +
    "file sink's path names it as `{fields._route}`",
  keys: {
    to: {
      type: "string",
      required: true,
      doc: "The route's name, the value of `_route`: 1 to 64 letters, digits, _, - or .",
      check: (to) =>
        ROUTE_NAME.test(to) ? undefined : "must be 1 to 64 letters, digits, _, - or ., not " +
          "starting with . or -",
    },
    ...CONDITION_KEYS,
  },
  compile(values) {
    const test = condition(values);
    const to = values.to;
    // An earlier route's mark (or a parsed `_route`) wins.
    const reads = values.field === undefined ? [ROUTE_FIELD] : [ROUTE_FIELD, values.field];
    return {
      run(work: Work) {
        for (let i = 0; i < work.lines; i++) {
          if (!work.isLive(i)) continue;
          const fields = work.fields(i);
          if (fields !== undefined && Object.hasOwn(fields, ROUTE_FIELD)) continue;
          if (test === undefined || test(work, i)) work.ownFields(i)[ROUTE_FIELD] = to;
        }
      },
      needs: (after) => needsWith(after, reads),
    } satisfies Step;
  },
});
