/**
 * `POST /api/v1/rules/test`: transform rules tried on sample lines, for the web page, as
 * `logboom rules test` does on the command line (`transforms/tryout.ts`). Nothing is stored and
 * the server's own rules are not touched.
 *
 * The body is JSON: `config`, a config document as YAML or JSON text with a `transforms`
 * section (other sections are not read), or `transforms`, the section itself as an object; and
 * `lines` (a list of lines) or `text` (lines separated by `\n`); optionally `source` (default
 * `tcp`), which selects the pipelines, and `host`. The answer:
 * `{"pipelines": [...], "results": [{"line": 1, "text": "...", "pipelines": [...],
 * "dropped": false, "level": "warn", "fields": {...}}, ...]}`; a config with problems is a 400
 * with `{"error": ..., "problems": [{"path", "message"}]}`.
 *
 * @module
 */

import { concatBytes } from "../_util.ts";
import { formatProblem, Problems } from "../config/keys.ts";
import { HttpError, JSON_CONTENT_TYPE } from "../net/http_error.ts";
import { transformsOfDocument } from "../transforms/config.ts";
import { tryTransforms } from "../transforms/tryout.ts";

/** The largest body: sample lines for a page, not a log file. */
export const RULES_TEST_MAX_BODY = 1024 * 1024;

/** Answers one rules test request; never throws (a bad request is a 4xx answer). */
export async function rulesTestRoute(req: Request): Promise<Response> {
  if (req.method !== "POST") {
    await req.body?.cancel();
    return new HttpError(405, "Use POST", { headers: { allow: "POST" } }).response();
  }
  try {
    const body = parseBody(await readBody(req));
    const problems = new Problems();
    const doc = body.config === undefined
      ? { transforms: body.transforms }
      : await configDoc(body.config);
    const transforms = transformsOfDocument(doc, problems);
    if (transforms === undefined) return problemsResponse(problems);
    const results = tryTransforms(transforms, body.text, { source: body.source, host: body.host });
    return json(200, { pipelines: transforms.pipelines.map((p) => p.name), results });
  } catch (err) {
    if (err instanceof HttpError) return err.response();
    throw err;
  }
}

interface Body {
  config?: string;
  transforms?: unknown;
  text: string;
  source?: string;
  host?: string;
}

async function readBody(req: Request): Promise<string> {
  const length = Number(req.headers.get("content-length") ?? 0);
  if (length > RULES_TEST_MAX_BODY) {
    await req.body?.cancel();
    throw new HttpError(413, `A rules test is at most ${RULES_TEST_MAX_BODY} bytes`);
  }
  if (req.body === null) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > RULES_TEST_MAX_BODY) {
        throw new HttpError(413, `A rules test is at most ${RULES_TEST_MAX_BODY} bytes`);
      }
      chunks.push(value);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(concatBytes(chunks, size));
}

const USAGE = 'send {"config": "<YAML with a transforms section>" or "transforms": {...}, ' +
  '"lines": ["...", ...] or "text": "...", "source": "app"}';

function parseBody(text: string): Body {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new HttpError(400, `The body is not JSON: ${USAGE}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new HttpError(400, `The body must be a JSON object: ${USAGE}`);
  }
  const { config, transforms, lines, text: sample, source, host } = doc as Record<string, unknown>;
  if ((config === undefined) === (transforms === undefined)) {
    throw new HttpError(400, `Give config or transforms, one of them: ${USAGE}`);
  }
  if (config !== undefined && typeof config !== "string") {
    throw new HttpError(400, `config must be text (YAML or JSON): ${USAGE}`);
  }
  let joined: string;
  if (Array.isArray(lines) && sample === undefined) {
    if (!lines.every((line) => typeof line === "string")) {
      throw new HttpError(400, "lines must be a list of strings");
    }
    joined = lines.join("\n");
  } else if (typeof sample === "string" && lines === undefined) joined = sample;
  else throw new HttpError(400, `Give lines (a list) or text, one of them: ${USAGE}`);
  for (const [name, value] of [["source", source], ["host", host]] as const) {
    if (value !== undefined && (typeof value !== "string" || value === "")) {
      throw new HttpError(400, `${name} must be a non-empty string`);
    }
  }
  return {
    config: config as string | undefined,
    transforms,
    text: joined,
    source: source as string | undefined,
    host: host as string | undefined,
  };
}

async function configDoc(text: string): Promise<unknown> {
  // Loaded when asked: config/ builds the API (config/inputs/http.ts), so a static import of its
  // loader from here would be a cycle.
  const { ConfigError, parseConfigText } = await import("../config/load.ts");
  try {
    return parseConfigText(text, "config.yaml");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new HttpError(400, err.problems.map(formatProblem).join("; "));
  }
}

function problemsResponse(problems: Problems): Response {
  return json(400, {
    error: `The rules have ${problems.list.length} problem(s): ` +
      problems.list.map(formatProblem).join("; "),
    problems: problems.list,
  });
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": JSON_CONTENT_TYPE },
  });
}
