/**
 * Small helpers shared across folders.
 *
 * @module
 */

/** The message of an error, or the value as text: for log lines and one-line startup errors. */
export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
