import { describe, expect, test } from "vitest";
import type { Lap } from "../../api/detail";
import { formatClock, fraction, keyAction, lapStarts, neighbourLap, nextSpeed, speedFromQuery, startFromQuery, type TransportState } from "./transport";

const laps = [
  { lap: 1, t: 100 },
  { lap: 2, t: 190 },
  { lap: 3, t: 280 },
];
const state: TransportState = { playing: true, speed: 1, t: 200, start: 50, end: 350, fps: 25, laps, stream: "car-1" };

describe("keyAction", () => {
  test("space and K toggle play and pause", () => {
    expect(keyAction(" ", false, state)).toEqual({ action: "pause" });
    expect(keyAction("k", false, { ...state, playing: false })).toEqual({ action: "play" });
  });

  test("arrows step one second, ten with Shift; comma and period step one frame", () => {
    expect(keyAction("ArrowLeft", false, state)).toEqual({ action: "step", by: -1 });
    expect(keyAction("ArrowRight", true, state)).toEqual({ action: "step", by: 10 });
    expect(keyAction(".", false, state)).toEqual({ action: "step", by: 1 / 25 });
    expect(keyAction(",", false, state)).toEqual({ action: "step", by: -1 / 25 });
  });

  test("brackets move along the speed ladder", () => {
    expect(keyAction("]", false, state)).toEqual({ action: "speed", speed: 2 });
    expect(keyAction("[", false, state)).toEqual({ action: "speed", speed: 0.5 });
  });

  test("Home, End and digits seek to the start, the end and tenths of the session [ns]", () => {
    expect(keyAction("Home", false, state)).toEqual({ action: "seek", t: 50e9 });
    expect(keyAction("End", false, state)).toEqual({ action: "seek", t: 350e9 });
    expect(keyAction("5", false, state)).toEqual({ action: "seek", t: 200e9 });
  });

  test("N and P seek to the next and previous lap start of the focused car", () => {
    expect(keyAction("n", false, state)).toEqual({ action: "seek", t: 280e9 });
    expect(keyAction("p", false, state)).toEqual({ action: "seek", t: 190e9 });
    expect(keyAction("n", false, { ...state, t: 300 })).toBeNull();
  });

  test("other keys are not the transport's", () => {
    expect(keyAction("a", false, state)).toBeNull();
    expect(keyAction("Enter", false, state)).toBeNull();
  });
});

describe("speeds and laps", () => {
  test("nextSpeed clamps at both ends and snaps an off-ladder speed to its neighbour", () => {
    expect(nextSpeed(32, 1)).toBe(32);
    expect(nextSpeed(0.25, -1)).toBe(0.25);
    expect(nextSpeed(3, 1)).toBe(4);
    expect(nextSpeed(3, -1)).toBe(2);
  });

  test("previous lap within two seconds of a lap start goes to the lap before", () => {
    expect(neighbourLap(laps, 191, -1)).toEqual({ lap: 1, t: 100 });
    expect(neighbourLap(laps, 195, -1)).toEqual({ lap: 2, t: 190 });
    expect(neighbourLap(laps, 50, -1)).toEqual({ lap: 1, t: 100 });
    expect(neighbourLap([], 50, 1)).toBeNull();
  });

  test("lapStarts keeps the focused car's laps in time order", () => {
    const lap = (stream: string, n: number, t0: number): Lap => ({
      stream, lap: n, t0Ns: t0 * 1e9, t1Ns: (t0 + 90) * 1e9, lapTime: 90, sectors: [], compound: "", pitIn: false, pitOut: false,
    });
    const all = [lap("b", 1, 10), lap("a", 2, 100), lap("a", 1, 10)];
    expect(lapStarts(all, "a")).toEqual([
      { lap: 1, t: 10 },
      { lap: 2, t: 100 },
    ]);
    expect(lapStarts(all, null)).toEqual([]);
  });
});

describe("formatting and the URL", () => {
  test("formatClock shows minutes, hours when needed, and rounds to a tenth without 60.0", () => {
    expect(formatClock(0)).toBe("0:00.0");
    expect(formatClock(59.96)).toBe("1:00.0");
    expect(formatClock(3723.45)).toBe("1:02:03.5");
    expect(formatClock(-5)).toBe("-0:05.0");
    expect(formatClock(Number.NaN)).toBe("—");
  });

  test("fraction is clamped to the bar and 0 for an empty range", () => {
    expect(fraction(150, 100, 200)).toBe(0.5);
    expect(fraction(250, 100, 200)).toBe(1);
    expect(fraction(50, 100, 100)).toBe(0);
  });

  test("?t= is seconds from the session start, clamped to its end; bad values mean the start", () => {
    expect(startFromQuery("12.5", 1e18, 2e18)).toBe(1e18 + 12.5e9);
    expect(startFromQuery("1e12", 1e18, 1e18 + 5e9)).toBe(1e18 + 5e9);
    for (const bad of [null, "", "abc", "-3", "0"]) expect(startFromQuery(bad, 1e18, 2e18)).toBeNull();
  });

  test("?speed= within the server's 0.1-64, else 1", () => {
    expect(speedFromQuery("4")).toBe(4);
    expect(speedFromQuery("100")).toBe(1);
    expect(speedFromQuery(null)).toBe(1);
  });
});
