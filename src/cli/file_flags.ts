/**
 * The flags of the files written, shared by `serve` (its file sink) and `logboom store` (which
 * writes the files behind JetStream): format, rotation, retention and open files. `-logFile`,
 * `-fsync` and `-queueBytes` stay each command's own (their defaults differ).
 *
 * @module
 */

import type { FileFormat } from "../store/file_sink.ts";
import {
  type FlagSpecs,
  ifGiven,
  parseBytes,
  parseChoice,
  parseCount,
  parseDurationFlag,
} from "./flags.ts";

const FORMATS: readonly FileFormat[] = ["raw", "json"];

/** Flags of the files, merged into `serve`'s and `store`'s. */
export const FILE_FLAGS: FlagSpecs = {
  format: {
    type: "string",
    value: "FORMAT",
    default: "raw",
    help: 'raw (lines as received) or json ({"ts","source","host","line"} per line)',
  },
  rotateSize: {
    type: "string",
    value: "BYTES",
    help: "Rotate a file before it grows past this size, e.g. 100MiB",
  },
  rotateEvery: {
    type: "string",
    value: "DURATION",
    help: "Rotate files at each multiple of this period in UTC, e.g. 24h (at midnight UTC)",
  },
  compress: { type: "bool", help: "Gzip rotated files in the background" },
  keep: { type: "string", value: "N", help: "Keep this many rotated files per output" },
  maxAge: {
    type: "string",
    value: "DURATION",
    help: "Delete rotated files older than this, e.g. 7d",
  },
  maxOpenFiles: {
    type: "string",
    value: "N",
    default: "1024",
    help: "Most log files open at once; the least recently used idle ones are closed",
  },
};

/** What {@linkcode FILE_FLAGS} set. */
export interface FileSettings {
  /** How lines are stored. */
  format: FileFormat;
  /** Rotation by size, in bytes. */
  rotateBytes?: number;
  /** Rotation by time, in ms. */
  rotateEveryMs?: number;
  /** Whether rotated files are gzipped. */
  compress: boolean;
  /** Rotated files kept per output. */
  keep?: number;
  /** Age past which rotated files are deleted, in ms. */
  maxAgeMs?: number;
  /** Most log files open at once. */
  maxOpenFiles: number;
}

/** Parses {@linkcode FILE_FLAGS} out of parsed flag values; throws `FlagError` naming the flag. */
export function parseFileFlags(values: Record<string, string | boolean>): FileSettings {
  return {
    format: parseChoice("format", values.format as string, { choices: FORMATS }),
    rotateBytes: ifGiven(values.rotateSize, (v) => parseBytes("rotateSize", v)),
    rotateEveryMs: ifGiven(values.rotateEvery, (v) => parseDurationFlag("rotateEvery", v)),
    compress: values.compress === true,
    keep: ifGiven(values.keep, (v) => parseCount("keep", v)),
    maxAgeMs: ifGiven(values.maxAge, (v) => parseDurationFlag("maxAge", v)),
    maxOpenFiles: parseCount("maxOpenFiles", values.maxOpenFiles as string, { min: 1 }),
  };
}
