import assert from "node:assert/strict";
import { canReadTokenEnv, tokenEnvNotRead, tokenFromEnv, unauthorizedHint } from "./token.ts";

Deno.test("a 401 without a token names --allow-env=LOGBOOM_TOKEN unless env permission is granted", () => {
  const hint = unauthorizedHint(false, "-token");
  if (canReadTokenEnv()) assert.equal(hint, "no token was sent: pass -token or set LOGBOOM_TOKEN");
  else {
    assert.equal(
      hint,
      "no token was sent; env permission for LOGBOOM_TOKEN is not granted, so a token set there " +
        "is not read: run with --allow-env=LOGBOOM_TOKEN or pass -token",
    );
  }
});

Deno.test("a 401 with a token says it was refused and where it came from", () => {
  assert.equal(
    unauthorizedHint(true, "token in the agent's config"),
    "the server does not accept the token sent (from token in the agent's config or LOGBOOM_TOKEN)",
  );
  assert.match(tokenEnvNotRead("the config's token"), /or pass the config's token$/);
});

Deno.test("tokenFromEnv reads LOGBOOM_TOKEN only with permission", () => {
  if (!canReadTokenEnv()) {
    assert.equal(tokenFromEnv(), "");
    return;
  }
  const before = Deno.env.get("LOGBOOM_TOKEN");
  try {
    Deno.env.set("LOGBOOM_TOKEN", "s3cret");
    assert.equal(tokenFromEnv(), "s3cret");
    Deno.env.delete("LOGBOOM_TOKEN");
    assert.equal(tokenFromEnv(), "");
  } finally {
    if (before === undefined) Deno.env.delete("LOGBOOM_TOKEN");
    else Deno.env.set("LOGBOOM_TOKEN", before);
  }
});
