/**
 * `GET /api/sessions/{id}/frames?format=json`: stored frames of a time range, validated into
 * columnar typed arrays per stream (NaN where the server wrote `null`). Times are [s from the
 * session's first frame, `time_range.t0_ns`], as in the request. See docs/rest.md for the
 * limits (600 s and 5,000,000 values per request).
 */

import { lapLength, type LapRef, type LapTrace } from "../analysis/compare";
import { ApiError, fetchDetail, getJson, type CarInfo, type Lap, type SessionDetail } from "./detail";

export interface StreamFrames {
  stream: string;
  /** Frame times [s from the session's first frame], ascending. */
  t: Float64Array;
  /** Each channel the stream has (of those asked for), as long as `t`; NaN for missing values. */
  channels: Map<string, Float64Array>;
}

export interface FrameRange {
  session: string;
  /** The session's first frame [ns since epoch] (approximate above 2^53). */
  t0Ns: number;
  from: number;
  to: number;
  streams: StreamFrames[];
}

export interface FrameQuery {
  /** Start [s from the session's first frame], included; clamped to ≥ 0. */
  from: number;
  /** End [s from the session's first frame], excluded. */
  to: number;
  streams?: readonly string[];
  channels?: readonly string[];
}

type Obj = Record<string, unknown>;

function column(v: unknown, n: number, where: string): Float64Array {
  if (!Array.isArray(v)) throw new Error(`${where}: expected an array`);
  if (v.length !== n) throw new Error(`${where}: ${v.length} values for ${n} frames`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x: unknown = v[i];
    if (typeof x === "number") out[i] = x;
    else if (x === null) out[i] = Number.NaN;
    else throw new Error(`${where}[${i}]: expected a number or null`);
  }
  return out;
}

/** Validate a `format=json` frames body; throws naming what is wrong. */
export function parseFrames(body: unknown): FrameRange {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("frames: expected an object");
  const o = body as Obj;
  if (typeof o.session_id !== "string") throw new Error("frames.session_id: expected a string");
  if (!Array.isArray(o.streams)) throw new Error("frames.streams: expected an array");
  const streams = o.streams.map((s: unknown, i): StreamFrames => {
    const where = `frames.streams[${i}]`;
    if (typeof s !== "object" || s === null) throw new Error(`${where}: expected an object`);
    const so = s as Obj;
    if (typeof so.stream_id !== "string") throw new Error(`${where}.stream_id: expected a string`);
    if (!Array.isArray(so.t)) throw new Error(`${where}.t: expected an array`);
    const n = so.t.length;
    const t = column(so.t, n, `${where}.t`);
    if (t.some((x) => !Number.isFinite(x))) throw new Error(`${where}.t: expected finite times`);
    const channels = new Map<string, Float64Array>();
    const ch = so.channels;
    if (typeof ch !== "object" || ch === null || Array.isArray(ch)) throw new Error(`${where}.channels: expected an object`);
    for (const [name, values] of Object.entries(ch as Obj)) channels.set(name, column(values, n, `${where}.channels.${name}`));
    return { stream: so.stream_id, t, channels };
  });
  return {
    session: o.session_id,
    t0Ns: typeof o.t0_ns === "number" ? o.t0_ns : 0,
    from: typeof o.from === "number" ? o.from : 0,
    to: typeof o.to === "number" ? o.to : 0,
    streams,
  };
}

/** The request URL for `query` (seconds written with microsecond precision). */
export function framesUrl(session: string, query: FrameQuery): string {
  const params = new URLSearchParams();
  params.set("from", String(Math.max(0, Math.round(query.from * 1e6) / 1e6)));
  params.set("to", String(Math.round(query.to * 1e6) / 1e6));
  if (query.streams !== undefined) params.set("streams", query.streams.join(","));
  if (query.channels !== undefined) params.set("channels", query.channels.join(","));
  params.set("format", "json");
  return `/api/sessions/${encodeURIComponent(session)}/frames?${params.toString()}`;
}

/** Fetch and validate a frame range; throws `ApiError` with the server's text on failure. */
export async function fetchFrames(session: string, query: FrameQuery, signal?: AbortSignal): Promise<FrameRange> {
  const res = await getJson(framesUrl(session, query), { signal });
  return parseFrames(res.body);
}

