import { afterEach, describe, expect, test, vi } from "vitest";
import { fetchLaps, framesUrl, parseFrames } from "./frames";

const body = {
  session_id: "race20",
  t0_ns: 1795310227874343538,
  from: 10.0,
  to: 10.05,
  streams: [
    { stream_id: "car-1", t: [10.0, 10.016666667, 10.033333333], channels: { speed: [220.67, null, 221.01], gear: [5, 5, 5] } },
    { stream_id: "car-7", t: [], channels: {} },
  ],
};

describe("parseFrames", () => {
  test("the documented JSON shape becomes typed columns, null read as NaN", () => {
    const r = parseFrames(body);
    expect(r.session).toBe("race20");
    expect(r.from).toBe(10);
    expect(r.streams.map((s) => s.stream)).toEqual(["car-1", "car-7"]);
    const s = r.streams[0]!;
    expect(s.t).toBeInstanceOf(Float64Array);
    expect(Array.from(s.t)).toEqual([10.0, 10.016666667, 10.033333333]);
    expect(Array.from(s.channels.get("speed")!)).toEqual([220.67, Number.NaN, 221.01]);
    expect([...s.channels.keys()]).toEqual(["speed", "gear"]);
    expect(r.streams[1]!.t.length).toBe(0);
  });

  test("a column whose length differs from the time column is rejected, naming it", () => {
    const bad = { ...body, streams: [{ stream_id: "c", t: [1, 2], channels: { speed: [1] } }] };
    expect(() => parseFrames(bad)).toThrow(/streams\[0\]\.channels\.speed: 1 values for 2 frames/);
  });

  test("bodies that are not the frames shape are rejected", () => {
    expect(() => parseFrames([])).toThrow(/object/);
    expect(() => parseFrames({ session_id: "s" })).toThrow(/streams/);
    expect(() => parseFrames({ session_id: "s", streams: [{ stream_id: "c", t: [null], channels: {} }] })).toThrow(/finite/);
    expect(() => parseFrames({ session_id: "s", streams: [{ stream_id: "c", t: [1], channels: { x: ["a"] } }] })).toThrow(/x\[0\]/);
  });
});

describe("framesUrl", () => {
  test("parameters are encoded, from clamped to 0 and times rounded to the microsecond", () => {
    const url = framesUrl("a b", { from: -1e-7, to: 85.1234567, streams: ["car-1"], channels: ["lap_distance", "speed"] });
    expect(url).toBe("/api/sessions/a%20b/frames?from=0&to=85.123457&streams=car-1&channels=lap_distance%2Cspeed&format=json");
  });
});

const T0 = 1_000_000_000_000_000_000;
const detailBody = {
  session_id: "s1",
  track: "ring",
  streams: [{ stream_id: "car-1", driver: "Lena Brandt", car: "GT3", colour: "#e6194b" }],
  laps: [{ stream_id: "car-1", lap: 1, t0_ns: T0 + 10e9, t1_ns: T0 + 12e9, lap_time: 2 }],
  channels: [{ name: "lap_distance", unit: "m" }, { name: "speed", unit: "km/h" }],
  time_range: { t0_ns: T0, t1_ns: T0 + 20e9, duration_s: 20 },
};

/** A fetch answering from `routes` (path → [status, body]); unknown paths answer 404. */
function serve(routes: Record<string, [number, unknown]>): string[] {
  const asked: string[] = [];
  vi.stubGlobal("fetch", async (url: string) => {
    asked.push(url);
    const path = url.split("?")[0] ?? url;
    const [status, body] = routes[path] ?? [404, { error: `no session '${path.split("/")[3] ?? ""}'` }];
    return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  });
  return asked;
}

describe("fetchLaps", () => {
  afterEach(() => vi.unstubAllGlobals());

  test("a lap's frames are asked for its time range and come back as a trace from the lap start", async () => {
    const asked = serve({
      "/api/sessions/s1": [200, detailBody],
      "/api/sessions/s1/frames": [200, { session_id: "s1", streams: [{ stream_id: "car-1", t: [10, 11, 12], channels: { lap_distance: [0, 50, 100], speed: [180, 180, 180] } }] }],
    });
    const r = await fetchLaps([{ session: "s1", stream: "car-1", lap: 1 }], ["lap_distance", "speed", "steer"]);
    expect(r.problems).toEqual([]);
    expect(r.laps[0]!.trace.start).toBe(10);
    expect(Array.from(r.laps[0]!.trace.distance)).toEqual([0, 50, 100]);
    expect(r.laps[0]!.units.get("speed")).toBe("km/h");
    // The session's channel table lacks steer, so it is not asked for (the server would refuse it).
    expect(asked[1]).toBe("/api/sessions/s1/frames?from=9.999999&to=12.000001&streams=car-1&channels=lap_distance%2Cspeed&format=json");
  });

  test("unknown sessions, cars and laps and server errors are named, one line each", async () => {
    serve({
      "/api/sessions/s1": [200, { ...detailBody, laps: [...detailBody.laps, { stream_id: "car-1", lap: 2, t0_ns: T0 + 12e9, t1_ns: T0 + 14e9, lap_time: 2 }] }],
      "/api/sessions/s1/frames": [400, { error: "the range holds too many values" }],
    });
    const r = await fetchLaps(
      [
        { session: "nope", stream: "car-1", lap: 1 },
        { session: "nope", stream: "car-1", lap: 2 },
        { session: "s1", stream: "car-9", lap: 1 },
        { session: "s1", stream: "car-1", lap: 7 },
        { session: "s1", stream: "car-1", lap: 2 },
      ],
      ["lap_distance"],
    );
    expect(r.laps).toEqual([]);
    expect(r.problems).toEqual([
      "No session nope",
      "Session s1 has no car car-9",
      "Lena Brandt (s1) has no lap 7",
      expect.stringMatching(/^Lena Brandt \(s1\), lap 2: .*HTTP 400: the range holds too many values$/),
    ]);
  });
});
