/**
 * The `syslog` input: syslog over TCP, UDP and TLS (`ingest/syslog.ts`), each listener optional;
 * `-syslog ADDR:PORT` sets TCP and UDP at one address.
 *
 * @module
 */

import { canRead } from "../../_util.ts";
import { SyslogInput, SyslogListenError } from "../../ingest/syslog.ts";
import type { Input, InputCloseOptions } from "../../pipeline/input.ts";
import { untilAborted } from "../../pipeline/input.ts";
import { DEFAULT_LABELS } from "../../store/path_template.ts";
import { MAX_MAX_MESSAGE, MIN_MAX_MESSAGE } from "../../syslog/frame.ts";
import { formatHostPort, type HostPort } from "../../units.ts";
import { type BatchReads, defineInput, type Listener, listenError } from "../component.ts";
import { keyPath, type KeyTable, type Values } from "../keys.ts";
import { receiveBufferKey, unstableNetMissing } from "./udp.ts";

/** The keys of a `syslog` input. */
export const SYSLOG_KEYS = {
  tcp: {
    type: "address",
    flag: "syslog",
    doc: "Where to listen for syslog over TCP: octet counting (RFC 6587) or LF, decided per frame",
  },
  udp: {
    type: "address",
    flag: "syslog",
    doc: "Where to listen for syslog over UDP, one message per datagram (RFC 5426)",
  },
  udp_receive_buffer: receiveBufferKey("udpReceiveBuffer"),
  tls: {
    type: "address",
    doc: "Where to listen for syslog over TLS (RFC 5425), with tls_cert and tls_key",
  },
  tls_cert: {
    type: "string",
    path: true,
    nonEmpty: true,
    doc: "PEM file of the TLS certificate chain",
  },
  tls_key: {
    type: "string",
    path: true,
    nonEmpty: true,
    doc: "PEM file of the TLS private key",
  },
  max_message: {
    type: "size",
    default: "64KiB",
    min: MIN_MAX_MESSAGE,
    max: MAX_MAX_MESSAGE,
    doc: "Longer messages are stored in pieces of this size (counted), never dropped",
  },
  parse: {
    type: "choice",
    choices: ["auto", "always", "never"],
    default: "auto",
    doc: "Parse each message's header (host, app, facility, severity, time): auto when a sink " +
      "reads them ({host}, {app}, {facility}, {severity} in a path, the json format)",
  },
  time_zone: {
    type: "string",
    default: "UTC",
    doc: 'Zone of RFC 3164 dates, which have none: UTC, local, or an offset such as "+01:00"',
    check: (value) =>
      timeZone(value) === undefined
        ? 'must be UTC, local or an offset such as "+01:00"'
        : undefined,
  },
} as const satisfies KeyTable;

type SyslogValues = Values<typeof SYSLOG_KEYS>;

/** The `syslog` input component. */
export const syslogInput = defineInput({
  type: "syslog",
  doc: "Syslog over TCP, UDP and TLS; messages stored as received, parsed only for the sinks " +
    "that read host, app, facility, severity or time",
  keys: SYSLOG_KEYS,
  check(values, at, problems) {
    if (values.tcp === undefined && values.udp === undefined && values.tls === undefined) {
      problems.add(at, "needs at least one of tcp, udp and tls");
    }
    if (values.udp_receive_buffer !== undefined && values.udp === undefined) {
      problems.add(keyPath(at, "udp_receive_buffer"), "is for the UDP listener: set udp too");
    }
    if (values.tls !== undefined) {
      for (const key of ["tls_cert", "tls_key"] as const) {
        if (values[key] === undefined) problems.add(keyPath(at, key), "is needed with tls");
      }
    }
  },
  refuse(values) {
    if (values.udp !== undefined) {
      const missing = unstableNetMissing();
      if (missing !== undefined) return missing;
    }
    for (const path of [values.tls_cert, values.tls_key]) {
      if (values.tls !== undefined && path !== undefined && !canRead(path)) {
        return `Syslog over TLS reads "${path}": run with --allow-read=${path}`;
      }
    }
  },
  listens: (values) => listeners(values),
  // Whether it parses depends on what the sinks read; connections take the idle timeout: a
  // reload that changes either rebuilds it.
  uses: ["reads", "idle_timeout"],
  update(input, values) {
    // Every listener keeps its address (and TLS its files): the message limit applies to what
    // comes next, a new UDP buffer size at once. Anything else (going back to the system's
    // buffer too) needs another input.
    if (!(input instanceof SyslogComponent) || input.bound !== bound(values)) return undefined;
    const buffer = values.udp_receive_buffer;
    if (buffer === undefined && input.udpReceiveBuffer !== undefined) return undefined;
    return () => {
      input.maxMessage = values.max_message;
      if (buffer !== undefined && buffer !== input.udpReceiveBuffer) {
        input.udpReceiveBuffer = buffer;
      }
    };
  },
  build(name, values, context) {
    const parse = values.parse === "always" ||
      (values.parse === "auto" && (wantsLabels(context.reads) || context.reads.times));
    try {
      const input = SyslogInput.listen({
        name,
        tcp: values.tcp,
        udp: values.udp,
        tls: values.tls === undefined
          ? undefined
          : { ...values.tls, certFile: values.tls_cert!, keyFile: values.tls_key! },
        labels: parse,
        times: parse && context.reads.times,
        levels: context.reads.levels ?? false,
        timeZone: timeZone(values.time_zone),
        maxMessage: values.max_message,
        gate: context.gate,
        idleTimeoutMs: context.net.idle_timeout,
        udpOptions: { receiveBuffer: values.udp_receive_buffer },
      }, context.router);
      return Promise.resolve(
        new SyslogComponent(name, input, bound(values), values.udp_receive_buffer),
      );
    } catch (err) {
      if (!(err instanceof SyslogListenError)) return Promise.reject(err);
      const { transport, address } = err;
      const where = transport === "tls"
        ? `inputs.${name}.tls`
        : context.say(`inputs.${name}.${transport}`, "syslog ADDR:PORT");
      return Promise.reject(listenError(err.cause, address, where, transport));
    }
  },
});

