/**
 * The `file` sink (`store/file_sink.ts`): lines appended to files named by a path template, with
 * rotation, compression and retention, as `-logFile` and the storage flags configure it.
 *
 * @module
 */

import { dirname } from "node:path";
import { canRead, describe } from "../../_util.ts";
import { logRoot } from "../../store/file_index.ts";
import { FileSink } from "../../store/file_sink.ts";
import { DEFAULT_LABELS, PathTemplate } from "../../store/path_template.ts";
import { type BatchReads, BuildError, defineSink } from "../component.ts";
import type { KeyTable, Values } from "../keys.ts";

/** The keys of a `file` sink. */
export const FILE_KEYS = {
  path: {
    type: "string",
    default: "aggregated_logs.txt",
    nonEmpty: true,
    path: true,
    flag: "logFile",
    doc: "File the lines are appended to, or a template with {source}, {host}, {date}, " +
      "syslog's {app}, {facility}, {severity}, a line's {level} and {fields.NAME} (one file " +
      "per value, a missing one is _); missing folders are created",
  },
  format: {
    type: "choice",
    choices: ["raw", "json"],
    default: "raw",
    flag: "format",
    doc: 'raw (lines as received) or json ({"ts","level","source","host","time","line",' +
      '"fields"} per line, level, time and fields where the line has them)',
  },
  fsync: {
    type: "choice",
    choices: ["never", "interval", "batch"],
    default: "interval",
    flag: "fsync",
    doc: "never, interval (each second) or batch (before each acknowledgement)",
  },
  queue_bytes: {
    type: "size",
    default: "64MiB",
    flag: "queueBytes",
    doc: "Bound of the queue in front of the files; when full, inputs push back on senders",
  },
  rotate_size: {
    type: "size",
    flag: "rotateSize",
    doc: "Rotate a file before it grows past this size, e.g. 100MiB",
  },
  rotate_every: {
    type: "duration",
    flag: "rotateEvery",
    doc: "Rotate files at each multiple of this period in UTC, e.g. 24h (at midnight UTC)",
  },
  compress: {
    type: "bool",
    default: false,
    flag: "compress",
    doc: "Gzip rotated files in the background",
  },
  keep: { type: "count", flag: "keep", doc: "Keep this many rotated files per output" },
  max_age: {
    type: "duration",
    flag: "maxAge",
    doc: "Delete rotated files older than this, e.g. 7d",
  },
  max_open_files: {
    type: "count",
    default: 1024,
    min: 1,
    flag: "maxOpenFiles",
    doc: "Most files open at once; the least recently used idle ones are closed",
  },
} as const satisfies KeyTable;

/** The values of a `file` sink. */
export type FileValues = Values<typeof FILE_KEYS>;

/** The `file` sink component. */
export const fileSink = defineSink({
  type: "file",
  doc: "Lines appended to files named by a path template; rotation, gzip and retention",
  keys: FILE_KEYS,
  refuse: checkStoragePermissions,
  async build(name, values, context) {
    let sink: FileSink;
    try {
      sink = await FileSink.open({
        marks: context.marks?.durable ? context.marks : undefined,
        path: values.path,
        fsync: values.fsync,
        queueBytes: values.queue_bytes,
        format: values.format,
        rotateBytes: values.rotate_size,
        rotateEveryMs: values.rotate_every,
        compress: values.compress,
        keep: values.keep,
        maxAgeMs: values.max_age,
        maxOpenFiles: values.max_open_files,
        // Rebuilt by a reload: a file both write is written once the old sink let it go.
        previous: context.previous?.sink instanceof FileSink ? context.previous.sink : undefined,
        // Time indexes for searches, where the log folder can be read (searching reads it).
        index: context.stateDir !== undefined && canRead(logRoot(values.path))
          ? { stateDir: context.stateDir }
          : undefined,
      });
    } catch (err) {
      throw new BuildError('Cannot open log file "{path}": {error}', {
        path: values.path,
        error: describe(err),
      }, { cause: err });
    }
    return {
      sink,
      metrics: () => ({ ...sink.stats, name }),
      queueBytes: values.queue_bytes,
      reads: readsOf(values),
      outputs: [values.path],
      reopen: () => sink.reopen(),
      fsync: values.fsync,
    };
  },
});

/**
 * What the sink reads of a batch: the labels its template names (and `host`), and a line's
 * level and fields when it names them; for the JSON format all of them and each line's time.
 */
function readsOf(values: FileValues): BatchReads {
  if (values.format === "json") {
    return {
      labels: new Set(["host", ...DEFAULT_LABELS]),
      times: true,
      levels: true,
      fields: true,
    };
  }
  const template = new PathTemplate(values.path);
  const labels = new Set(template.labels);
  if (template.placeholders.has("host")) labels.add("host");
  return {
    labels,
    times: false,
    levels: template.usesLevel,
    fields: template.fields.length > 0,
    fieldNames: new Set(template.fields),
  };
}

/**
 * Rotation renames files and retention lists their folder; Deno asks read permission for both.
 * Refusing to start beats failing at the first rotation.
 */
function checkStoragePermissions(values: FileValues): string | undefined {
  const tidies = values.rotate_size !== undefined || values.rotate_every !== undefined ||
    values.compress || values.keep !== undefined || values.max_age !== undefined;
  const path = values.path;
  const fixed = path.includes("{") ? path.slice(0, path.indexOf("{")) : path;
  const folder = dirname(fixed.endsWith("/") ? fixed + "x" : fixed);
  if (tidies && !canRead(folder)) {
    return `Rotation, compression and retention need read permission on "${folder}": ` +
      `run with --allow-read=${folder}`;
  }
}
