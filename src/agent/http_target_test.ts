import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { FAST_RETRY as RETRY } from "./_test_target.ts";
import { HttpTarget } from "./http_target.ts";
import { Shipper } from "./shipper.ts";

async function prepared(servers: string[], level?: number | "auto") {
  const shipper = new Shipper({ servers, token: "", retry: RETRY });
  try {
    const target = new HttpTarget(shipper, { source: "s", level });
    const data = new TextEncoder().encode("a line\n".repeat(1000));
    const payload = await target.prepare(data, {
      lines: 1000,
      path: "a.log",
      signal: new AbortController().signal,
    }) as { body: Uint8Array; encoding?: string };
    data.fill(0); // the data was borrowed: the payload must not change with it
    return payload;
  } finally {
    shipper.close();
  }
}

Deno.test("compression auto: plain lines to loopback servers, gzip when a server is elsewhere", async () => {
  const local = await prepared(["http://127.0.0.1:8081", "http://localhost:8082"]);
  assert.equal(local.encoding, undefined);
  assert.equal(new TextDecoder().decode(local.body), "a line\n".repeat(1000));
  const remote = await prepared(["http://127.0.0.1:8081", "http://10.0.0.5:8081"]);
  assert.equal(remote.encoding, "gzip");
  assert.ok(remote.body.length < 1000);
  assert.equal(new TextDecoder().decode(gunzipSync(remote.body)), "a line\n".repeat(1000));
  // A level set in the config holds whatever the servers.
  assert.equal((await prepared(["http://127.0.0.1:8081"], 1)).encoding, "gzip");
  assert.equal((await prepared(["http://10.0.0.5:8081"], 0)).encoding, undefined);
});
