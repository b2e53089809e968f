import assert from "node:assert/strict";
import { checkOrigin } from "./origin.ts";

function req(headers: Record<string, string>): Request {
  return new Request("http://127.0.0.1:8081/api/v1/tail", { headers });
}

Deno.test("checkOrigin allows no Origin, the server's own, and listed ones", () => {
  assert.equal(checkOrigin(req({ host: "127.0.0.1:8081" })), undefined);
  assert.equal(
    checkOrigin(req({ host: "127.0.0.1:8081", origin: "http://127.0.0.1:8081" })),
    undefined,
  );
  assert.equal(
    checkOrigin(req({ host: "logs.example:443", origin: "https://logs.example:443" })),
    undefined,
  );
  const listed = { allowedOrigins: ["https://ui.example"] };
  assert.equal(checkOrigin(req({ host: "a:1", origin: "https://ui.example" }), listed), undefined);
  assert.equal(
    checkOrigin(req({ host: "a:1", origin: "https://x" }), { allowedOrigins: ["*"] }),
    undefined,
  );
});

Deno.test("checkOrigin refuses other sites, null origins and rebound host names", () => {
  assert.match(
    checkOrigin(req({ host: "127.0.0.1:8081", origin: "https://evil.example" }))!,
    /Origin/,
  );
  assert.match(checkOrigin(req({ host: "127.0.0.1:8081", origin: "null" }))!, /Origin "null"/);
  assert.match(
    checkOrigin(req({ host: "127.0.0.1:8081", origin: "http://127.0.0.1:9999" }))!,
    /Origin/,
  );
  const loopbackOnly = { loopbackHostOnly: true };
  assert.equal(checkOrigin(req({ host: "localhost:8081" }), loopbackOnly), undefined);
  assert.match(checkOrigin(req({ host: "evil.example:8081" }), loopbackOnly)!, /Host "evil/);
});
