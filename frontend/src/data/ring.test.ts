import { describe, expect, test } from "vitest";
import { TimeRing } from "./ring";

const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);
const f64 = (...xs: number[]): Float64Array => Float64Array.from(xs);
const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);

describe("TimeRing", () => {
  test("a new ring is empty and reads as empty views and NaN", () => {
    const ring = new TimeRing(4);
    expect(ring.length).toBe(0);
    expect(Array.from(ring.times())).toEqual([]);
    expect(ring.latest("speed")).toBeNaN();
    expect(ring.lastTime()).toBeNaN();
    expect(ring.countWithin(10)).toBe(0);
  });

  test("the capacity must be a positive integer", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new TimeRing(bad)).toThrow(RangeError);
  });

  test("appended batches read back in order with absolute times t0 + offset", () => {
    const ring = new TimeRing(8);
    ring.append(100, f64(0, 0.5), { speed: f32(1, 2) });
    ring.append(101, f64(0), { speed: f32(3) });
    expect(Array.from(ring.times())).toEqual([100, 100.5, 101]);
    expect(Array.from(ring.values("speed")!)).toEqual([1, 2, 3]);
    expect(ring.latest("speed")).toBe(3);
    expect(ring.lastTime()).toBe(101);
  });

  test("the length never exceeds the capacity and the oldest samples are dropped first", () => {
    const ring = new TimeRing(4);
    for (const i of range(0, 10)) ring.append(i, f64(0), { x: f64(i * 10) });
    expect(ring.length).toBe(4);
    expect(Array.from(ring.times())).toEqual([6, 7, 8, 9]);
    expect(Array.from(ring.values("x")!)).toEqual([60, 70, 80, 90]);
  });

  test("a window that wraps around the end of storage is still one contiguous view", () => {
    const ring = new TimeRing(5);
    ring.append(0, f64(...range(0, 4)), { x: f64(...range(0, 4)) });
    ring.append(4, f64(...range(0, 4)), { x: f64(...range(4, 8)) }); // wraps: slots 4,0,1,2
    const x = ring.values("x")!;
    expect(Array.from(x)).toEqual([3, 4, 5, 6, 7]);
    expect(Array.from(ring.times())).toEqual([3, 4, 5, 6, 7]);
    expect(x.buffer).toBe(ring.values("x")!.buffer); // a view, not a copy
  });

  test("a batch larger than the capacity keeps only its newest samples", () => {
    const ring = new TimeRing(3);
    ring.append(10, f64(...range(0, 7)), { x: f32(...range(0, 7)) });
    expect(Array.from(ring.times())).toEqual([14, 15, 16]);
    expect(Array.from(ring.values("x")!)).toEqual([4, 5, 6]);
  });

  test("times(n) and values(n) return the newest n samples, clamped to what is held", () => {
    const ring = new TimeRing(6);
    ring.append(0, f64(...range(0, 6)), { x: f64(...range(0, 6)) });
    ring.append(6, f64(0, 1), { x: f64(6, 7) });
    expect(Array.from(ring.times(3))).toEqual([5, 6, 7]);
    expect(Array.from(ring.values("x", 2)!)).toEqual([6, 7]);
    expect(Array.from(ring.times(100))).toEqual([2, 3, 4, 5, 6, 7]);
    expect(Array.from(ring.times(0))).toEqual([]);
  });

  test("countWithin(seconds) counts the samples within that many seconds of the newest, inclusive", () => {
    const ring = new TimeRing(100);
    ring.append(1000, f64(...range(0, 50).map((i) => i * 0.1)), {}); // 1000.0 .. 1004.9
    expect(ring.countWithin(1)).toBe(11); // 1003.9 .. 1004.9
    expect(ring.countWithin(0)).toBe(1);
    expect(ring.countWithin(60)).toBe(50);
  });

  test("countWithin works across the wrap-around", () => {
    const ring = new TimeRing(10);
    for (const i of range(0, 23)) ring.append(i, f64(0), { x: f64(i) });
    expect(ring.countWithin(4)).toBe(5);
    expect(Array.from(ring.values("x", ring.countWithin(4))!)).toEqual([18, 19, 20, 21, 22]);
  });

  test("a column missing from a batch reads as NaN for those rows, keeping columns aligned", () => {
    const ring = new TimeRing(8);
    ring.append(0, f64(0), { a: f64(1), b: f64(10) });
    ring.append(1, f64(0), { a: f64(2) });
    expect(Array.from(ring.values("b")!)).toEqual([10, Number.NaN]);
    expect(ring.latest("b")).toBeNaN();
  });

  test("a column first seen mid-stream reads as NaN before it appeared", () => {
    const ring = new TimeRing(8);
    ring.append(0, f64(0), { a: f64(1) });
    ring.append(1, f64(0), { a: f64(2), b: f32(5) });
    expect(Array.from(ring.values("b")!)).toEqual([Number.NaN, 5]);
    expect(ring.values("b")).toBeInstanceOf(Float32Array);
    expect(ring.values("a")).toBeInstanceOf(Float64Array);
    expect(ring.values("missing")).toBeUndefined();
  });

  test("a batch that starts before the newest sample (a seek or restart) clears the ring first", () => {
    const ring = new TimeRing(8);
    ring.append(100, f64(0, 1), { x: f64(1, 2) });
    ring.append(50, f64(0), { x: f64(9) });
    expect(Array.from(ring.times())).toEqual([50]);
    expect(Array.from(ring.values("x")!)).toEqual([9]);
  });

  test("a column whose length differs from the time column is refused", () => {
    expect(() => new TimeRing(4).append(0, f64(0, 1), { x: f64(1) })).toThrow(/1 values for 2 frames/);
  });

  test("version changes on every append and clear, so readers can skip unchanged frames", () => {
    const ring = new TimeRing(4);
    const v0 = ring.version;
    ring.append(0, f64(0), {});
    const v1 = ring.version;
    ring.clear();
    expect(v1).not.toBe(v0);
    expect(ring.version).not.toBe(v1);
    expect(ring.length).toBe(0);
  });

  test("random batch sizes read back identical to a plain array (seed printed)", () => {
    const seed = Date.now() % 100000;
    console.log(`ring random test seed=${seed}`);
    let state = seed;
    const rand = (): number => {
      // mulberry32
      state = (state + 0x6d2b79f5) | 0;
      let r = Math.imul(state ^ (state >>> 15), 1 | state);
      r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
      return ((r ^ (r >>> 14)) >>> 0) / 2 ** 32;
    };
    const cap = 37;
    const ring = new TimeRing(cap);
    const all: number[] = [];
    let t = 0;
    for (let b = 0; b < 200; b++) {
      const n = Math.floor(rand() * 50);
      const offs = f64(...range(0, n));
      const vals = f64(...range(0, n).map((i) => t + i));
      ring.append(t, offs, { x: vals });
      all.push(...vals);
      t += n;
      const want = all.slice(-cap);
      expect(Array.from(ring.values("x")!)).toEqual(want);
      expect(Array.from(ring.times())).toEqual(want);
    }
  });
});

