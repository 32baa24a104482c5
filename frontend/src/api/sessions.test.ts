import { describe, expect, test } from "vitest";
import { chooseSession, parseSessions, switchTarget, type SessionSummary } from "./sessions";

const session = (id: string, live: boolean, track = "t"): SessionSummary => ({
  session_id: id,
  track,
  source: "sim",
  started_ns: 0,
  live,
  streams: 1,
  frames: 0,
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
    const body = [{ session_id: "s", track: "spa", source: "f1", started_ns: 5, live: true, streams: 20, frames: 9 }];
    expect(parseSessions(body)).toEqual(body);
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
