/**
 * Every transform step type, by the name a step's `type` gives it: the one place a new step is
 * added, after which config files, `logboom validate` and the reference page know it.
 *
 * @module
 */

import type { StepComponent } from "./step.ts";
import { deleteStep, renameStep, setStep } from "./steps/fields.ts";
import { filterStep, routeStep } from "./steps/filter.ts";
import { levelStep } from "./steps/level.ts";
import { multilineStep } from "./steps/multiline.ts";
import { parseStep } from "./steps/parse.ts";
import { timestampStep } from "./steps/timestamp.ts";

/** Step types by name, in the order the reference page lists them. */
export const STEPS: Readonly<Record<string, StepComponent>> = {
  parse: parseStep,
  level: levelStep,
  timestamp: timestampStep,
  filter: filterStep,
  route: routeStep,
  set: setStep,
  rename: renameStep,
  delete: deleteStep,
  multiline: multilineStep,
};
