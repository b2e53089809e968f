import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { formatRecord } from "./logging.ts";

function record(message: readonly unknown[]): LogRecord {
  return {
    category: ["logboom", "test"],
    level: "info",
    message,
    rawMessage: "",
    timestamp: 0,
    properties: {},
  };
}

Deno.test("values print as they are; a value cannot start a new log line or colour one", () => {
  const text = formatRecord(
    record(['Appending to "', "logs/{source}.log", '" for ', "a\nb\x1b[31m"]),
  );
  assert.match(text, /Appending to "logs\/\{source\}\.log" for a\\nb\\x1b\[31m\n$/);
  assert.equal(text.split("\n").length, 2);
});
