import { describe, expect, test } from "vitest";
import type { Lap } from "../api/detail";
import { LapHistory, PIT_AFTER_S, PIT_BEFORE_S, TimingBoard, formatGap, indexLaps, lapsAt, overallBest, type LapsNow } from "./timing";

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
    expect(h.timeAt(0, 905)).toBeNaN(); // the step at 900 m lies on the hole's edge
  });

  test("a pause shorter than one step of distance (a stop) is not interpolated over either", () => {
    const h = new LapHistory(1024, 10);
    for (let i = 0; i <= 10; i++) h.record(0, 100 + i, i, 0); // 1 m/s from 100 m
    h.record(0, 112, 40, 0); // stood (unsampled) for 29 s
    for (let i = 1; i <= 10; i++) h.record(0, 112 + i, 40 + i, 0);
    expect(h.timeAt(0, 105)).toBeCloseTo(5, 5);
    expect(h.timeAt(0, 115)).toBeNaN();
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

  test("in replay: nothing far into an in-lap, PIT around its end and the stop, OUT on the out-lap", () => {
    const a = laps.get("a"); // lap 2 (190-278 s) ends in the pits, lap 3 (278-400 s) leaves them
    expect(lapsAt(a, 150, fresh()).pit).toBe("");
    expect(lapsAt(a, 200, fresh()).pit).toBe(""); // early in the in-lap
    expect(lapsAt(a, 278 - PIT_BEFORE_S - 1, fresh()).pit).toBe("");
    expect(lapsAt(a, 270, fresh()).pit).toBe("PIT"); // pit entry
    expect(lapsAt(a, 278, fresh()).pit).toBe("PIT");
    expect(lapsAt(a, 278 + PIT_AFTER_S - 1, fresh()).pit).toBe("PIT"); // in the box
    expect(lapsAt(a, 278 + PIT_AFTER_S + 1, fresh()).pit).toBe("OUT");
    expect(lapsAt(a, 300, fresh()).pit).toBe("OUT");
    expect(lapsAt(a, 399, fresh()).pit).toBe("OUT");
    expect(lapsAt(a, 450, fresh()).pit).toBe(""); // lap 4
  });

  test("between two laps' frames the next lap counts as the current one", () => {
    const gap = indexLaps([lap("e", 1, 0, 100, 100, { pitIn: true }), lap("e", 2, 100.1, 200, 100, { pitOut: true }), lap("e", 3, 200.1, 300, 100)]);
    expect(lapsAt(gap.get("e"), 100.05, fresh()).pit).toBe("PIT");
    expect(lapsAt(gap.get("e"), 200.05, fresh()).pit).toBe("");
  });

  test("live, with the lap under way not listed: PIT just after an in-lap ended, then OUT", () => {
    const live = indexLaps([lap("d", 1, 0, 100, 100), lap("d", 2, 100, 190, 90, { pitIn: true })]);
    expect(lapsAt(live.get("d"), 150, fresh()).pit).toBe(""); // the in-lap is not known before it ends
    expect(lapsAt(live.get("d"), 192, fresh()).pit).toBe("PIT");
    expect(lapsAt(live.get("d"), 250, fresh()).pit).toBe("OUT");
    const flying = indexLaps([lap("d", 1, 0, 100, 100, { pitOut: true })]);
    expect(lapsAt(flying.get("d"), 150, fresh()).pit).toBe(""); // the out-lap is done
  });

  test("an out-lap from the garage is OUT; an in-out lap is OUT, then PIT near its end", () => {
    const outOnly = indexLaps([lap("c", 1, 0, 100, 100, { pitOut: true })]);
    expect(lapsAt(outOnly.get("c"), 50, fresh()).pit).toBe("OUT");
    const inOut = indexLaps([lap("f", 1, 0, 100, 100, { pitOut: true, pitIn: true })]);
    expect(lapsAt(inOut.get("f"), 50, fresh()).pit).toBe("OUT");
    expect(lapsAt(inOut.get("f"), 95, fresh()).pit).toBe("PIT");
  });

  test("the overall best is the smallest best lap of any car", () => {
    const at = (best: number): LapsNow => ({ last: Number.NaN, best, pit: "" });
    expect(overallBest([95, Number.NaN, 88, 90].map(at))).toBe(88);
    expect(overallBest([at(Number.NaN)])).toBeNaN();
  });
});
