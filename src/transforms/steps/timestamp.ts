/**
 * The `timestamp` step: each line's own time from a field (RFC 3339 text, or seconds,
 * milliseconds, microseconds or nanoseconds since the epoch, told apart by size:
 * `protocols/fields.ts`, `timeMsOf`), which the JSON format stores as `time`.
 *
 * @module
 */

import { timeMsOf } from "../../protocols/fields.ts";
import { defineStep, needsWith, type Step } from "../step.ts";
import type { Work } from "../work.ts";

/** The `timestamp` step. */
export const timestampStep = defineStep({
  type: "timestamp",
  doc: "Each line's own time from the first of these fields it has (RFC 3339, or a number of " +
    "s, ms, us or ns since the epoch); the json format stores it as time",
  keys: {
    fields: {
      type: "list",
      minItems: 1,
      default: ["time", "ts", "timestamp", "@timestamp"],
      doc: "Fields that hold the time, the first a line has wins",
    },
    override: {
      type: "bool",
      default: false,
      doc: "Replace a time the input stated (syslog, OTLP) with this one; by default it stays",
    },
  },
  compile({ fields: names, override }) {
    return {
      run(work: Work) {
        const times = work.writeTimes();
        for (let i = 0; i < work.lines; i++) {
          if (!work.isLive(i) || (!override && !Number.isNaN(times[i]))) continue;
          const fields = work.fields(i);
          if (fields === undefined) continue;
          for (const name of names) {
            if (!Object.hasOwn(fields, name)) continue;
            const ms = timeMsOf(fields[name]);
            if (ms !== undefined) {
              times[i] = ms;
              break;
            }
          }
        }
      },
      needs: (after) => needsWith(after, names),
    } satisfies Step;
  },
});
