import { describe, expect, test } from "vitest";
import { StreamStore } from "./streams";

const batch = (stream: string, t0: number, speed: number[], extra: Record<string, number[]> = {}) => ({
  stream,
  t0,
  tOffsets: Float64Array.from(speed.map((_, i) => i * 0.1)),
  columns: Object.fromEntries(
    Object.entries({ speed, ...extra }).map(([k, v]) => [k, Float32Array.from(v)]),
  ),
});

describe("StreamStore", () => {
  test("each stream gets its own ring and append returns the frame count", () => {
    const store = new StreamStore(16);
    expect(store.append(batch("car-1", 0, [1, 2, 3]))).toBe(3);
    store.append(batch("car-2", 0, [9]));
    expect(store.streams()).toEqual(["car-1", "car-2"]);
    expect(store.ring("car-1")?.latest("speed")).toBe(3);
    expect(store.ring("car-2")?.latest("speed")).toBe(9);
  });

  test("only the kept channels are stored", () => {
    const store = new StreamStore(16, new Set(["speed"]));
    store.append(batch("car-1", 0, [1], { tyre_temp_fl: [90] }));
    expect(store.ring("car-1")?.channels()).toEqual(["speed"]);
  });

  test("drop forgets every stream; clear empties each ring but keeps it (no reallocation)", () => {
    const store = new StreamStore(16);
    store.append(batch("car-1", 0, [1]));
    const ring = store.ring("car-1");
    store.clear();
    expect(store.ring("car-1")).toBe(ring);
    expect(ring?.length).toBe(0);
    store.drop();
    expect(store.ring("car-1")).toBeUndefined();
  });
});

describe("StreamStore replay rows", () => {
  test("appendRow keeps only the kept channels and newestTime is the newest of every car", () => {
    const store = new StreamStore(16, new Set(["speed"]));
    expect(store.newestTime()).toBeNaN();
    store.appendRow("a", 10, ["speed", "fuel"], [120, 40]);
    store.appendRow("b", 12, ["speed"], [130]);
    store.appendRow("a", 11, ["speed", "fuel"], [121, 39]);
    expect(store.ring("a")?.channels()).toEqual(["speed"]);
    expect(Array.from(store.ring("a")?.values("speed") ?? [])).toEqual([120, 121]);
    expect(store.newestTime()).toBe(12);
  });
});
