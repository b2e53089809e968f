import assert from "node:assert/strict";
import {
  compareRotated,
  nextRotationTime,
  parseRotated,
  type RotatedFile,
  rotatedName,
  selectExpired,
} from "./rotation.ts";

const T = Date.parse("2026-11-21T23:54:55.123Z");
const HOUR = 3600_000;
const DAY = 24 * HOUR;

Deno.test("rotatedName puts the UTC time before the extension", () => {
  assert.equal(rotatedName("logs/app.log", T), "logs/app.2026-11-21T23-54-55.123Z.log");
  assert.equal(rotatedName("logs/app", new Date(T)), "logs/app.2026-11-21T23-54-55.123Z");
  assert.equal(rotatedName("app.tar.gz", T), "app.tar.gz.2026-11-21T23-54-55.123Z");
  assert.equal(rotatedName(".env", T), ".env.2026-11-21T23-54-55.123Z");
  assert.equal(rotatedName("app.log", T), "app.2026-11-21T23-54-55.123Z.log");
  assert.throws(() => rotatedName("app.log", NaN), RangeError);
  assert.throws(() => rotatedName("app.log", new Date("nope")), RangeError);
  assert.throws(() => rotatedName("app.log", Date.UTC(10000, 0)), RangeError);
});

Deno.test("rotatedName adds a sequence when the same millisecond is taken", () => {
  const existing = new Set<string>();
  const names = [];
  for (let i = 0; i < 12; i++) {
    const name = rotatedName("logs/app.log", T, { taken: (p) => existing.has(p) });
    existing.add(i % 2 === 0 ? name : name + ".gz"); // a compressed one is taken too
    names.push(name);
  }
  assert.equal(new Set(names).size, 12, "all distinct");
  assert.equal(names[1], "logs/app.2026-11-21T23-54-55.123Z_001.log");
  assert.equal(names[11], "logs/app.2026-11-21T23-54-55.123Z_011.log");
  const later = rotatedName("logs/app.log", T + 1);
  const all = [...names, later, rotatedName("logs/app.log", T - 1)];
  const compressed = all.map((n, i) => i % 3 === 0 ? n + ".gz" : n);
  // Sorting the names as text gives rotation order, compressed or not.
  const byName = [...compressed].sort();
  const byTime = [...compressed].sort((a, b) =>
    compareRotated(parseRotated("logs/app.log", a)!, parseRotated("logs/app.log", b)!)
  );
  assert.deepEqual(byName, byTime);
  assert.ok(byName.at(-1)!.startsWith(later));
  assert.ok(byName[0].includes("54-55.122Z"));
});

Deno.test("parseRotated recognises rotations of the path, compressed or not", () => {
  const name = "app.2026-11-21T23-54-55.123Z.log";
  assert.deepEqual(parseRotated("logs/app.log", name), {
    name,
    path: "logs/" + name,
    time: T,
    sequence: 0,
    compressed: false,
  });
  const gz = parseRotated("logs/app.log", `logs/app.2026-11-21T23-54-55.123Z_002.log.gz`);
  assert.equal(gz?.compressed, true);
  assert.equal(gz?.sequence, 2);
  assert.equal(gz?.path, "logs/app.2026-11-21T23-54-55.123Z_002.log.gz");
  assert.equal(parseRotated("app", "app.2026-11-21T23-54-55.123Z")?.time, T);
  for (const path of ["logs/app.log", "logs/app", "a.b+c(d).log"]) {
    const rotated = rotatedName(path, T);
    assert.equal(parseRotated(path, rotated)?.time, T, path);
    assert.equal(parseRotated(path, rotated + ".gz")?.compressed, true, path);
  }
});

Deno.test("parseRotated ignores what is not a rotation of the path", () => {
  for (
    const other of [
      "app.log",
      "app.log.gz",
      "app.2026-11-21T23-54-55.123Z.log.gz.tmp",
      "app.2026-11-21T23-54-55.123Z.txt",
      "api.2026-11-21T23-54-55.123Z.log",
      "xapp.2026-11-21T23-54-55.123Z.log",
      "app.2026-11-21T23:54:55.123Z.log",
      "app.2026-02-30T23-54-55.123Z.log",
      "app.2026-11-21T25-54-55.123Z.log",
      "app.2026-11-21T23-54-55Z.log",
      "app.2026-11-21T23-54-55.123Z_1.log",
      "app.2026-11-21T23-54-55.123Z",
    ]
  ) {
    assert.equal(parseRotated("logs/app.log", other), undefined, other);
  }
  // The rotation of "app" (no extension) is not one of "app.log", and the other way round.
  assert.equal(parseRotated("app", "app.2026-11-21T23-54-55.123Z.log"), undefined);
});

