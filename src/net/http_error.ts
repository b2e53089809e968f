/**
 * The one HTTP error: a request the server refuses, with its status, a one-sentence reason for
 * the client and any headers the refusal needs (`Retry-After`, `Allow`). Thrown anywhere a
 * request is handled, and turned into its response in one place (std's `HttpError`, Hono's
 * `HTTPException`).
 *
 * @module
 */

/** Options of {@linkcode HttpError}. */
export interface HttpErrorOptions extends ErrorOptions {
  /** Headers the response carries, e.g. `{ "retry-after": "5" }`. Default none. */
  headers?: Readonly<Record<string, string>>;
}

/** The `Content-Type` of error bodies. */
export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

/**
 * A request answered with a 4xx or 5xx status and `{"error": "<message>"}`.
 *
 * @example
 * ```ts
 * try {
 *   if (req.method !== "POST") throw new HttpError(405, "Use POST", { headers: { allow: "POST" } });
 * } catch (err) {
 *   if (err instanceof HttpError) return err.response();
 *   throw err;
 * }
 * ```
 */
export class HttpError extends Error {
  /** The HTTP status to answer, 400 to 599. */
  readonly status: number;
  /** Headers the response carries besides its `Content-Type`. */
  readonly headers: Readonly<Record<string, string>>;

  /**
   * @param status e.g. 400, 413, 503.
   * @param message why, in one sentence, shown to the client.
   * @param options headers of the response, and the cause.
   */
  constructor(status: number, message: string, options: HttpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new RangeError(`An HTTP error status must be 400 to 599, got "${status}"`);
    }
    this.name = "HttpError";
    this.status = status;
    this.headers = options.headers ?? {};
  }

  /** The response: the status, `{"error": "<message>"}` as JSON and the headers. */
  response(): Response {
    return new Response(JSON.stringify({ error: this.message }) + "\n", {
      status: this.status,
      headers: { "content-type": JSON_CONTENT_TYPE, ...this.headers },
    });
  }
}
