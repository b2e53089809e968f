/**
 * What a reload changes: {@linkcode planReload} compares the running config with the new one.
 * Inputs are added, removed or changed one by one, and `log_level` is applied; the HTTP API, the
 * sinks, `net` and `storage` are not rebuilt while running, so a new config that changes them is
 * refused as a whole (the running one stays) with the reason.
 *
 * @module
 */

import type { ServerConfig } from "./server_config.ts";

/** The plan of a reload. */
export interface ReloadPlan {
  /** Why the new config cannot be applied while running; the others are then empty. */
  refused?: string;
  /** Inputs to build. */
  added: string[];
  /** Inputs to stop. */
  removed: string[];
  /** Inputs whose values changed: updated in place, or rebuilt. */
  changed: string[];
  /** Inputs that keep running untouched. */
  unchanged: string[];
  /** Whether `log_level` changed. */
  logLevel: boolean;
}

/** The sections that need a restart to change. */
const FIXED = ["http", "sinks", "net", "storage"] as const;

/** Compares the running config with `next`. */
export function planReload(running: ServerConfig, next: ServerConfig): ReloadPlan {
  const plan: ReloadPlan = { added: [], removed: [], changed: [], unchanged: [], logLevel: false };
  const fixed = FIXED.filter((section) => !same(running[section], next[section]));
  if (fixed.length > 0) {
    plan.refused = `${fixed.join(", ")} changed, and only inputs and log_level are applied ` +
      "while running: restart logboom to apply the rest";
    return plan;
  }
  plan.logLevel = running.log_level !== next.log_level;
  for (const [name, input] of Object.entries(next.inputs)) {
    const before = running.inputs[name];
    if (before === undefined) plan.added.push(name);
    else if (same(before, input)) plan.unchanged.push(name);
    else plan.changed.push(name);
  }
  plan.removed = Object.keys(running.inputs).filter((name) => !(name in next.inputs));
  return plan;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
