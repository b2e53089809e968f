/**
 * For tests: a webhook receiver on a loopback port below the ephemeral range, which records every
 * JSON body it is sent and answers with the statuses it is told, in turn.
 *
 * @module
 */

import { bindFreePort } from "../../tests/_server.ts";

/** A local webhook receiver. */
export class Receiver {
  /** Every body received, parsed, in order (answered or not). */
  readonly bodies: Record<string, unknown>[] = [];
  /** Statuses to answer with, in turn; once used up, `200`. */
  readonly statuses: number[] = [];
  /** Headers for the next answer, e.g. `{ "retry-after": "30" }`; used once. */
  headers: Record<string, string> = {};
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  constructor() {
    this.#server = bindFreePort((port) =>
      Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
        this.bodies.push(await req.json());
        const headers = this.headers;
        this.headers = {};
        return new Response(null, { status: this.statuses.shift() ?? 200, headers });
      })
    );
  }

  /** The URL to POST to. */
  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}/hook`;
  }

  /** Stops listening. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#server.shutdown();
  }
}
