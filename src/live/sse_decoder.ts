/**
 * Parsing of a Server-Sent Events stream, as the HTML standard's EventSource does it: for clients
 * (`logboom tail`, the benchmark) that read `/api/v1/tail` with `fetch`.
 *
 * @module
 */

/** One dispatched event. */
export interface SseEvent {
  /** The event name; `message` when the stream named none. */
  event: string;
  /** The data fields joined with newlines. */
  data: string;
  /** The last event id the stream set (it carries over events that set none); `""` if never. */
  lastEventId: string;
  /** The `retry:` reconnection delay in ms, when this event's block set one. */
  retry?: number;
}

/**
 * An incremental event-stream parser: push text as it arrives, get the events it completed.
 * Chunks may split lines (or a CR LF pair) anywhere.
 *
 * @example
 * ```ts
 * const parser = new SseParser();
 * parser.push("id: 1\ndata: a\n"); // []
 * parser.push("\n"); // [{ event: "message", data: "a", lastEventId: "1" }]
 * ```
 */
export class SseParser {
  #buffer = "";
  #data: string[] = [];
  #event = "";
  #id: string;
  #retry: number | undefined;

  /** @param lastEventId the cursor to start with, e.g. the one a reconnecting client sent. */
  constructor(lastEventId = "") {
    this.#id = lastEventId;
  }

  /** Parses `text`; returns the events it completed, oldest first. */
  push(text: string): SseEvent[] {
    const events: SseEvent[] = [];
    const buffer = this.#buffer + text;
    let start = 0;
    for (;;) {
      const cr = buffer.indexOf("\r", start);
      const lf = buffer.indexOf("\n", start);
      if (cr === -1 && lf === -1) break;
      let end: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        // A CR at the very end may be the first half of CR LF: wait for the next chunk.
        if (cr === buffer.length - 1) break;
        end = cr;
        next = buffer[cr + 1] === "\n" ? cr + 2 : cr + 1;
      } else {
        end = lf;
        next = lf + 1;
      }
      this.#line(buffer.slice(start, end), events);
      start = next;
    }
    this.#buffer = buffer.slice(start);
    return events;
  }

  /** Ends the stream. An event is dispatched only at a blank line, so a cut one is dropped. */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.#buffer.endsWith("\r")) this.#line(this.#buffer.slice(0, -1), events);
    this.#buffer = "";
    return events;
  }

  #line(text: string, events: SseEvent[]): void {
    if (text === "") {
      if (this.#data.length > 0) {
        const event: SseEvent = {
          event: this.#event || "message",
          data: this.#data.join("\n"),
          lastEventId: this.#id,
        };
        if (this.#retry !== undefined) event.retry = this.#retry;
        events.push(event);
      }
      this.#data = [];
      this.#event = "";
      this.#retry = undefined;
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
    else if (field === "id" && !value.includes("\0")) this.#id = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.#retry = Number(value);
  }
}

/**
 * {@linkcode SseParser} as a stream: text in, events out.
 *
 * @example
 * ```ts
 * const res = await fetch(url, { headers: { accept: "text/event-stream" } });
 * const events = res.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new SseDecoderStream());
 * for await (const { event, data, lastEventId } of events) console.log(event, lastEventId, data);
 * ```
 */
export class SseDecoderStream extends TransformStream<string, SseEvent> {
  /** @param lastEventId the cursor to start with, e.g. the one a reconnecting client sent. */
  constructor(lastEventId = "") {
    const parser = new SseParser(lastEventId);
    super({
      transform(chunk, controller) {
        for (const event of parser.push(chunk)) controller.enqueue(event);
      },
      flush(controller) {
        for (const event of parser.end()) controller.enqueue(event);
      },
    });
  }
}
