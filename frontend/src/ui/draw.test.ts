import { describe, expect, test } from "vitest";
import { SHIFT_LEDS, SHIFT_LIMIT, SHIFT_START, gearLabel, scaleFor, shiftLightsLit, steerLabel } from "./draw";

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

describe("steerLabel", () => {
  test("radians become whole degrees, positive to the left, and no data is a dash", () => {
    expect(steerLabel(Math.PI / 2)).toBe("90");
    expect(steerLabel(-0.5)).toBe("-29");
    expect(steerLabel(Number.NaN)).toBe("—");
  });
});
