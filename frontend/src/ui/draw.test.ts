import { describe, expect, test } from "vitest";
import { SHIFT_LEARN_S, SHIFT_LEDS, SHIFT_LIMIT, SHIFT_START, gearLabel, scaleFor, shiftLights, shiftLightsLit, shiftLimit, steerLabel } from "./draw";

describe("gearLabel", () => {
  test("-1 is R, 0 is N, positive gears are their number and no data is a dash", () => {
    expect([-1, 0, 1, 8, 3.0000001].map(gearLabel)).toEqual(["R", "N", "1", "8", "3"]);
    expect(gearLabel(Number.NaN)).toBe("—");
  });
});

describe("scaleFor", () => {
  test("a dial keeps its floor until a value exceeds it, then grows in whole steps", () => {
    expect(scaleFor(250, 300, 50)).toBe(300);
    expect(scaleFor(312, 300, 50)).toBe(350);
    expect(scaleFor(Number.NaN, 8000, 1000)).toBe(8000);
    expect(scaleFor(12_001, 8000, 1000)).toBe(13_000);
  });
});

describe("shiftLightsLit", () => {
  test("no light below the start, more as rpm rises, all of them at the limit", () => {
    expect(shiftLightsLit(SHIFT_START - 0.1)).toBe(0);
    expect(shiftLightsLit((SHIFT_START + SHIFT_LIMIT) / 2)).toBe(Math.round(SHIFT_LEDS / 2));
    expect(shiftLightsLit(SHIFT_LIMIT)).toBe(SHIFT_LEDS);
    expect(shiftLightsLit(1.2)).toBe(SHIFT_LEDS);
    expect(shiftLightsLit(Number.NaN)).toBe(0);
  });
});

describe("shiftLights", () => {
  test("none at idle, more as rpm rises, all flashing from 97 % of the limit", () => {
    expect(shiftLights(4000, 12_000)).toEqual({ lit: 0, flashing: false });
    expect(shiftLights(0.6 * 12_000, 12_000)).toEqual({ lit: 0, flashing: false });
    expect(shiftLights(0.835 * 12_000, 12_000)).toEqual({ lit: Math.round(SHIFT_LEDS / 2), flashing: false });
    expect(shiftLights(0.96 * 12_000, 12_000).flashing).toBe(false);
    expect(shiftLights(0.97 * 12_000, 12_000)).toEqual({ lit: SHIFT_LEDS, flashing: true });
    expect(shiftLights(13_000, 12_000).flashing).toBe(true);
  });

  test("no rpm or no limit lights nothing", () => {
    expect(shiftLights(Number.NaN, 12_000)).toEqual({ lit: 0, flashing: false });
    expect(shiftLights(9000, Number.NaN)).toEqual({ lit: 0, flashing: false });
    expect(shiftLights(9000, 0)).toEqual({ lit: 0, flashing: false });
  });
});

describe("shiftLimit", () => {
  test("a car just seen (its peak is its idle or first gear) counts up to the gauge's full scale", () => {
    // First sample after a focus change: the peak is the rpm itself; the lights stay off at idle.
    expect(shiftLights(900, shiftLimit(900, 0, scaleFor(900, 8000, 1000)))).toEqual({ lit: 0, flashing: false });
    // Still learning while reaching new highs: not flashing at each one.
    expect(shiftLights(6200, shiftLimit(6200, SHIFT_LEARN_S / 2, scaleFor(6200, 8000, 1000))).flashing).toBe(false);
    expect(shiftLimit(11_800, SHIFT_LEARN_S - 1, 12_000)).toBe(12_000);
  });

  test("once seen for a while, the car's highest rpm is its limit", () => {
    expect(shiftLimit(11_800, SHIFT_LEARN_S, 12_000)).toBe(11_800);
    expect(shiftLights(0.97 * 11_800, shiftLimit(11_800, 60, 12_000)).flashing).toBe(true);
    expect(shiftLights(4000, shiftLimit(11_800, 60, 12_000)).lit).toBe(0);
    expect(shiftLimit(Number.NaN, 60, 8000)).toBe(8000);
  });
});

describe("steerLabel", () => {
  test("radians become whole degrees, positive to the left, and no data is a dash", () => {
    expect(steerLabel(Math.PI / 2)).toBe("90");
    expect(steerLabel(-0.5)).toBe("-29");
    expect(steerLabel(Number.NaN)).toBe("—");
  });
});
