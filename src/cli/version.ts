/**
 * logboom's version, from `deno.json`, imported into the module graph so that it is there in an
 * installed command and in a bundle too.
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };

/** The version in `deno.json`, e.g. `0.1.0`. */
export const VERSION: string = denoJson.version;
