import { describe, expect, test } from "vitest";
import type { CarInfo } from "../../api/detail";
import { PALETTE, abbreviate, pitCars, raceNumber, sameCars } from "./cars";

const info = (stream: string, colour: string, driver = ""): CarInfo => ({ stream, driver, car: "", colour, frames: 0, t0Ns: 0, t1Ns: 0 });

describe("pitCars", () => {
  test("lists advertised cars first, then cars only the detail knows, with the detail's colours", () => {
    const cars = pitCars(
      [
        { id: 1, name: "car-2", driver: "Lena Brandt", car: "GT3 #27" },
        { id: 2, name: "car-9", driver: "", car: "" },
      ],
      [info("car-2", "#123456"), info("car-5", "#abcdef", "Ben Okafor")],
    );
    expect(cars.map((c) => [c.name, c.colour, c.abbrev, c.number])).toEqual([
      ["car-2", "#123456", "BRA", "#27"],
      ["car-9", PALETTE[1], "9", ""],
      ["car-5", "#abcdef", "OKA", ""],
    ]);
  });

  test("two lists that draw the same compare equal, a changed colour does not", () => {
    const a = pitCars([], [info("car-1", "#111111")]);
    expect(sameCars(a, pitCars([], [info("car-1", "#111111")]))).toBe(true);
    expect(sameCars(a, pitCars([], [info("car-1", "#222222")]))).toBe(false);
  });
});

describe("abbreviate and raceNumber", () => {
  test("take the surname's first three letters or the stream name's last part, and the #number", () => {
    expect(abbreviate("Inès Duval", "car-3")).toBe("DUV");
    expect(abbreviate("", "car-12")).toBe("12");
    expect(raceNumber("GT3 # 7")).toBe("#7");
    expect(raceNumber("LMP2")).toBe("");
  });
});