/** Tolerance for nanosecond times that JSON.parse rounded (to about 0.25 µs) [s]. */
const NS_SLACK_S = 1e-6;

/**
 * The frames of one lap of one car, `lap.t0` to `lap.t1` both included (the store's `t1` is
 * the lap's last frame; where a source sets it to the next lap's first frame, that one frame
 * comes along and resets `lap_distance`, which the comparison drops), asking only for those
 * of `channels` the session has. `start` is the lap's start [s from the session's first frame].
 */
export async function fetchLapFrames(
  detail: SessionDetail,
  lap: Lap,
  channels: readonly string[],
  signal?: AbortSignal,
): Promise<StreamFrames & { start: number }> {
  const known = new Set(detail.channels.map((c) => c.name));
  const asked = known.size === 0 ? channels : channels.filter((c) => known.has(c));
  const start = (lap.t0Ns - detail.t0Ns) / 1e9;
  const end = (lap.t1Ns - detail.t0Ns) / 1e9;
  if (!(end > start)) throw new Error(`lap ${lap.lap} of ${lap.stream} has no end yet`);
  const range = await fetchFrames(detail.id, { from: start - NS_SLACK_S, to: end + NS_SLACK_S, streams: [lap.stream], channels: asked }, signal);
  const got = range.streams.find((s) => s.stream === lap.stream) ?? { stream: lap.stream, t: new Float64Array(0), channels: new Map<string, Float64Array>() };
  return { ...got, start };
}

/** One lap ready for comparison. */
export interface FetchedLap {
  ref: LapRef;
  car: CarInfo;
  lap: Lap;
  trace: LapTrace;
  /** Each channel's unit in the lap's session. */
  units: Map<string, string>;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * The laps `refs` name, with `channels` (which must include `lap_distance`): each session's
 * detail fetched once, then every lap's frames in parallel. A lap that cannot be had (unknown
 * session, car or lap, no usable `lap_distance`, a server error) is left out and named in
 * `problems` (the server's error text included), in the order asked.
 */
export async function fetchLaps(refs: readonly LapRef[], channels: readonly string[], signal?: AbortSignal): Promise<{ laps: FetchedLap[]; problems: string[] }> {
  const details = new Map<string, SessionDetail | string>();
  await Promise.all(
    [...new Set(refs.map((r) => r.session))].map(async (s) => {
      try {
        const got = await fetchDetail(s, null, signal);
        details.set(s, got === null ? `Session ${s}: no answer` : got.detail);
      } catch (err) {
        details.set(s, err instanceof ApiError && err.status === 404 ? `No session ${s}` : `Session ${s}: ${message(err)}`);
      }
    }),
  );
  const found = await Promise.all(
    refs.map(async (ref): Promise<FetchedLap | string> => {
      const d = details.get(ref.session);
      if (d === undefined || typeof d === "string") return d ?? `No session ${ref.session}`;
      const car = d.cars.find((c) => c.stream === ref.stream);
      if (car === undefined) return `Session ${ref.session} has no car ${ref.stream}`;
      const who = `${car.driver || car.stream} (${ref.session})`;
      const lap = d.laps.find((l) => l.stream === ref.stream && l.lap === ref.lap);
      if (lap === undefined) return `${who} has no lap ${ref.lap}`;
      try {
        const f = await fetchLapFrames(d, lap, channels, signal);
        const distance = f.channels.get("lap_distance");
        if (distance === undefined) return `${who}: lap ${ref.lap} has no lap_distance channel`;
        const trace: LapTrace = { t: f.t, distance, channels: f.channels, start: f.start };
        if (!(lapLength(trace) > 0)) return `${who}: lap ${ref.lap} has no usable lap_distance (${f.t.length} frames)`;
        return { ref, car, lap, trace, units: new Map(d.channels.map((c) => [c.name, c.unit])) };
      } catch (err) {
        return `${who}, lap ${ref.lap}: ${message(err)}`;
      }
    }),
  );
  return {
    laps: found.filter((x): x is FetchedLap => typeof x !== "string"),
    problems: [...new Set(found.filter((x): x is string => typeof x === "string"))],
  };
}
