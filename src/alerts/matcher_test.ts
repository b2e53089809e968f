import assert from "node:assert/strict";
import { type Fields, levelCode } from "../pipeline/record.ts";
import { batchOf, metaOf } from "../transforms/_test_util.ts";
import { AlertMatcher, SAMPLE_CHARS } from "./matcher.ts";

Deno.test("an alert counts the lines its grep and regex match, as the tail's filter does", () => {
  const lines = ["GET /a 200", "GET /b 500 timeout", "POST /c 503", "timeout alone", "x"];
  const grep = new AlertMatcher({ grep: "timeout" });
  assert.deepEqual(grep.match(batchOf(lines)), {
    count: 2,
    samples: ["GET /b 500 timeout", "timeout alone"],
  });
  const regex = new AlertMatcher({ regex: " 5\\d\\d" });
  assert.deepEqual(regex.match(batchOf(lines)).count, 2);
  const both = new AlertMatcher({ grep: "timeout", regex: " 5\\d\\d" });
  assert.deepEqual(both.match(batchOf(lines)), { count: 1, samples: ["GET /b 500 timeout"] });
  assert.deepEqual(new AlertMatcher({ grep: "nowhere" }).match(batchOf(lines)).count, 0);
});

Deno.test("an alert's source is a glob; without filters every line of it counts, unread", () => {
  const matcher = new AlertMatcher({ source: "billing*" });
  const lines = ["1", "2", "3", "4", "5", "6", "7"];
  const billing = matcher.match(batchOf(lines, {}, metaOf("billing-eu")));
  assert.equal(billing.count, 7);
  assert.deepEqual(billing.samples, ["1", "2", "3", "4", "5"]);
  assert.equal(matcher.match(batchOf(lines, {}, metaOf("web"))).count, 0);
});

Deno.test("level means this level or higher; a line without a level or the field never matches", () => {
  const levels = Uint8Array.from(
    ["info", "error", undefined, "fatal", "warn"].map((l) => levelCode(l as "info" | undefined)),
  );
  const lines = ["a", "b", "c", "d", "e"];
  const errors = new AlertMatcher({ level: "error" });
  assert.deepEqual(errors.match(batchOf(lines, { levels })), { count: 2, samples: ["b", "d"] });
  // A batch without a levels column has no line with a level.
  assert.equal(errors.match(batchOf(lines)).count, 0);
  const fields: (Fields | undefined)[] = [
    { service: "billing", status: 500 },
    { service: "web" },
    undefined,
  ];
  const billing500 = new AlertMatcher({ fields: { service: "billing", status: "500" } });
  assert.deepEqual(billing500.match(batchOf(["a", "b", "c"], { fields })), {
    count: 1,
    samples: ["a"],
  });
  const combined = new AlertMatcher({ level: "warn", grep: "d", source: "app" });
  assert.deepEqual(combined.match(batchOf(lines, { levels })), { count: 1, samples: ["d"] });
});

Deno.test("a long line's sample is cut at 1,000 characters; the rest of a line is kept as sent", () => {
  const long = "y".repeat(SAMPLE_CHARS * 5);
  const { samples } = new AlertMatcher({}).match(batchOf([long, "é\r"]));
  assert.equal(samples[0], "y".repeat(SAMPLE_CHARS) + "…");
  assert.equal(samples[1], "é\r");
});
