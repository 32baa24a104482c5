import { describe, expect, test } from "vitest";
import type { Lap } from "../api/detail";
import { LapHistory, TimingBoard, formatGap, indexLaps, lapsAt, overallBest, type LapsNow } from "./timing";

/** Distance [m] at time t [s] of a car that speeds up and slows down (never stops). */
const wavy = (t: number): number => 40 * t + 30 * Math.sin(t / 3);

/** Feed `board` car `name` driving `distanceAt` from t0 to t1 at `hz`, on a track of `length` m. */
function drive(board: TimingBoard, name: string, distanceAt: (t: number) => number, t0: number, t1: number, opts: { hz?: number; length?: number; position?: number } = {}): void {
  const { hz = 60, length = 1e9, position = 0 } = opts;
  for (let i = Math.round(t0 * hz); i <= Math.round(t1 * hz); i++) {
    const t = i / hz;
    const d = distanceAt(t);
    const speed = ((distanceAt(t + 1e-3) - d) / 1e-3) * 3.6;
    board.observe(name, t, Math.floor(d / length), d - Math.floor(d / length) * length, speed, position);
  }
}

function lap(stream: string, n: number, t0: number, t1: number, lapTime: number | null, pit: Partial<Pick<Lap, "pitIn" | "pitOut">> = {}): Lap {
  return { stream, lap: n, t0Ns: t0 * 1e9, t1Ns: t1 * 1e9, lapTime, sectors: [], compound: "", pitIn: false, pitOut: false, ...pit };
}

const fresh = (): LapsNow => ({ last: 0, best: 0, pit: "" });

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

  test("restarts when time goes backwards or jumps (a replay seek)", () => {
    const h = new LapHistory(1024, 10);
    for (let i = 0; i <= 50; i++) h.record(0, 5 * i, i / 10, 0);
    h.record(0, 100, 1, 0); // back in time
    expect(h.timeAt(0, 50)).toBeNaN();
    for (let i = 1; i <= 10; i++) h.record(0, 100 + 5 * i, 1 + i / 10, 0);
    expect(h.timeAt(0, 120)).toBeCloseTo(1.4, 5);
    h.record(0, 900, 60, 0); // 59 s later
    expect(h.timeAt(0, 120)).toBeNaN();
  });
});

describe("TimingBoard order", () => {
  test("follows the position channel when every car reports one", () => {
    const board = new TimingBoard();
    drive(board, "a", (t) => 10 * t, 0, 1, { position: 2 });
    drive(board, "b", (t) => 5 * t, 0, 1, { position: 1 });
    expect(board.rank().map((r) => [r.name, r.place])).toEqual([
      ["b", 1],
      ["a", 2],
    ]);
  });

  test("falls back to completed laps then lap distance when a position is missing", () => {
    const board = new TimingBoard();
    drive(board, "a", (t) => 10 * t, 0, 1, { position: 2 });
    drive(board, "b", (t) => 5 * t, 0, 1, { position: 0 });
    drive(board, "c", (t) => 20 * t, 0, 1, { position: 1 });
    expect(board.rank().map((r) => r.name)).toEqual(["c", "a", "b"]);
  });
});

