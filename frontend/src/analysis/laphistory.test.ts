import { describe, expect, test } from "vitest";
import { LapHistory } from "./laphistory";

describe("LapHistory", () => {
  test("gives the time a car passed any recorded point of its lap, interpolated between samples", () => {
    const h = new LapHistory(1024, 10);
    for (let i = 0; i <= 100; i++) h.record(0, 50 * (i / 10), i / 10, 0); // 50 m/s for 10 s
    expect(h.timeAt(0, 123)).toBeCloseTo(2.46, 5);
    expect(h.timeAt(0, 498)).toBeCloseTo(9.96, 5);
    expect(h.timeAt(0, 500.1)).toBeNaN(); // not reached yet
    expect(h.timeAt(1, 10)).toBeNaN(); // another lap
  });

  test("keeps the previous lap, with the line crossing placed by the track length", () => {
    const h = new LapHistory(1024, 10);
    for (let i = 0; i <= 90; i++) h.record(Math.floor((30 * i) / 1000), (30 * i) % 1000, i, 1000); // 30 m/s, 1 km laps
    expect(h.timeAt(1, 995)).toBeCloseTo(995 / 30 + 1000 / 30, 5);
    expect(h.timeAt(2, 5)).toBeCloseTo(2005 / 30, 5);
    expect(h.timeAt(0, 500)).toBeNaN(); // two laps ago
  });

  test("restarts when time or the lap count goes backwards (a backward replay seek)", () => {
    const h = new LapHistory(1024, 10);
    for (let i = 0; i <= 50; i++) h.record(0, 5 * i, i / 10, 0);
    h.record(0, 100, 1, 0); // back in time
    expect(h.timeAt(0, 50)).toBeNaN();
    for (let i = 1; i <= 10; i++) h.record(0, 100 + 5 * i, 1 + i / 10, 0);
    expect(h.timeAt(0, 120)).toBeCloseTo(1.4, 5);
    for (let i = 0; i <= 20; i++) h.record(1, 5 * i, 3 + i / 10, 1000); // the next lap
    h.record(0, 500, 6, 0); // lap count back
    expect(h.timeAt(1, 50)).toBeNaN();
    expect(h.timeAt(0, 120)).toBeNaN();
  });

  test("interpolates between samples seconds apart (a 64x replay)", () => {
    const h = new LapHistory(1024, 10);
    for (let i = 0; i <= 8; i++) h.record(0, 50 * 2.5 * i, 2.5 * i, 0); // 50 m/s, every 2.5 s
    expect(h.timeAt(0, 123)).toBeCloseTo(2.46, 5);
    expect(h.timeAt(0, 990)).toBeCloseTo(19.8, 5);
  });

  test("keeps its record across a long pause but does not interpolate over it", () => {
    const h = new LapHistory(1024, 10);
    for (let i = 0; i <= 50; i++) h.record(0, 5 * i, i / 10, 0); // 50 m/s to 250 m at 5 s
    h.record(0, 900, 60, 0); // 55 s later: a dropout or a forward seek
    expect(h.timeAt(0, 120)).toBeCloseTo(2.4, 5);
    expect(h.timeAt(0, 500)).toBeNaN(); // in the hole
    expect(h.timeAt(0, 245)).toBeCloseTo(4.9, 5); // up to the last sample before the hole
    expect(h.timeAt(0, 255)).toBeNaN();
    expect(h.timeAt(0, 900)).toBe(60);
    for (let i = 1; i <= 10; i++) h.record(0, 900 + 5 * i, 60 + i / 10, 0);
    expect(h.timeAt(0, 925)).toBeCloseTo(60.5, 5);
    expect(h.timeAt(0, 905)).toBeCloseTo(60.1, 5); // from the first sample after the hole
  });

  test("a pause shorter than one step of distance (a stop) is not interpolated over either", () => {
    const h = new LapHistory(1024, 10);
    for (let i = 0; i <= 10; i++) h.record(0, 100 + i, i, 0); // 1 m/s from 100 m
    h.record(0, 112, 40, 0); // stood (unsampled) for 29 s
    for (let i = 1; i <= 10; i++) h.record(0, 112 + i, 40 + i, 0);
    expect(h.timeAt(0, 105)).toBeCloseTo(5, 5);
    expect(h.timeAt(0, 111)).toBeNaN(); // where it stood
    expect(h.timeAt(0, 115)).toBeCloseTo(43, 5);
    expect(h.timeAt(0, 121)).toBeCloseTo(49, 5);
  });

  test("a pause over the line keeps the old lap up to its last sample and starts the new one after it", () => {
    const h = new LapHistory(1024, 10);
    for (let i = 0; i <= 18; i++) h.record(0, 50 * i, i, 1000); // to 900 m at 18 s
    h.record(1, 400, 40, 1000);
    for (let i = 1; i <= 4; i++) h.record(1, 400 + 50 * i, 40 + i, 1000);
    expect(h.timeAt(0, 500)).toBeCloseTo(10, 5);
    expect(h.timeAt(0, 950)).toBeNaN();
    expect(h.timeAt(1, 100)).toBeNaN();
    expect(h.timeAt(1, 525)).toBeCloseTo(42.5, 5);
  });

  test("records a lap begun behind the line (the grid) and the line crossing without a lap change", () => {
    const h = new LapHistory(1024, 10);
    h.record(0, -26, 0, 0); // on the grid
    h.record(0, -26, 3, 0); // still there 3 s later: the launch is at 3 s
    for (let i = 1; i <= 20; i++) h.record(0, -26 + 5 * i, 3 + i / 10, 0); // 50 m/s
    expect(h.timeAt(0, -26)).toBe(3);
    expect(h.timeAt(0, -13)).toBeCloseTo(3.26, 5);
    expect(h.timeAt(0, 0)).toBeCloseTo(3.52, 5);
    expect(h.timeAt(0, 44)).toBeCloseTo(4.4, 5);
    expect(h.timeAt(0, -30)).toBeNaN(); // never there
  });

  test("gives the first point recorded past a distance, on that lap or the next, with the speed on from there", () => {
    const h = new LapHistory(1024, 10);
    for (let i = 0; i <= 10; i++) h.record(1, 503 + 40 * (i / 10), 20 + i / 10, 1000); // from 503 m at 40 m/s
    const p = { lap: 0, distance: 0, time: 0, speed: 0 };
    expect(h.firstAfter(1, 300, p)).toBe(true);
    expect(p).toMatchObject({ lap: 1, distance: 503, time: 20 });
    expect(p.speed).toBeCloseTo(40, 3);
    expect(h.firstAfter(0, 900, p)).toBe(true); // the lap before: the first point of lap 1
    expect(p).toMatchObject({ lap: 1, distance: 503 });
    expect(h.firstAfter(1, 520, p)).toBe(true);
    expect(p.distance).toBe(530);
    expect(p.time).toBeCloseTo(20.675, 5);
    expect(h.firstAfter(1, 543, p)).toBe(false); // nothing recorded beyond its newest sample
  });
});