describe("TimeRing.appendRow (replay ticks)", () => {
  test("appends one sample per call, missing channels NaN, without growing past capacity", () => {
    const ring = new TimeRing(3);
    ring.appendRow(10, ["speed", "rpm"], [100, 7000]);
    ring.appendRow(11, ["speed"], [101]);
    for (let i = 0; i < 5; i++) ring.appendRow(12 + i, ["speed", "rpm"], [102 + i, 7100]);
    expect(ring.length).toBe(3);
    expect(Array.from(ring.times())).toEqual([14, 15, 16]);
    expect(Array.from(ring.values("speed") ?? [])).toEqual([104, 105, 106]);
    const r2 = new TimeRing(4);
    r2.appendRow(1, ["speed", "rpm"], [1, 2]);
    r2.appendRow(2, ["speed"], [3]);
    expect(Array.from(r2.values("rpm") ?? [])).toEqual([2, Number.NaN]);
  });

  test("a row earlier than the newest sample (a seek back) clears the ring first", () => {
    const ring = new TimeRing(8);
    ring.appendRow(50, ["speed"], [1]);
    ring.appendRow(51, ["speed"], [2]);
    ring.appendRow(20, ["speed"], [3]);
    expect(Array.from(ring.times())).toEqual([20]);
    expect(() => ring.appendRow(21, ["speed"], [1, 2])).toThrow(RangeError);
  });
});

describe("TimeRing.backfill (history after a replay seek)", () => {
  test("older rows go in front of the held ones; rows not older than the oldest are ignored", () => {
    const ring = new TimeRing(8);
    ring.appendRow(10, ["speed"], [100]);
    ring.appendRow(11, ["speed"], [101]);
    ring.backfill(5, [0, 1, 2, 5, 6], { speed: Float64Array.of(50, 60, 70, 80, 90) });
    expect(Array.from(ring.times())).toEqual([5, 6, 7, 10, 11]);
    expect(Array.from(ring.values("speed") ?? [])).toEqual([50, 60, 70, 100, 101]);
    ring.appendRow(12, ["speed"], [102]); // appending goes on after the held rows
    expect(ring.lastTime()).toBe(12);
  });

  test("when history and held rows overflow the capacity the oldest history is dropped", () => {
    const ring = new TimeRing(4);
    ring.appendRow(10, ["speed"], [1]);
    ring.appendRow(11, ["speed"], [2]);
    ring.backfill(0, [1, 2, 3, 4], { speed: Float64Array.of(7, 8, 9, 10) });
    expect(Array.from(ring.times())).toEqual([3, 4, 10, 11]);
  });

  test("into an empty ring it is a plain append; nothing older means no change", () => {
    const ring = new TimeRing(4);
    ring.backfill(0, [1, 2], { speed: Float64Array.of(1, 2) });
    expect(Array.from(ring.times())).toEqual([1, 2]);
    const version = ring.version;
    ring.backfill(0, [3], { speed: Float64Array.of(3) });
    expect(ring.version).toBe(version);
  });
});

describe("TimeRing with an empty first batch", () => {
  test("its channels are known and read back empty", () => {
    const ring = new TimeRing(4);
    ring.append(0, new Float64Array(0), { x: new Float64Array(0) });
    expect(ring.channels()).toEqual(["x"]);
    expect(Array.from(ring.values("x") ?? [Number.NaN])).toEqual([]);
    expect(ring.version).toBe(0);
  });
});
