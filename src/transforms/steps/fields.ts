/**
 * The `set`, `rename` and `delete` steps: fields of every line, by name.
 *
 * @module
 */

import { setField } from "../../protocols/fields.ts";
import { defineStep, needsWith, type Step, StepKeyError } from "../step.ts";
import type { Work } from "../work.ts";

/** The `set` step. */
export const setStep = defineStep({
  type: "set",
  doc: "Sets a field to a text value on every line",
  keys: {
    field: { type: "string", nonEmpty: true, required: true, doc: "The field" },
    value: { type: "string", required: true, doc: "Its value, as text" },
  },
  compile({ field, value }) {
    return {
      run(work: Work) {
        for (let i = 0; i < work.lines; i++) {
          if (work.isLive(i)) setField(work.ownFields(i), field, value);
        }
      },
      needs: (after) => after,
    } satisfies Step;
  },
});

/** The `rename` step. */
export const renameStep = defineStep({
  type: "rename",
  doc: "Renames a field on the lines that have it (replacing a field of the new name)",
  keys: {
    from: { type: "string", nonEmpty: true, required: true, doc: "The field's name" },
    to: { type: "string", nonEmpty: true, required: true, doc: "Its new name" },
  },
  compile({ from, to }) {
    if (from === to) throw new StepKeyError("to", `is the same as from (${from})`);
    return {
      run(work: Work) {
        for (let i = 0; i < work.lines; i++) {
          if (!work.isLive(i)) continue;
          const fields = work.fields(i);
          if (fields === undefined || !Object.hasOwn(fields, from)) continue;
          const own = work.ownFields(i);
          const value = own[from];
          delete own[from];
          setField(own, to, value);
        }
      },
      needs: (after) => needsWith(after, [from]),
    } satisfies Step;
  },
});

/** The `delete` step. */
export const deleteStep = defineStep({
  type: "delete",
  doc: "Removes fields from every line",
  keys: {
    fields: { type: "list", minItems: 1, required: true, doc: "The fields to remove" },
  },
  compile({ fields: names }) {
    return {
      run(work: Work) {
        for (let i = 0; i < work.lines; i++) {
          if (!work.isLive(i)) continue;
          const fields = work.fields(i);
          if (fields === undefined || !names.some((name) => Object.hasOwn(fields, name))) {
            continue;
          }
          const own = work.ownFields(i);
          for (const name of names) delete own[name];
        }
      },
      needs: (after) => after,
    } satisfies Step;
  },
});
