import assert from "node:assert/strict";
import { defaultValues } from "../keys.ts";
import { HTTP_KEYS, httpInput } from "./http.ts";
import { parseHostPort } from "../../units.ts";

const byFlags = { say: (_path: string, flag: string) => `-${flag}` };
const byFile = { say: (path: string) => path };

function refuse(address: string, token = "", context = byFlags) {
  const values = { ...defaultValues(HTTP_KEYS), address: parseHostPort(address), token };
  return httpInput.refuse?.(values, context);
}

Deno.test("the HTTP API wants a token on anything but loopback, named as it was set", () => {
  assert.equal(refuse("127.0.0.1:8081"), undefined);
  assert.equal(refuse("localhost:9"), undefined);
  assert.equal(refuse("0.0.0.0:9", "t"), undefined);
  assert.match(refuse("0.0.0.0:9")!, /without a token.*Set -token or LOGBOOM_TOKEN/);
  assert.match(refuse(":9")!, /0\.0\.0\.0:9.*use -http 127\.0\.0\.1:9$/);
  assert.match(refuse(":9", "", byFile)!, /Set http\.token or .*use http\.address 127\.0\.0\.1:9$/);
});
