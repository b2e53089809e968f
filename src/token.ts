/**
 * The bearer token as both sides see it: where it comes from when no flag gives it (env
 * `LOGBOOM_TOKEN`, read only with permission) and what to tell a user whose request was refused
 * 401. A low module: client commands (`send`, `tail`), the agent and the server all use it; the
 * server's check of a token is in `api/auth.ts`.
 *
 * @module
 */

/** The environment variable that holds the token when `-token` is not given. */
export const TOKEN_ENV = "LOGBOOM_TOKEN";

/**
 * The token from {@linkcode TOKEN_ENV}, read only when env permission for it is granted (so the
 * design card's `--allow-net --allow-write` never prompts); `""` when unset or not permitted.
 */
export function tokenFromEnv(): string {
  return canReadTokenEnv() ? Deno.env.get(TOKEN_ENV) ?? "" : "";
}

/** Whether env permission for {@linkcode TOKEN_ENV} is granted, so a token set there is read. */
export function canReadTokenEnv(): boolean {
  return Deno.permissions.querySync({ name: "env", variable: TOKEN_ENV }).state === "granted";
}

/**
 * The sentence that says a {@linkcode TOKEN_ENV} set in the environment is not read, and how to
 * give a token instead.
 *
 * @param elsewhere the other place a token can come from. Default `-token`.
 */
export function tokenEnvNotRead(elsewhere = "-token"): string {
  return `env permission for ${TOKEN_ENV} is not granted, so a token set there is not read: ` +
    `run with --allow-env=${TOKEN_ENV} or pass ${elsewhere}`;
}

/** {@linkcode tokenEnvNotRead} for the commands that take `-token`. */
export const TOKEN_ENV_NOT_READ: string = tokenEnvNotRead();

/**
 * Why a server answered 401, as far as the client can tell, and what to do: the token sent was
 * refused; or none was sent, and, without env permission for {@linkcode TOKEN_ENV}, one set there
 * was not read (with the permission to grant).
 *
 * @param sent whether the request carried a token.
 * @param elsewhere the other place a token can come from, e.g. `-token` or the agent's config.
 *
 * @example
 * ```ts
 * io.notice(`Server answered 401: ${reason} (${unauthorizedHint(token !== "", "-token")})`);
 * ```
 */
export function unauthorizedHint(sent: boolean, elsewhere: string): string {
  if (sent) return `the server does not accept the token sent (from ${elsewhere} or ${TOKEN_ENV})`;
  return canReadTokenEnv()
    ? `no token was sent: pass ${elsewhere} or set ${TOKEN_ENV}`
    : `no token was sent; ${tokenEnvNotRead(elsewhere)}`;
}
