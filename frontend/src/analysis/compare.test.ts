import { describe, expect, test } from "vitest";
import { addLapRef, compareHref, compareLaps, deltaSegments, distanceGrid, lapLength, lineCrossing, monotonicIndices, nearestIndex, parseLapRefs, parseReference, rateScale, rawQueryValue, removeLapRef, resampleLap, sameLap, type LapTrace } from "./compare";

/** A lap at constant `speed` [m/s] over `length` [m], sampled every `dt` [s] from time `t0`. */
function constantLap(speed: number, length: number, dt: number, t0 = 0): LapTrace {
  const n = Math.floor(length / speed / dt) + 1;
  const t = new Float64Array(n);
  const distance = new Float64Array(n);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    t[i] = t0 + i * dt;
    distance[i] = i * dt * speed;
    v[i] = speed * 3.6;
  }
  return { t, distance, channels: new Map([["speed", v]]), start: t0 };
}

const f64 = (xs: number[]): Float64Array => Float64Array.from(xs);

/**
 * A lap driven as `distanceAt(τ)` [m] for τ [s] since the line crossing at `crossing` [s],
 * sampled every `dt` [s] starting `phase` [s] after the crossing, plus a last frame on the line
 * at `lapTime` [s]; `start` is the first frame, as the store gives it.
 */
function phasedLap(distanceAt: (tau: number) => number, lapTime: number, dt: number, phase: number, crossing = 0): LapTrace {
  const tau: number[] = [];
  for (let x = phase; x < lapTime - 1e-9; x += dt) tau.push(x);
  tau.push(lapTime);
  const t = f64(tau.map((x) => crossing + x));
  return { t, distance: f64(tau.map(distanceAt)), channels: new Map(), start: t[0] };
}

