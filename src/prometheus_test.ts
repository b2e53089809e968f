import assert from "node:assert/strict";
import { escapeLabelValue, PrometheusWriter } from "./prometheus.ts";

Deno.test("escapeLabelValue escapes backslash, double quote and newline, nothing else", () => {
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  assert.equal(escapeLabelValue("é {x}=,"), "é {x}=,");
});

Deno.test("PrometheusWriter writes families, escaped labels and special values", () => {
  const out = new PrometheusWriter();
  out.family("x_total", "counter", "Things, by\nsource \\ host.");
  out.sample({ source: 'we"b', n: 3 }, 5);
  out.sample({}, NaN);
  out.family("y", "gauge");
  out.sample({ agent: "a\nb" }, Infinity);
  out.sample({}, -Infinity);
  assert.equal(
    out.text(),
    "# HELP x_total Things, by\\nsource \\\\ host.\n# TYPE x_total counter\n" +
      'x_total{source="we\\"b",n="3"} 5\nx_total NaN\n' +
      '# TYPE y gauge\ny{agent="a\\nb"} +Inf\ny -Inf\n',
  );
});

Deno.test("PrometheusWriter writes a histogram as cumulative buckets, sum and count", () => {
  const out = new PrometheusWriter();
  out.family("t_seconds", "histogram", "Time.");
  out.histogram({ sink: "file" }, {
    bounds: [0.1, 1],
    cumulative: () => [1, 2],
    count: 3,
    sum: 7.5,
  });
  assert.deepEqual(out.text().split("\n").slice(2, -1), [
    't_seconds_bucket{sink="file",le="0.1"} 1',
    't_seconds_bucket{sink="file",le="1"} 2',
    't_seconds_bucket{sink="file",le="+Inf"} 3',
    't_seconds_sum{sink="file"} 7.5',
    't_seconds_count{sink="file"} 3',
  ]);
});
