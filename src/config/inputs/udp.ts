/**
 * The `udp` input: raw lines over UDP, one or more per datagram (`ingest/udp.ts`), as `-udp`
 * configures it.
 *
 * @module
 */

import { UdpInput } from "../../ingest/udp.ts";
import { MAX_RECEIVE_BUFFER, MIN_RECEIVE_BUFFER } from "../../net/socket_buffer.ts";
import type { Input, InputCloseOptions } from "../../pipeline/input.ts";
import { untilAborted } from "../../pipeline/input.ts";
import { MAX_MAX_MESSAGE, MIN_MAX_MESSAGE } from "../../syslog/frame.ts";
import { formatHostPort, type HostPort } from "../../units.ts";
import { defineInput, listenError } from "../component.ts";
import type { KeyTable } from "../keys.ts";

/** The keys of a `udp` input. */
export const UDP_KEYS = {
  address: {
    type: "address",
    required: true,
    flag: "udp",
    doc: "Where to listen for raw lines over UDP, one or more per datagram",
  },
  max_line: {
    type: "size",
    default: "64KiB",
    min: MIN_MAX_MESSAGE,
    max: MAX_MAX_MESSAGE,
    doc: "Longer lines are split into pieces of this size (a datagram holds at most 64 KiB)",
  },
  receive_buffer: receiveBufferKey("udpReceiveBuffer"),
} as const satisfies KeyTable;

/**
 * The key of a UDP socket's receive buffer (the `udp` input's `receive_buffer`, the syslog input's
 * `udp_receive_buffer`); `flag` is the `serve` flag that sets it.
 */
export function receiveBufferKey<F extends string>(flag: F) {
  return {
    type: "size",
    min: MIN_RECEIVE_BUFFER,
    max: MAX_RECEIVE_BUFFER,
    flag,
    doc: "Receive buffer of the UDP socket as ss -m shows it (rb), e.g. 8MiB; needs --allow-ffi " +
      "(else a warning), capped by net.core.rmem_max unless root. Unset: net.core.rmem_default",
  } as const;
}

/** The `udp` input component. */
export const udpInput = defineInput({
  type: "udp",
  doc: "Raw lines over UDP, batched across datagrams; while the queue is full the socket is " +
    "not read and the kernel drops (counted in /metrics)",
  keys: UDP_KEYS,
  refuse: () => unstableNetMissing(),
  listens: (values) => [{ transport: "udp", address: values.address }],
  update(input, values) {
    // Another address needs another socket, and so does going back to the system's receive
    // buffer; the line limit applies to the next datagram, a new buffer size at once.
    if (!(input instanceof UdpComponent) || input.bound !== formatHostPort(values.address)) {
      return undefined;
    }
    const buffer = values.receive_buffer;
    if (buffer === undefined && input.receiveBuffer !== undefined) return undefined;
    return () => {
      input.maxLine = values.max_line;
      if (buffer !== undefined && buffer !== input.receiveBuffer) input.receiveBuffer = buffer;
    };
  },
  build(name, values, context) {
    const address = values.address;
    try {
      const input = UdpInput.listen({
        name,
        hostname: address.hostname,
        port: address.port,
        maxLine: values.max_line,
        receiveBuffer: values.receive_buffer,
      }, context.router);
      return Promise.resolve(new UdpComponent(name, input, address, values.receive_buffer));
    } catch (err) {
      const where = context.say(`inputs.${name}.address`, "udp ADDR:PORT");
      return Promise.reject(listenError(err, address, where, "udp"));
    }
  },
});

/** Why UDP cannot run in this process: Deno's `--unstable-net` is off. */
export function unstableNetMissing(): string | undefined {
  if (typeof Deno.listenDatagram === "function") return undefined;
  return "UDP needs Deno's --unstable-net flag (deno.json sets it; add it when running a bundle)";
}

/** A {@linkcode UdpInput} as an {@linkcode Input}. */
class UdpComponent implements Input {
  readonly type = "udp";
  readonly name: string;
  readonly address: string;
  /** The address as configured (port 0 stays 0), to tell whether a reload keeps it. */
  readonly bound: string;
  readonly #input: UdpInput;
  #receiveBuffer: number | undefined;

  constructor(name: string, input: UdpInput, configured: HostPort, receiveBuffer?: number) {
    this.name = name;
    this.#input = input;
    this.address = `udp://${formatHostPort(input.addr)}`;
    this.bound = formatHostPort(configured);
    this.#receiveBuffer = receiveBuffer;
  }

  /** The line limit from the next datagram on. */
  set maxLine(bytes: number) {
    this.#input.maxLine = bytes;
  }

  /** The receive buffer asked (`undefined`: the system's); setting it applies it now. */
  get receiveBuffer(): number | undefined {
    return this.#receiveBuffer;
  }

  set receiveBuffer(bytes: number) {
    this.#receiveBuffer = bytes;
    this.#input.setReceiveBuffer(bytes);
  }

  stats(): Record<string, number> {
    return this.#input.counters();
  }

  close(options: InputCloseOptions = {}): Promise<void> {
    return untilAborted(this.#input.close(), options.signal);
  }
}
