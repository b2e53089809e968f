/**
 * The `multiline` step: a line matching `start` begins an event, every other line joins the
 * event before it (a stack trace joins its error line), joined with `join` into one line, as the
 * file tailer's multiline framing does (`files/multiline.ts`). An event takes the first line's
 * level, time and fields. Events never span batches: lines of one TCP read, one HTTP body, one
 * read of a followed file (`serve -watch` and the agent join across reads with their own
 * `multiline` option).
 *
 * @module
 */

import { compileLinearRegex } from "../../text/linear_regex.ts";
import { atKey, defineStep, type Step, StepKeyError } from "../step.ts";
import type { Work } from "../work.ts";

const encoder = new TextEncoder();

/** The `multiline` step. */
export const multilineStep = defineStep({
  type: "multiline",
  doc: "Joins each line that does not match start to the line before it (a stack trace to its " +
    "error), within a batch; the event keeps the first line's level, time and fields",
  keys: {
    start: {
      type: "string",
      nonEmpty: true,
      required: true,
      doc: 'A line matching this regex starts an event, e.g. "^\\\\d{4}-\\\\d{2}-\\\\d{2}" ' +
        "(linear-time engine)",
    },
    join: {
      type: "string",
      default: "\\n",
      doc: "Put between joined lines; the default is a backslash and n, so an event stays one " +
        "stored line",
      check: (join) => /[\r\n]/.test(join) ? "must not hold a line break" : undefined,
    },
    max_lines: {
      type: "count",
      default: 500,
      min: 2,
      max: 100_000,
      doc: "An event is cut after this many lines",
    },
    max_bytes: {
      type: "size",
      default: "1MiB",
      min: 1024,
      doc: "An event is cut before it grows past this size",
    },
  },
  compile(values) {
    const start = atKey("start", () => compileLinearRegex(values.start));
    if (values.join.length > 64) throw new StepKeyError("join", "must be at most 64 characters");
    const join = values.join;
    const joinBytes = encoder.encode(join);
    const { max_lines: maxLines, max_bytes: maxBytes } = values;
    return {
      // The text alone decides; an event keeps its first line's fields.
      needs: (after) => after,
      run(work: Work) {
        work.compact();
        const first: number[] = [];
        let lines = 0;
        let bytes = 0;
        let bytesOut = 0;
        for (let i = 0; i < work.lines; i++) {
          const length = work.end(i) - work.start(i);
          const starts = lines === 0 || lines >= maxLines ||
            bytes + joinBytes.length + length > maxBytes || start.test(work.text(i));
          if (starts) {
            first.push(i);
            lines = 1;
            bytes = length;
            bytesOut += length + 1;
          } else {
            lines++;
            bytes += joinBytes.length + length;
            bytesOut += joinBytes.length + length;
            work.trace?.joined(work.id(i), work.id(first[first.length - 1]), work.step);
          }
        }
        if (first.length === work.lines) return;
        const data = new Uint8Array(bytesOut);
        const texts: string[] = [];
        let at = 0;
        for (let g = 0; g < first.length; g++) {
          const from = first[g];
          const to = g + 1 < first.length ? first[g + 1] : work.lines;
          let text = "";
          for (let i = from; i < to; i++) {
            if (i > from) {
              data.set(joinBytes, at);
              at += joinBytes.length;
              text += join;
            }
            const line = work.data.subarray(work.start(i), work.end(i));
            data.set(line, at);
            at += line.length;
            text += work.text(i);
          }
          data[at++] = 10;
          texts.push(text);
        }
        texts.push("");
        work.regroup(Int32Array.from(first), data, texts);
      },
    } satisfies Step;
  },
});
