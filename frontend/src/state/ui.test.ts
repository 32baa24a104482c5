import { describe, expect, test } from "vitest";
import { pickStream } from "./ui";

const s = (name: string) => ({ id: 0, name, driver: "", car: "" });

describe("pickStream", () => {
  test("the current car stays selected while it is advertised", () => {
    expect(pickStream([s("a"), s("b")], "b", null)).toBe("b");
  });

  test("the ?car= parameter is used when the current car is unknown", () => {
    expect(pickStream([s("a"), s("b")], null, "b")).toBe("b");
  });

  test("otherwise the first advertised car is selected", () => {
    expect(pickStream([s("a"), s("b")], "gone", "missing")).toBe("a");
    expect(pickStream([], null, null)).toBeNull();
  });
});
