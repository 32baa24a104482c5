import { describe, expect, test } from "vitest";
import { TimingBoard, formatGap } from "./timing";

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


/**
 * A 6-car race on a 4.2 km lap, as the simulator sends it: car i starts from rest 10 + 8 i m
 * behind the line (negative lap distance, 0 completed laps until a full lap past the line),
 * then drives the same speed profile along the track (45-65 m/s), each car 0.4 % slower
 * than the one ahead. racePassed(i, d): when car i passed total distance d [m];
 * raceDistance(i, t): where it is at t [s] (tables at 1 m, linear in between).
 */
const RACE_LAP_M = 4200;
const RACE_CARS = 6;
const RACE_M = 3.5 * RACE_LAP_M;
const raceTables = Array.from({ length: RACE_CARS }, (_, i) => {
  const start = -(10 + 8 * i);
  const times = new Float64Array(RACE_M + 1);
  const speed = (s: number): number => (1 - 0.004 * i) * (55 + 10 * Math.sin((2 * Math.PI * s) / 700)) * Math.min(1, Math.sqrt((s - start + 0.5) / 150));
  for (let k = 1; k <= RACE_M; k++) times[k] = (times[k - 1] ?? 0) + (1 / speed(start + k - 1) + 1 / speed(start + k)) / 2;
  return { start, times };
});

function racePassed(i: number, d: number): number {
  const { start, times } = raceTables[i] ?? { start: 0, times: new Float64Array() };
  const k = Math.floor(d - start);
  const t0 = times[k] ?? Number.NaN;
  return t0 + ((times[k + 1] ?? Number.NaN) - t0) * (d - start - k);
}

function raceDistance(i: number, t: number): number {
  const { start, times } = raceTables[i] ?? { start: 0, times: new Float64Array() };
  let lo = 0;
  let hi = times.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if ((times[mid] ?? 0) <= t) lo = mid;
    else hi = mid;
  }
  const t0 = times[lo] ?? 0;
  return start + lo + (t - t0) / ((times[hi] ?? 0) - t0);
}

/** How long ago car `ahead` passed where car `behind` is at t [s]. */
const raceBehind = (ahead: number, behind: number, t: number): number => t - racePassed(ahead, raceDistance(behind, t));

/** Feed `board` every car's samples at 30 Hz from t0 to t1 [s], car after car each tick (as the tower does). */
function feedRace(board: TimingBoard, t0: number, t1: number, each?: (t: number) => void): void {
  const hz = 30;
  for (let k = Math.round(t0 * hz); k <= Math.round(t1 * hz); k++) {
    const t = k / hz;
    for (let i = 0; i < RACE_CARS; i++) {
      const d = raceDistance(i, t);
      const lap = Math.max(0, Math.floor(d / RACE_LAP_M));
      const speed = ((raceDistance(i, t + 1e-4) - d) / 1e-4) * 3.6;
      board.observe(`car-${i + 1}`, t, lap, d - lap * RACE_LAP_M, speed, i + 1); // no overtaking: position = i + 1
    }
    if (k % 6 === 0) each?.(t); // the tower redraws at 5 Hz
  }
}


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

  test("stay history-based for cars sampled 2.5 s apart", () => {
    const board = new TimingBoard();
    // Time order across cars, as the tower feeds them; the second car follows 4 s behind.
    for (let i = 0; i <= 12; i++) {
      const t = 2.5 * i;
      board.observe("lead", t, 0, wavy(t), 0, 1);
      if (t >= 4) board.observe("second", t + 0.3, 0, wavy(t + 0.3 - 4), 0, 2); // speed 0: no fallback
    }
    const [, second] = board.rank();
    expect(second?.name).toBe("second");
    expect(second?.gap).toBeCloseTo(4, 1);
  });

  test("use the distance apart over the mean of both cars' speeds where the history does not reach", () => {
    const board = new TimingBoard();
    board.observe("a", 100, 0, 500, 180, 1);
    board.observe("b", 100, 0, 400, 72, 2); // 100 m behind at 20 m/s, "a" at 50 m/s
    board.observe("c", 100, 0, 390, 0, 3); // standing behind a standing car: no time gap can be given
    board.observe("d", 100, 0, 389, 0, 4);
    const rows = board.rank();
    expect(rows[1]?.interval).toBeCloseTo(100 / 35, 9);
    expect(rows[1]?.gap).toBeCloseTo(100 / 35, 9);
    expect(rows[2]?.interval).toBeCloseTo(10 / 10, 9); // (0 + 20 m/s) / 2
    expect(rows[3]?.interval).toBeNaN();
    expect(rows[3]?.gap).toBeNaN();
  });
});

