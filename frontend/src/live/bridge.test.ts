import { describe, expect, test } from "vitest";
import { backoff, resumeAt, socketUrl } from "./bridge";

describe("socketUrl", () => {
  test("http origins map to ws:// and https to wss://, with ?format=bin", () => {
    expect(socketUrl("http://127.0.0.1:8000", "demo")).toBe("ws://127.0.0.1:8000/ws/demo?format=bin");
    expect(socketUrl("https://pit.example", "demo")).toBe("wss://pit.example/ws/demo?format=bin");
  });

  test("the session id is escaped as one path segment", () => {
    expect(socketUrl("http://h", "a b/c")).toBe("ws://h/ws/a%20b%2Fc?format=bin");
  });
});

describe("backoff", () => {
  test("the delay doubles from 0.5 s and is capped at 5 s", () => {
    const mid = (): number => 0.5; // no jitter
    expect([0, 1, 2, 3, 4, 10].map((a) => backoff(a, mid))).toEqual([0.5, 1, 2, 4, 5, 5]);
  });

  test("jitter stays within ±20 %", () => {
    expect(backoff(0, () => 0)).toBeCloseTo(0.4);
    expect(backoff(0, () => 1)).toBeCloseTo(0.6);
  });
});

describe("resumeAt (where a replay reopens after a reconnect)", () => {
  const clock = { tNs: 1e18, endNs: 1e18 + 60e9, speed: 4, playing: true, at: 1000 };

  test("a playing replay resumes where its clock has run to since the last clock message", () => {
    expect(resumeAt(clock, 3500)).toBe(1e18 + 2.5 * 4 * 1e9);
  });

  test("never past the end; a paused one where it was", () => {
    expect(resumeAt(clock, 100_000)).toBe(1e18 + 60e9);
    expect(resumeAt({ ...clock, playing: false }, 3500)).toBe(1e18);
  });
});
