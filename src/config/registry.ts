/**
 * Every component, by the name a config's `type` gives it: the one place a new input or sink is
 * added (one import and one line), after which config files, `logboom validate` and the
 * reference page (`deno task config-docs`) know it.
 *
 * @module
 */

import type { InputComponent, SinkComponent } from "./component.ts";
import { httpInput } from "./inputs/http.ts";
import { syslogInput } from "./inputs/syslog.ts";
import { tcpInput } from "./inputs/tcp.ts";
import { udpInput } from "./inputs/udp.ts";
import { watchInput } from "./inputs/watch.ts";
import { fileSink } from "./sinks/file.ts";
import { liveSink } from "./sinks/live.ts";
import { postgresSink } from "./sinks/postgres.ts";
import { natsSink } from "./sinks/nats.ts";

/**
 * Input components by type. One with a `section` (the HTTP API) is configured in the top-level
 * section of that name, not under `inputs`.
 */
export const INPUTS: Readonly<Record<string, InputComponent>> = {
  tcp: tcpInput,
  http: httpInput,
  watch: watchInput,
  syslog: syslogInput,
  udp: udpInput,
};

/** Sink components by type. */
export const SINKS: Readonly<Record<string, SinkComponent>> = {
  file: fileSink,
  live: liveSink,
  nats: natsSink,
  postgres: postgresSink,
};

/** The input types a config may name under `inputs`. */
export function inputTypes(): string[] {
  return Object.values(INPUTS).filter((c) => c.section === undefined).map((c) => c.type);
}
