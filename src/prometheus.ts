/**
 * The Prometheus text format (version 0.0.4), written in one place: the server's `/metrics`, the
 * agents' part of it, and the agent's own metrics endpoint all use {@linkcode PrometheusWriter},
 * so label values are escaped the same way everywhere.
 *
 * @module
 */

/** The `Content-Type` of a metrics page. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A metric family's type. */
export type MetricType = "counter" | "gauge" | "histogram";

/** Label names and values of one sample, in the order they are written. */
export type Labels = Readonly<Record<string, string | number>>;

/** What {@linkcode PrometheusWriter.histogram} reads of a histogram. */
export interface HistogramSnapshot {
  /** Upper bounds of the buckets, ascending. */
  readonly bounds: readonly number[];
  /** Observations at or below each bound. */
  cumulative(): readonly number[];
  /** Observations in all. */
  readonly count: number;
  /** Their sum. */
  readonly sum: number;
}

/**
 * Escapes a label value as the text format asks: backslash, double quote and newline.
 *
 * @example
 * ```ts
 * escapeLabelValue('a"b'); // 'a\\"b'
 * ```
 */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/**
 * Writes a metrics page: declare a family, then its samples. Samples of a family must follow its
 * declaration with no other family between (the format asks for them grouped).
 *
 * @example
 * ```ts
 * const out = new PrometheusWriter();
 * out.family("logboom_received_lines_total", "counter", "Lines received, by source.");
 * out.sample({ source: "nginx" }, 42);
 * out.text(); // "# HELP ...\n# TYPE ... counter\nlogboom_received_lines_total{source=\"nginx\"} 42\n"
 * ```
 */
export class PrometheusWriter {
  #text = "";
  #name = "";

  /**
   * Declares a family: its `# HELP` line (when `help` is given) and its `# TYPE` line.
   *
   * @param name the metric name, e.g. `logboom_received_lines_total`.
   * @param type counter, gauge or histogram.
   * @param help one line of doc; newlines and backslashes are escaped.
   */
  family(name: string, type: MetricType, help?: string): void {
    this.#name = name;
    if (help !== undefined) {
      this.#text += `# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n`;
    }
    this.#text += `# TYPE ${name} ${type}\n`;
  }

  /**
   * One sample of the family declared last.
   *
   * @param labels label names and values (values are escaped here).
   * @param value the number; NaN and infinities as the format spells them.
   * @param suffix appended to the family's name, e.g. `_bucket`.
   */
  sample(labels: Labels, value: number, suffix = ""): void {
    this.#text += `${this.#name}${suffix}${formatLabels(labels)} ${formatValue(value)}\n`;
  }

  /** A histogram's samples: cumulative `_bucket`s with their `le`, `_sum` and `_count`. */
  histogram(labels: Labels, histogram: HistogramSnapshot): void {
    const cumulative = histogram.cumulative();
    histogram.bounds.forEach((bound, i) => {
      this.sample({ ...labels, le: String(bound) }, cumulative[i], "_bucket");
    });
    this.sample({ ...labels, le: "+Inf" }, histogram.count, "_bucket");
    this.sample(labels, histogram.sum, "_sum");
    this.sample(labels, histogram.count, "_count");
  }

  /** The page written so far. */
  text(): string {
    return this.#text;
  }
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(String(v))}"`).join(",")}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
