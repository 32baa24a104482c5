import { describe, expect, test } from "vitest";
import type { Lap } from "../api/detail";
import { PIT_AFTER_S, PIT_BEFORE_S, indexLaps, lapsAt, overallBest, type LapsNow } from "./laptimes";

function lap(stream: string, n: number, t0: number, t1: number, lapTime: number | null, pit: Partial<Pick<Lap, "pitIn" | "pitOut">> = {}): Lap {
  return { stream, lap: n, t0Ns: t0 * 1e9, t1Ns: t1 * 1e9, lapTime, sectors: [], compound: "", pitIn: false, pitOut: false, ...pit };
}

const fresh = (): LapsNow => ({ last: 0, best: 0, pit: "" });

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
