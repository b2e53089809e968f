/**
 * The `tcp` input: newline-delimited lines over TCP (`ingest/tcp.ts`), as `-port` and `-host`
 * configure it.
 *
 * @module
 */

import { TcpInput } from "../../ingest/tcp.ts";
import type { Input, InputCloseOptions } from "../../pipeline/input.ts";
import { untilAborted } from "../../pipeline/input.ts";
import { formatHostPort, type HostPort } from "../../units.ts";
import { defineInput, listenError } from "../component.ts";
import type { KeyTable } from "../keys.ts";

/** The keys of a `tcp` input. */
export const TCP_KEYS = {
  address: {
    type: "address",
    default: "0.0.0.0:8080",
    flag: ["host", "port"],
    doc: "Where to listen for newline-delimited lines (the flags -host and -port)",
  },
  max_line: {
    type: "size",
    default: "1MiB",
    flag: "maxLine",
    doc: "Longer lines are split into pieces of this size, never dropped",
  },
  source: {
    type: "string",
    default: "tcp",
    doc: "The source its lines are filed under ({source} in a path), so that several tcp inputs " +
      "can file theirs apart",
    check: (source) =>
      /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/.test(source)
        ? undefined
        : "must be 1 to 64 letters, digits, _, - or ., not starting with .",
  },
} as const satisfies KeyTable;

/** The `tcp` input component. */
export const tcpInput = defineInput({
  type: "tcp",
  doc: "Newline-delimited lines over TCP, one batch per read; a full queue pushes back on senders",
  keys: TCP_KEYS,
  listens: (values) => [{ transport: "tcp", address: values.address }],
  // Connections take the idle timeout and whether a sink reads line ends, in place.
  uses: ["idle_timeout", "reads"],
  update(input, values) {
    // The line limit applies to connections accepted from now on; another address needs
    // another socket, another source another input (connections file their lines as they began).
    if (
      !(input instanceof TcpComponent) || input.bound !== formatHostPort(values.address) ||
      input.source !== values.source
    ) {
      return undefined;
    }
    return () => input.maxLine = values.max_line;
  },
  adapt(input, context) {
    if (!(input instanceof TcpComponent)) return undefined;
    return () => {
      input.idleTimeoutMs = context.net.idle_timeout;
      input.lineEnds = context.reads.lineEnds ?? false;
    };
  },
  build(name, values, context) {
    const address = values.address;
    try {
      const input = TcpInput.listen({
        hostname: address.hostname,
        port: address.port,
        maxLine: values.max_line,
        gate: context.gate,
        idleTimeoutMs: context.net.idle_timeout,
        source: values.source,
        input: name,
        lineEnds: context.reads.lineEnds ?? false,
      }, context.router);
      return Promise.resolve(new TcpComponent(name, input, address, values.source));
    } catch (err) {
      return Promise.reject(
        listenError(err, address, context.say(`inputs.${name}.address`, "port N")),
      );
    }
  },
});

/** A {@linkcode TcpInput} as an {@linkcode Input}. */
class TcpComponent implements Input {
  readonly type = "tcp";
  readonly name: string;
  readonly address: string;
  /** The address as configured (port 0 stays 0), to tell whether a reload keeps it. */
  readonly bound: string;
  /** The source its lines are filed under. */
  readonly source: string;
  readonly #input: TcpInput;

  constructor(name: string, input: TcpInput, configured: HostPort, source: string) {
    this.name = name;
    this.#input = input;
    this.address = `tcp://${formatHostPort(input.addr)}`;
    this.bound = formatHostPort(configured);
    this.source = source;
  }

  /** The line limit of connections accepted from now on. */
  set maxLine(bytes: number) {
    this.#input.maxLine = bytes;
  }

  /** The idle timeout, for open connections too. */
  set idleTimeoutMs(ms: number) {
    this.#input.idleTimeoutMs = ms;
  }

  /** Whether batches come with their lines' ends, from the next read of each connection on. */
  set lineEnds(on: boolean) {
    this.#input.lineEnds = on;
  }

  stats(): Record<string, number> {
    return { connections: this.#input.connections };
  }

  close(options: InputCloseOptions = {}): Promise<void> {
    return untilAborted(this.#input.close(), options.signal);
  }
}