Deno.test("rotated names belong to one live file: app's compressed rotation is no rotation of app.gz", () => {
  const ofApp = rotatedName("logs/app", T) + ".gz";
  assert.equal(ofApp, "logs/app.2026-11-21T23-54-55.123Z.gz");
  assert.equal(parseRotated("logs/app", ofApp)?.compressed, true);
  assert.equal(parseRotated("logs/app.gz", ofApp), undefined);
  const ofAppGz = rotatedName("logs/app.gz", T);
  assert.equal(ofAppGz, "logs/app.gz.2026-11-21T23-54-55.123Z");
  assert.equal(parseRotated("logs/app", ofAppGz), undefined);
  assert.equal(parseRotated("logs/app.gz", ofAppGz)?.compressed, false);
  // A live file named like a rotation is not one of any other live file's rotations either.
  assert.equal(parseRotated("logs/app.log", "app.2026-11-21T23-54-55.123Z.log.log"), undefined);
});

function rotation(
  time: number,
  options: { sequence?: number; compressed?: boolean } = {},
): RotatedFile {
  const { sequence = 0, compressed = false } = options;
  const name = `r${time}_${sequence}${compressed ? ".gz" : ""}`;
  return { name, path: name, time, sequence, compressed };
}

Deno.test("selectExpired keeps the newest N, oldest expired first", () => {
  const now = T;
  const files = [rotation(now - 3 * HOUR), rotation(now - HOUR), rotation(now - 2 * HOUR)];
  const names = (list: RotatedFile[]) => list.map((f) => f.time);
  assert.deepEqual(names(selectExpired(files, { keep: 1, now })), [now - 3 * HOUR, now - 2 * HOUR]);
  assert.deepEqual(selectExpired(files, { keep: 3, now }), []);
  assert.equal(selectExpired(files, { keep: 0, now }).length, 3);
  assert.deepEqual(selectExpired(files, { now }), [], "no limits: nothing expires");
  assert.deepEqual(selectExpired([], { keep: 0 }), []);
});

Deno.test("selectExpired expires by age, and by either limit when both are given", () => {
  const now = T;
  const files = [rotation(now - 10 * DAY), rotation(now - 2 * DAY), rotation(now - HOUR)];
  const times = (list: RotatedFile[]) => list.map((f) => (now - f.time) / HOUR);
  assert.deepEqual(times(selectExpired(files, { maxAgeMs: 7 * DAY, now })), [240]);
  assert.deepEqual(times(selectExpired(files, { maxAgeMs: 2 * DAY, now })), [240], "not older");
  assert.deepEqual(times(selectExpired(files, { maxAgeMs: DAY, keep: 2, now })), [240, 48]);
  assert.deepEqual(times(selectExpired(files, { maxAgeMs: 30 * DAY, keep: 1, now })), [240, 48]);
});

Deno.test("selectExpired counts a rotation left both plain and compressed once", () => {
  const files = [
    rotation(T - 2 * HOUR),
    rotation(T - HOUR),
    rotation(T - HOUR, { compressed: true }),
    rotation(T - HOUR, { sequence: 1, compressed: true }),
  ];
  const expired = selectExpired(files, { keep: 2, now: T });
  assert.deepEqual(expired.map((f) => f.name), [files[0].name]);
  const older = selectExpired(files, { keep: 1, now: T }).map((f) => f.name);
  assert.deepEqual(older.sort(), [files[0].name, files[1].name, files[2].name].sort());
});

Deno.test("selectExpired rejects limits that make no sense", () => {
  assert.throws(() => selectExpired([], { keep: -1 }), RangeError);
  assert.throws(() => selectExpired([], { keep: 1.5 }), RangeError);
  assert.throws(() => selectExpired([], { maxAgeMs: -1 }), RangeError);
  assert.throws(() => selectExpired([], { maxAgeMs: NaN }), RangeError);
});

Deno.test("nextRotationTime lines periods up with UTC", () => {
  const iso = (ms: number) => new Date(ms).toISOString();
  assert.equal(iso(nextRotationTime(T, DAY)), "2026-11-22T00:00:00.000Z");
  assert.equal(iso(nextRotationTime(T, HOUR)), "2026-11-22T00:00:00.000Z");
  assert.equal(iso(nextRotationTime(T, 15 * 60_000)), "2026-11-22T00:00:00.000Z");
  assert.equal(iso(nextRotationTime(T, 5 * 60_000)), "2026-11-21T23:55:00.000Z");
  const midnight = Date.parse("2026-11-22T00:00:00.000Z");
  assert.equal(nextRotationTime(midnight, DAY), midnight + DAY, "strictly after now");
  assert.equal(new Date(nextRotationTime(T, 7 * DAY)).getUTCDay(), 4, "weeks start on Thursday");
  assert.throws(() => nextRotationTime(T, 0), RangeError);
  assert.throws(() => nextRotationTime(T, 1.5), RangeError);
  assert.throws(() => nextRotationTime(NaN, DAY), RangeError);
});
