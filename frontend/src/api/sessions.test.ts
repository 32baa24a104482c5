import { describe, expect, test } from "vitest";
import { abbreviateDrivers, chooseSession, formatDuration, formatPercent, parseSessions, switchTarget, type SessionSummary } from "./sessions";

const session = (id: string, live: boolean, track = "t"): SessionSummary => ({
  session_id: id,
  track,
  source: "sim",
  started_ns: 0,
  live,
  streams: 1,
  frames: 0,
  laps: null,
  t0_ns: 0,
  t1_ns: 0,
  duration_s: null,
  cars: [],
  completeness: null,
});

describe("chooseSession", () => {
  test("the ?session= parameter wins even if the session is not listed yet", () => {
    expect(chooseSession([session("a", true)], "zzz")).toEqual({ id: "zzz", track: "" });
    expect(chooseSession([session("a", true, "monza")], "a")).toEqual({ id: "a", track: "monza" });
  });

  test("without a parameter the first live session is chosen", () => {
    expect(chooseSession([session("new", false), session("live", true), session("old", true)], null)?.id).toBe("live");
  });

  test("without a live session the first (newest) is chosen", () => {
    expect(chooseSession([session("new", false), session("old", false)], null)?.id).toBe("new");
  });

  test("no sessions and no parameter gives null (show the 'no sessions yet' hint)", () => {
    expect(chooseSession([], null)).toBeNull();
    expect(chooseSession([], "")).toBeNull();
  });
});

describe("parseSessions", () => {
  test("a well-formed body is returned with every field", () => {
    const body = [
      {
        session_id: "s",
        track: "spa",
        source: "f1",
        started_ns: 5,
        live: true,
        streams: 1,
        frames: 9,
        laps: 3,
        t0_ns: 10,
        t1_ns: 20,
        duration_s: 1e-8,
        cars: [{ stream_id: "car-1", driver: "Lena Brandt", car: "GT3 #27" }],
        completeness: 0.5,
      },
    ];
    expect(parseSessions(body)).toEqual(body);
  });

  test("an older server's entry without the newer fields parses with them unknown", () => {
    const [s] = parseSessions([{ session_id: "s", track: "spa", source: "f1", started_ns: 5, live: false, streams: 20, frames: 9 }]);
    expect(s).toMatchObject({ laps: null, t0_ns: 0, t1_ns: 0, duration_s: null, cars: [], completeness: null });
  });

  test("malformed newer fields are dropped, not trusted", () => {
    const [s] = parseSessions([{ session_id: "s", duration_s: -1, completeness: null, cars: [{ driver: "x" }, 5, { stream_id: "c", driver: 3 }] }]);
    expect(s).toMatchObject({ duration_s: null, completeness: null, cars: [{ stream_id: "c", driver: "", car: "" }] });
  });

  test("a body that is not an array, or an entry without session_id, is rejected", () => {
    expect(() => parseSessions({})).toThrow(/array/);
    expect(() => parseSessions([{ track: "x" }])).toThrow(/\[0\]\.session_id/);
  });
});

describe("switchTarget", () => {
  test("a session that is still live is kept", () => {
    expect(switchTarget([session("new", true), session("cur", true)], "cur")).toBeNull();
  });

  test("when the current session ended or vanished, the first live one is taken", () => {
    expect(switchTarget([session("new", true, "spa"), session("cur", false)], "cur")).toEqual({ id: "new", track: "spa" });
    expect(switchTarget([session("new", true)], "gone")).toEqual({ id: "new", track: "t" });
  });

  test("with no live session to go to, the current one is kept", () => {
    expect(switchTarget([session("cur", false), session("old", false)], "cur")).toBeNull();
  });
});

describe("formatting", () => {
  test("durations read h:mm:ss, unknown as a dash", () => {
    expect(formatDuration(3723.4)).toBe("1:02:03");
    expect(formatDuration(199.98)).toBe("0:03:20"); // to the nearest second
    expect(formatDuration(59)).toBe("0:00:59");
    expect(formatDuration(null)).toBe("—");
  });

  test("completeness is floored so an incomplete session never reads 100 %", () => {
    expect(formatPercent(1)).toBe("100 %");
    expect(formatPercent(0.99999)).toBe("99.99 %");
    expect(formatPercent(0.5)).toBe("50.00 %");
    expect(formatPercent(null)).toBe("—");
  });

  test("drivers are shortened to surnames with a count of the rest", () => {
    const cars = ["Lena Brandt", "Ari Kowalski", "Mo Diaz"].map((d, i) => ({ stream_id: `car-${i}`, driver: d, car: "" }));
    expect(abbreviateDrivers(cars)).toBe("Brandt, Kowalski +1");
    expect(abbreviateDrivers([{ stream_id: "car-9", driver: "", car: "" }])).toBe("car-9");
  });
});
