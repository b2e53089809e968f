import { Problems } from "../config/keys.ts";
import { compiledTransforms, readTransforms } from "./config.ts";
import { tryTransforms } from "./tryout.ts";
const problems = new Problems();
const t = readTransforms({
  app: {
    sources: ["app*"],
    steps: [
      { type: "multiline", start: "^\\S" },
      { type: "parse", format: "json" },
      { type: "level" },
      { type: "timestamp" },
      { type: "filter", level: ">=info" },
      { type: "route", to: "errors", level: ">=error" },
      { type: "rename", from: "msg", to: "message" },
      { type: "delete", fields: ["pid"] },
    ],
  },
  bad: {
    steps: [{ type: "parse", format: "regex" }, { type: "filtr" }, { type: "filter", regex: "(" }],
  },
}, problems);
console.log(problems.list);
delete t!.bad;
const r = tryTransforms(
  compiledTransforms(t!),
  [
    '{"level":"info","msg":"hello","pid":3,"time":"2026-11-22T10:00:00Z"}',
    '{"level":"debug","msg":"noise"}',
    '{"level":50,"msg":"boom"}',
    "  at foo (x.js:1)",
    "not json ERROR here",
    "",
    '{"msg":"no level"}',
  ].join("\n"),
  { source: "app1" },
);
for (const x of r) console.log(JSON.stringify(x));