describe("TimingBoard gaps", () => {
  test("are the time since the car ahead passed the same distance, whatever the speeds now", () => {
    const board = new TimingBoard();
    drive(board, "lead", wavy, 0, 30);
    drive(board, "second", (t) => wavy(t - 1.5), 1.5, 30);
    drive(board, "third", (t) => wavy(t - 4), 4, 30);
    const [lead, second, third] = board.rank();
    expect(lead?.name).toBe("lead");
    expect(lead?.gap).toBe(0);
    expect(lead?.interval).toBeNaN();
    expect(second?.gap).toBeCloseTo(1.5, 2);
    expect(third?.gap).toBeCloseTo(4, 2);
    expect(third?.interval).toBeCloseTo(2.5, 2);
  });

  test("count whole laps for a lapped car", () => {
    const board = new TimingBoard();
    const length = 1000;
    drive(board, "lead", (t) => 50 * t, 0, 70, { length }); // 3500 m: lap 3
    drive(board, "slow", (t) => 30 * t, 0, 70, { length }); // 2100 m: lap 2, 1400 m behind
    drive(board, "close", (t) => 50 * (t - 2), 2, 70, { length }); // 100 m behind
    const rows = board.rank();
    expect(rows.map((r) => r.name)).toEqual(["lead", "close", "slow"]);
    expect(board.trackLength).toBeGreaterThan(999);
    expect(rows[1]?.gapLaps).toBe(0);
    expect(rows[1]?.gap).toBeCloseTo(2, 2);
    expect(rows[2]?.gapLaps).toBe(1);
    expect(rows[2]?.intervalLaps).toBe(1); // 1300 m behind "close"
  });

  test("use the distance apart over the car's own speed where the history does not reach", () => {
    const board = new TimingBoard();
    board.observe("a", 100, 0, 500, 180, 1);
    board.observe("b", 100, 0, 400, 72, 2); // 100 m behind at 20 m/s
    board.observe("c", 100, 0, 390, 0, 3); // standing: no time gap can be given
    const rows = board.rank();
    expect(rows[1]?.gap).toBeCloseTo(5, 9);
    expect(rows[2]?.gap).toBeNaN();
  });
});

describe("formatGap", () => {
  test("shows seconds to the millisecond, minutes past 60 s, laps for lapped cars and a dash when unknown", () => {
    expect(formatGap(1.23456, 0)).toBe("+1.235");
    expect(formatGap(62.5, 0)).toBe("+1:02.500");
    expect(formatGap(3, 2)).toBe("+2 L");
    expect(formatGap(Number.NaN, 0)).toBe("—");
  });
});

describe("lapsAt", () => {
  const laps = indexLaps([
    lap("a", 1, 100, 190, 90),
    lap("b", 1, 100, 195, 95),
    lap("a", 0, 0, 100, 100),
    lap("a", 2, 190, 278, 88, { pitIn: true }),
    lap("a", 3, 278, 400, 122, { pitOut: true }),
    lap("a", 4, 400, 485, null),
  ]);

  test("gives the newest completed timed lap and the best one up to that instant", () => {
    expect(lapsAt(laps.get("a"), 50, fresh())).toMatchObject({ last: Number.NaN, best: Number.NaN });
    expect(lapsAt(laps.get("a"), 150, fresh())).toMatchObject({ last: 100, best: 100 });
    expect(lapsAt(laps.get("a"), 200, fresh())).toMatchObject({ last: 90, best: 90 });
    expect(lapsAt(laps.get("a"), 500, fresh())).toMatchObject({ last: 122, best: 88 }); // lap 4 untimed
    expect(lapsAt(undefined, 500, fresh())).toMatchObject({ last: Number.NaN, best: Number.NaN, pit: "" });
  });

  test("marks the pit-in lap and the one after it PIT, and the pit-out lap OUT", () => {
    expect(lapsAt(laps.get("a"), 200, fresh()).pit).toBe("PIT"); // on the in-lap
    expect(lapsAt(laps.get("a"), 300, fresh()).pit).toBe("PIT"); // previous lap ended in the pits
    expect(lapsAt(laps.get("a"), 450, fresh()).pit).toBe(""); // lap 4
    expect(lapsAt(laps.get("a"), 150, fresh()).pit).toBe("");
    const outOnly = indexLaps([lap("c", 1, 0, 100, 100, { pitOut: true })]);
    expect(lapsAt(outOnly.get("c"), 50, fresh()).pit).toBe("OUT");
  });

  test("the overall best is the smallest best lap of any car", () => {
    const at = (best: number): LapsNow => ({ last: Number.NaN, best, pit: "" });
    expect(overallBest([95, Number.NaN, 88, 90].map(at))).toBe(88);
    expect(overallBest([at(Number.NaN)])).toBeNaN();
  });
});