describe("TimingBoard in a race", () => {
  test("each gap is the gap of the car ahead plus the interval, never less than the gap ahead, and no car on the lead lap shows laps", () => {
    const board = new TimingBoard();
    let checked = 0;
    feedRace(board, 0, 250, () => {
      const rows = board.rank();
      expect(rows).toHaveLength(RACE_CARS);
      rows.forEach((row, i) => {
        expect(row.gapLaps).toBe(0);
        expect(row.intervalLaps).toBe(0);
        const ahead = rows[i - 1];
        if (ahead === undefined || !Number.isFinite(row.gap)) return;
        expect(row.gap).toBeCloseTo(ahead.gap + row.interval, 9);
        expect(row.gap).toBeGreaterThanOrEqual(ahead.gap);
        checked++;
      });
    });
    expect(checked).toBeGreaterThan(5 * 1200);
  });

  test("gaps and intervals are the time since the leader and the car ahead passed the same point, from the grid on", () => {
    const board = new TimingBoard();
    feedRace(board, 0, 250, (t) => {
      if (t < 10) return; // under way (in the launch gaps shrink fast, and the gap is summed from the intervals)
      for (const [i, row] of board.rank().entries()) {
        if (i === 0) continue;
        expect(row.name).toBe(`car-${i + 1}`);
        expect(row.lap).toBe(Math.max(0, Math.floor(raceDistance(i, t) / RACE_LAP_M)));
        expect(Math.abs(row.interval - raceBehind(i - 1, i, t))).toBeLessThan(0.02);
        expect(Math.abs(row.gap - raceBehind(0, i, t))).toBeLessThan(0.06);
      }
    });
  });

  test("do not jump from one redraw to the next, nor when history takes over after a seek", () => {
    for (const seekTo of [Number.NaN, 181.3, 215]) {
      const board = new TimingBoard();
      const last = new Map<string, { t: number; gap: number; interval: number }>();
      const check = (t: number): void => {
        board.rank().forEach((row, i) => {
          if (i === 0) return;
          const was = last.get(row.name);
          if (was !== undefined) {
            // By no more than the true gap and interval change by (the pace difference) + 40 ms.
            expect(Math.abs(row.gap - was.gap - (raceBehind(0, i, t) - raceBehind(0, i, was.t)))).toBeLessThan(0.04);
            expect(Math.abs(row.interval - was.interval - (raceBehind(i - 1, i, t) - raceBehind(i - 1, i, was.t)))).toBeLessThan(0.04);
          }
          last.set(row.name, { t, gap: row.gap, interval: row.interval });
        });
      };
      if (Number.isNaN(seekTo)) {
        feedRace(board, 5, 260, check);
      } else {
        feedRace(board, 5, 20); // then a forward seek: the rings restart empty at seekTo
        feedRace(board, seekTo, seekTo + 20, check);
      }
    }
  });

  test("right after a seek, the estimate where history does not reach agrees with the history-based values", () => {
    const full = new TimingBoard();
    feedRace(full, 0, 200);
    const seeked = new TimingBoard();
    feedRace(seeked, 200 - 1 / 30, 200);
    const a = full.rank().map((r) => ({ ...r }));
    const b = seeked.rank();
    a.forEach((row, i) => {
      expect(b[i]?.name).toBe(row.name);
      if (i > 0) expect(Math.abs((b[i]?.interval ?? Number.NaN) - row.interval)).toBeLessThan(0.05);
      expect(Math.abs((b[i]?.gap ?? Number.NaN) - row.gap)).toBeLessThan(0.15);
    });
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