/** Whether the sinks read a label syslog gives. */
function wantsLabels(reads: BatchReads): boolean {
  return reads.labels.has("host") || DEFAULT_LABELS.some((label) => reads.labels.has(label));
}

function listeners(values: SyslogValues): Listener[] {
  const out: Listener[] = [];
  if (values.tcp !== undefined) out.push({ transport: "tcp", address: values.tcp });
  if (values.udp !== undefined) out.push({ transport: "udp", address: values.udp });
  if (values.tls !== undefined) out.push({ transport: "tcp", address: values.tls });
  return out;
}

/** What a reload must keep for the input to keep its sockets. */
function bound(values: SyslogValues): string {
  const at = (address: HostPort | undefined) =>
    address === undefined ? "-" : formatHostPort(address);
  return [
    at(values.tcp),
    at(values.udp),
    at(values.tls),
    values.tls_cert,
    values.tls_key,
    values.parse,
    values.time_zone,
  ].join(" ");
}

/** A zone from its key: "UTC", "local" or minutes east of UTC; `undefined` when invalid. */
function timeZone(value: string): "UTC" | "local" | number | undefined {
  if (value === "UTC" || value === "local") return value;
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(value);
  if (m === null) return undefined;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  if (Number(m[2]) > 18 || Number(m[3]) > 59) return undefined;
  return m[1] === "-" ? -minutes : minutes;
}

/** A {@linkcode SyslogInput} as an {@linkcode Input}. */
class SyslogComponent implements Input {
  readonly type = "syslog";
  readonly name: string;
  readonly address: string;
  /** What the listeners were configured with, to tell whether a reload keeps them. */
  readonly bound: string;
  readonly #input: SyslogInput;
  #udpReceiveBuffer: number | undefined;

  constructor(name: string, input: SyslogInput, configured: string, udpReceiveBuffer?: number) {
    this.name = name;
    this.#input = input;
    this.#udpReceiveBuffer = udpReceiveBuffer;
    const shown: string[] = [];
    if (input.tcpAddr) shown.push(`syslog+tcp://${formatHostPort(input.tcpAddr)}`);
    if (input.udpAddr) shown.push(`syslog+udp://${formatHostPort(input.udpAddr)}`);
    if (input.tlsAddr) shown.push(`syslog+tls://${formatHostPort(input.tlsAddr)}`);
    this.address = shown.join(", ");
    this.bound = configured;
  }

  /** Longer messages are split, from the next connection and datagram on. */
  set maxMessage(bytes: number) {
    this.#input.maxMessage = bytes;
  }

  /** The UDP receive buffer asked (`undefined`: the system's); setting it applies it now. */
  get udpReceiveBuffer(): number | undefined {
    return this.#udpReceiveBuffer;
  }

  set udpReceiveBuffer(bytes: number) {
    this.#udpReceiveBuffer = bytes;
    this.#input.setUdpReceiveBuffer(bytes);
  }

  stats(): Record<string, number> {
    return this.#input.counters();
  }

  close(options: InputCloseOptions = {}): Promise<void> {
    return untilAborted(this.#input.close(), options.signal);
  }
}
