import { describe, expect, test } from "vitest";
import { gearLabel, scaleFor } from "./draw";

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