describe("monotonicIndices", () => {
  test("NaN, a previous lap's tail before the reset and a one-frame glitch are dropped", () => {
    const d = f64([4998, 4999, 0.5, 10, NaN, 20, 0, 30, 40]);
    const t = f64([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(monotonicIndices(t, d))).toEqual([2, 3, 5, 7, 8]);
  });

  test("a standstill keeps the last frame at the repeated distance (when the car set off)", () => {
    expect(Array.from(monotonicIndices(f64([0, 1, 2, 3]), f64([0, 5, 5, 9])))).toEqual([0, 2, 3]);
  });

  test("no finite sample gives no indices", () => {
    expect(monotonicIndices(f64([0, 1]), f64([NaN, NaN])).length).toBe(0);
  });
});

describe("distanceGrid", () => {
  test("the grid starts at 0 and stops at the last step within the length", () => {
    expect(Array.from(distanceGrid(7, 2))).toEqual([0, 2, 4, 6]);
    expect(Array.from(distanceGrid(6, 2))).toEqual([0, 2, 4, 6]);
    expect(Array.from(distanceGrid(0, 2))).toEqual([0]);
    expect(() => distanceGrid(10, 0)).toThrow(RangeError);
  });
});

describe("resampleLap", () => {
  test("irregular frame times are interpolated exactly for a constant speed", () => {
    // 10 m/s, frames at irregular times: distance = 10 t.
    const t = f64([0, 0.13, 0.5, 0.51, 1.7, 2.2, 3.05, 4]);
    const lap: LapTrace = { t, distance: t.map((x) => 10 * x), channels: new Map([["x", t.map((x) => 100 + 10 * x)]]) };
    const r = resampleLap(lap, distanceGrid(40, 2));
    for (let i = 0; i < r.elapsed.length; i++) {
      expect(r.elapsed[i]).toBeCloseTo((2 * i) / 10, 12);
      expect(r.channels.get("x")![i]).toBeCloseTo(100 + 2 * i, 9);
    }
  });

  test("elapsed time counts from the lap's start, interpolated to the first frame", () => {
    // The line was crossed at t = 9.9; the first frame is at 10 s and 1 m (10 m/s).
    const lap: LapTrace = { t: f64([10, 11]), distance: f64([1, 11]), channels: new Map(), start: 9.9 };
    const r = resampleLap(lap, f64([0, 0.5, 1, 6, 11, 20]));
    expect(Array.from(r.elapsed).map((x) => Number(x.toFixed(9)))).toEqual([0, 0.05, 0.1, 0.6, 1.1, 1.1]);
  });

  test("elapsed time counts from the line crossing extrapolated from the first two frames", () => {
    // 10 m/s; the first frame is 0.09 s (0.9 m) past the line.
    const r = resampleLap({ t: f64([100.09, 100.19, 100.29]), distance: f64([0.9, 1.9, 2.9]), channels: new Map(), start: 100.09 }, f64([0, 0.5, 1, 2]));
    expect(Array.from(r.elapsed).map((x) => Number(x.toFixed(9)))).toEqual([0, 0.05, 0.1, 0.2]);
  });

  test("the extrapolated crossing is clamped: to the first frame, to 1 s or a frame interval before it, and to a given earlier start", () => {
    expect(lineCrossing(10, 0, 10.1, 1)).toBe(10); // on the line
    expect(lineCrossing(10, 1, 10.1, 1)).toBe(10); // not moving: no estimate
    expect(lineCrossing(10, 5, 11, 6)).toBe(9); // creeping at 1 m/s would put it 5 s back
    expect(lineCrossing(10, 5, 12, 6)).toBe(8); // one frame interval back at most
    expect(lineCrossing(10, 5, 10.1, 10, 9.95)).toBeCloseTo(9.95, 12); // a previous lap's frame at 9.95
    expect(lineCrossing(10, 5, 10.1, 10, 10)).toBeCloseTo(9.9, 12); // the first frame itself says nothing
  });

  test("stepped channels (gear) take the previous frame's value, not a fraction", () => {
    const lap: LapTrace = { t: f64([0, 1]), distance: f64([0, 10]), channels: new Map([["gear", f64([3, 4])], ["speed", f64([100, 200])]]) };
    const r = resampleLap(lap, f64([0, 5, 10]));
    expect(Array.from(r.channels.get("gear")!)).toEqual([3, 3, 4]);
    expect(Array.from(r.channels.get("speed")!)).toEqual([100, 150, 200]);
  });

  test("a lap with a lap_distance reset and NaN resamples from its usable frames", () => {
    const t = f64([0, 1, 2, 3, 4, 5, 6]);
    // Previous lap's tail (5000) first, then 10 m/s with a NaN and a spurious reset to 0.
    const d = f64([5000, 10, 20, NaN, 0, 50, 60]);
    const r = resampleLap({ t, distance: d, channels: new Map(), start: 0 }, f64([10, 20, 35, 60]));
    expect(Array.from(r.elapsed)).toEqual([1, 2, 3.5, 6]);
  });

  test("a lap without a usable distance is refused", () => {
    expect(() => resampleLap({ t: f64([0]), distance: f64([NaN]), channels: new Map() }, f64([0]))).toThrow(/usable lap_distance/);
  });
});

describe("compareLaps", () => {
  test("constant speeds give an exactly linear running delta", () => {
    // Reference 50 m/s, the other 40 m/s over 1000 m: delta(d) = d/40 - d/50 = d/200.
    const ref = constantLap(50, 1000, 1 / 60);
    const slow = constantLap(40, 1000, 1 / 60, 123.4);
    const c = compareLaps([ref, slow], { step: 2 });
    expect(c.grid.length).toBe(501);
    expect(c.reference).toBe(0);
    expect(Array.from(c.deltas[0]!).every((x) => x === 0)).toBe(true);
    for (let i = 0; i < c.grid.length; i++) expect(c.deltas[1]![i]).toBeCloseTo(c.grid[i]! / 200, 9);
    // Switching the reference flips the sign.
    const back = compareLaps([ref, slow], { reference: 1 });
    expect(back.deltas[0]![500]).toBeCloseTo(-5, 9);
  });

  test("identical laps sampled out of phase have no delta", () => {
    // Speeding up and slowing down (30-70 m/s), 10 Hz, first frames 0.005 s and 0.095 s past the line.
    const drive = (tau: number): number => 50 * tau + 40 * Math.sin(tau / 2);
    const lapTime = 30;
    const ref = phasedLap(drive, lapTime, 0.1, 0.005, 1000);
    const late = phasedLap(drive, lapTime, 0.1, 0.095, 5000);
    const c = compareLaps([ref, late], { step: 2 });
    expect(c.grid[c.grid.length - 1]).toBeGreaterThan(drive(lapTime) - 2);
    for (const x of c.deltas[1]!) expect(Math.abs(x)).toBeLessThan(1e-3);
    // 4 Hz, and the other way round (the 0.23 s offset is gone; a few ms are the linear
    // interpolation of an accelerating car between frames 0.25 s apart).
    const c4 = compareLaps([phasedLap(drive, lapTime, 0.25, 0.24), phasedLap(drive, lapTime, 0.25, 0.01)]);
    for (const x of c4.deltas[1]!) expect(Math.abs(x)).toBeLessThan(3e-3);
  });

  test("the final delta of two constant-speed laps is their lap-time difference", () => {
    // 1000 m at 50 m/s (20 s) and at 48 m/s (20.833 s), 4 Hz, out of phase.
    const ref = phasedLap((tau) => 50 * tau, 20, 0.25, 0.2);
    const slow = phasedLap((tau) => 48 * tau, 1000 / 48, 0.25, 0.03, 77);
    const c = compareLaps([ref, slow], { step: 2 });
    expect(c.grid[c.grid.length - 1]).toBe(1000);
    const delta = c.deltas[1]!;
    expect(delta[delta.length - 1]).toBeCloseTo(1000 / 48 - 20, 3);
    for (let i = 0; i < c.grid.length; i++) expect(delta[i]).toBeCloseTo(c.grid[i]! / 48 - c.grid[i]! / 50, 9);
  });

  test("laps of differing lengths are compared over the shortest", () => {
    const c = compareLaps([constantLap(50, 1000, 0.02), constantLap(50, 801, 0.02), constantLap(50, 1200, 0.02)], { step: 2 });
    expect(c.grid[c.grid.length - 1]).toBe(800);
    expect(c.laps.every((l) => l.elapsed.length === c.grid.length)).toBe(true);
    expect(c.deltas[1]![400]).toBeCloseTo(0, 9);
  });

  test("a single lap compares with itself: the delta is zero everywhere", () => {
    const c = compareLaps([constantLap(30, 300, 0.1)]);
    expect(c.laps.length).toBe(1);
    expect(c.grid.length).toBe(151);
    expect(Array.from(c.deltas[0]!).every((x) => x === 0)).toBe(true);
  });

  test("a lap without usable distance or a reference out of range is named", () => {
    const empty: LapTrace = { t: f64([0, 1]), distance: f64([NaN, NaN]), channels: new Map() };
    expect(() => compareLaps([constantLap(30, 300, 0.1), empty])).toThrow(/lap 1 has no usable lap_distance/);
    expect(() => compareLaps([constantLap(30, 300, 0.1)], { reference: 1 })).toThrow(/reference 1/);
    expect(() => compareLaps([])).toThrow(/no laps/);
    expect(lapLength(empty)).toBe(0);
  });
});

describe("deltaSegments", () => {
  test("a linear delta loses the same time in every segment; the segments sum to the total", () => {
    const grid = distanceGrid(100, 2);
    const delta = grid.map((d) => d / 200);
    const segs = deltaSegments(grid, delta, 20);
    expect(segs.length).toBe(5);
    for (const s of segs) {
      expect(s.dt).toBeCloseTo(0.1, 12);
      expect(s.rate).toBeCloseTo(1 / 200, 12);
    }
    expect(segs.reduce((a, s) => a + s.dt, 0)).toBeCloseTo(0.5, 12);
  });

  test("gains are negative and losses positive, segment by segment", () => {
    const grid = distanceGrid(80, 2);
    // Gain 0.2 s over the first 40 m, lose 0.1 s over the next 40 m.
    const delta = grid.map((d) => (d <= 40 ? -0.2 * (d / 40) : -0.2 + 0.1 * ((d - 40) / 40)));
    const segs = deltaSegments(grid, delta, 40);
    expect(segs.map((s) => Number(s.dt.toFixed(9)))).toEqual([-0.2, 0.1]);
    expect(rateScale(segs)).toBeCloseTo(0.005, 12);
  });

  test("a grid of one point has no segments; a ragged end makes a shorter last segment", () => {
    expect(deltaSegments(f64([0]), f64([0]))).toEqual([]);
    const segs = deltaSegments(distanceGrid(50, 2), new Float64Array(26), 20);
    expect(segs.map((s) => [s.i0, s.i1])).toEqual([[0, 10], [10, 20], [20, 25]]);
  });
});

describe("nearestIndex", () => {
  test("a distance maps to the nearest grid point, clamped to the grid", () => {
    const grid = distanceGrid(10, 2);
    expect(nearestIndex(grid, 4.9)).toBe(2);
    expect(nearestIndex(grid, 5.1)).toBe(3);
    expect(nearestIndex(grid, -3)).toBe(0);
    expect(nearestIndex(grid, 99)).toBe(5);
    expect(nearestIndex(grid, NaN)).toBe(0);
  });
});

describe("lap references", () => {
  test("compareHref and parseLapRefs round-trip ids with separators in them", () => {
    const laps = [
      { session: "race 1", stream: "car~7", lap: 3 },
      { session: "q,2", stream: "car-1", lap: 0 },
    ];
    const href = compareHref(laps);
    expect(href).toBe("/compare?laps=race%201~car%7E7~3,q%2C2~car-1~0");
    expect(parseLapRefs(rawQueryValue(new URL(href, "http://x").search, "laps"))).toEqual({ laps, problems: [] });
    expect(parseLapRefs("race+1~car-1~2").laps).toEqual([{ session: "race 1", stream: "car-1", lap: 2 }]);
  });

  test("the raw query value is found among others, and missing is null", () => {
    expect(rawQueryValue("?ref=1&laps=a%2Cb~c~1&x", "laps")).toBe("a%2Cb~c~1");
    expect(rawQueryValue("?x", "x")).toBe("");
    expect(rawQueryValue("", "laps")).toBeNull();
  });

  test("a value re-encoded as a whole (by URLSearchParams) is still read", () => {
    const u = new URL("http://x/compare");
    u.searchParams.set("laps", "sim4~car-2~1,sim4~car-1~1");
    expect(parseLapRefs(rawQueryValue(u.search, "laps")).laps).toEqual([
      { session: "sim4", stream: "car-2", lap: 1 },
      { session: "sim4", stream: "car-1", lap: 1 },
    ]);
  });

  test("an empty value gives no laps and no problems", () => {
    expect(parseLapRefs(null)).toEqual({ laps: [], problems: [] });
    expect(parseLapRefs(" ")).toEqual({ laps: [], problems: [] });
  });

  test("malformed entries are named, good ones kept, duplicates dropped", () => {
    const r = parseLapRefs("s~c~1,s~c,s~c~x,s~c~-1,s~c~1.5,%E0~c~1,s~c~1,s~d~2");
    expect(r.laps).toEqual([
      { session: "s", stream: "c", lap: 1 },
      { session: "s", stream: "d", lap: 2 },
    ]);
    expect(r.problems).toEqual([
      '"s~c" is not session~car~lap',
      '"s~c~x" is not session~car~lap',
      '"s~c~-1" is not session~car~lap',
      '"s~c~1.5" is not session~car~lap',
      '"%E0~c~1" is not percent-encoded correctly',
    ]);
  });

  test("compareHref adds the reference index only when it is another of the laps", () => {
    const laps = [
      { session: "p", stream: "car-1", lap: 2 },
      { session: "r", stream: "car-2", lap: 5 },
    ];
    expect(compareHref(laps, 1)).toBe("/compare?laps=p~car-1~2,r~car-2~5&ref=1");
    expect(compareHref(laps, 0)).toBe("/compare?laps=p~car-1~2,r~car-2~5");
    expect(compareHref(laps, 2)).toBe("/compare?laps=p~car-1~2,r~car-2~5");
    expect(compareHref(laps, -1)).toBe("/compare?laps=p~car-1~2,r~car-2~5");
    expect(compareHref([], 1)).toBe("/compare");
  });

  test("parseReference reads a valid index and falls back to 0", () => {
    expect(parseReference("2", 3)).toBe(2);
    expect(parseReference(null, 3)).toBe(0);
    expect(parseReference("", 3)).toBe(0);
    expect(parseReference("3", 3)).toBe(0);
    expect(parseReference("-1", 3)).toBe(0);
    expect(parseReference("1.5", 3)).toBe(0);
    expect(parseReference("x", 3)).toBe(0);
  });
});

describe("adding and removing laps", () => {
  const a = { session: "practice", stream: "car-1", lap: 3 };
  const b = { session: "race", stream: "car-1", lap: 3 };
  const c = { session: "race", stream: "car-2", lap: 1 };

  test("sameLap compares session, car and lap", () => {
    expect(sameLap(a, { ...a })).toBe(true);
    expect(sameLap(a, b)).toBe(false);
    expect(sameLap(b, { ...b, lap: 4 })).toBe(false);
  });

  test("addLapRef appends a new lap and leaves a duplicate out", () => {
    const laps = [a, b];
    expect(addLapRef(laps, c)).toEqual([a, b, c]);
    expect(addLapRef(laps, { ...b })).toEqual([a, b]);
    expect(addLapRef([], a)).toEqual([a]);
    expect(laps).toEqual([a, b]);
  });

  test("removeLapRef keeps the reference on the same lap", () => {
    expect(removeLapRef([a, b, c], 0, 2)).toEqual({ laps: [b, c], reference: 1 });
    expect(removeLapRef([a, b, c], 2, 1)).toEqual({ laps: [a, b], reference: 1 });
    expect(removeLapRef([a, b, c], 1, 0)).toEqual({ laps: [a, c], reference: 0 });
  });

  test("removeLapRef resets the reference to 0 when the reference is removed", () => {
    expect(removeLapRef([a, b, c], 1, 1)).toEqual({ laps: [a, c], reference: 0 });
    expect(removeLapRef([a, b], 0, 0)).toEqual({ laps: [b], reference: 0 });
    expect(removeLapRef([a], 0, 0)).toEqual({ laps: [], reference: 0 });
    expect(removeLapRef([a, b], 0, 5)).toEqual({ laps: [b], reference: 0 });
  });
});
