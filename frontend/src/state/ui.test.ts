import { describe, expect, test } from "vitest";
import { clockAt, pickStream, useUi } from "./ui";

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

describe("the UI store", () => {
  const clock = { epoch: 1, t: 100, playing: true, speed: 2, start: 0, end: 200, fps: 25, delay: null, ended: false, receivedAt: 1000 };

  test("chart channels toggle in menu order", () => {
    useUi.setState({ chartChannels: ["speed", "brake"] });
    useUi.getState().toggleChartChannel("throttle");
    expect(useUi.getState().chartChannels).toEqual(["speed", "throttle", "brake"]);
    useUi.getState().toggleChartChannel("speed");
    expect(useUi.getState().chartChannels).toEqual(["throttle", "brake"]);
  });

  test("a new mode or session forgets the replay clock and any notice", () => {
    useUi.setState({ clock, notice: { level: "error", code: "replay_refused", message: "no" } });
    useUi.getState().setMode("live");
    expect(useUi.getState().clock).toBeNull();
    expect(useUi.getState().notice).toBeNull();
    useUi.setState({ clock, sessionId: "a", phase: "ready" });
    useUi.getState().resetSession();
    expect(useUi.getState()).toMatchObject({ clock: null, sessionId: null, phase: "loading" });
  });

  test("clockAt runs a playing clock at its speed, clamped to its range; a paused one stands", () => {
    expect(clockAt(clock, 3000)).toBe(104);
    expect(clockAt(clock, 1_000_000)).toBe(200);
    expect(clockAt({ ...clock, playing: false }, 3000)).toBe(100);
  });

  test("a delayed-live clock's end moves with the wall clock", () => {
    const delayed = { ...clock, speed: 1, t: 199, delay: 30 };
    expect(clockAt(delayed, 4000)).toBe(202);
  });
});
