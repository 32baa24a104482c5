/**
 * `GET /api/sessions/{id}`: a session's cars (with colours), laps, time range and track
 * outline, validated into typed records. `useSessionDetail` fetches it once, or revalidates it
 * every `pollMs` with `If-None-Match` (a live session's laps grow; an unchanged one costs a
 * 304 with no body). Nanosecond times exceed 2^53 and arrive rounded by JSON.parse (to about
 * 0.25 µs): fine for display and for choosing a replay position.
 */

import { useEffect, useState } from "react";

export interface CarInfo {
  stream: string;
  driver: string;
  car: string;
  /** `#rrggbb` */
  colour: string;
  frames: number;
  t0Ns: number;
  t1Ns: number;
}

export interface Lap {
  stream: string;
  lap: number;
  t0Ns: number;
  t1Ns: number;
  /** [s]; null while the lap is under way or when it was not timed. */
  lapTime: number | null;
  /** Sector times [s]; empty when the source has none. */
  sectors: number[];
  compound: string;
  pitIn: boolean;
  pitOut: boolean;
}

export interface TrackGeometry {
  x: number[];
  y: number[];
  /** [xmin, ymin, xmax, ymax] of every position used [m]. */
  bounds: [number, number, number, number];
}

export interface ChannelMeta {
  name: string;
  unit: string;
  resolution: number | null;
  description: string;
}

export interface SessionDetail {
  id: string;
  track: string;
  source: string;
  startedNs: number;
  live: boolean;
  frames: number;
  cars: CarInfo[];
  laps: Lap[];
  channels: ChannelMeta[];
  /** First and last stored frame [ns since epoch]; 0 without frames. */
  t0Ns: number;
  t1Ns: number;
  durationS: number;
  geometry: TrackGeometry | null;
  /** received / expected frames, 0-1 (1 when nothing is expected). */
  completeness: number;
}

type Obj = Record<string, unknown>;

function obj(v: unknown, where: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${where}: expected an object`);
  return v as Obj;
}
function str(v: unknown, fallback = ""): string {
  return typeof v === "string" ? v : fallback;
}
function num(v: unknown, fallback = 0): number {
  return typeof v === "number" && Number.isFinite(v) ? v : fallback;
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function parseGeometry(v: unknown): TrackGeometry | null {
  if (typeof v !== "object" || v === null) return null;
  const g = v as Obj;
  const x = arr(g.x).map((n) => num(n, Number.NaN));
  const y = arr(g.y).map((n) => num(n, Number.NaN));
  const b = arr(g.bounds).map((n) => num(n, Number.NaN));
  if (x.length < 2 || x.length !== y.length || b.length !== 4 || b.some((n) => !Number.isFinite(n))) return null;
  return { x, y, bounds: [b[0], b[1], b[2], b[3]] as [number, number, number, number] };
}

/** Validate a `/api/sessions/{id}` body; throws naming what is wrong. */
export function parseDetail(body: unknown): SessionDetail {
  const o = obj(body, "session");
  if (typeof o.session_id !== "string") throw new Error("session.session_id: expected a string");
  const range = typeof o.time_range === "object" && o.time_range !== null ? (o.time_range as Obj) : {};
  const completeness = typeof o.completeness === "object" && o.completeness !== null ? (o.completeness as Obj) : {};
  return {
    id: o.session_id,
    track: str(o.track),
    source: str(o.source),
    startedNs: num(o.started_ns),
    live: o.live === true,
    frames: num(o.frames),
    cars: arr(o.streams).map((s, i) => {
      const c = obj(s, `session.streams[${i}]`);
      return {
        stream: str(c.stream_id),
        driver: str(c.driver),
        car: str(c.car),
        colour: str(c.colour, "#9ca3af"),
        frames: num(c.frames),
        t0Ns: num(c.t0_ns),
        t1Ns: num(c.t1_ns),
      };
    }),
    laps: arr(o.laps).map((l, i) => {
      const p = obj(l, `session.laps[${i}]`);
      return {
        stream: str(p.stream_id),
        lap: num(p.lap),
        t0Ns: num(p.t0_ns),
        t1Ns: num(p.t1_ns),
        lapTime: typeof p.lap_time === "number" && Number.isFinite(p.lap_time) && p.lap_time > 0 ? p.lap_time : null,
        sectors: arr(p.sectors).map((s) => num(s, Number.NaN)),
        compound: str(p.compound),
        pitIn: p.pit_in === true,
        pitOut: p.pit_out === true,
      };
    }),
    channels: arr(o.channels).map((c, i) => {
      const m = obj(c, `session.channels[${i}]`);
      return {
        name: str(m.name),
        unit: str(m.unit),
        resolution: typeof m.resolution === "number" ? m.resolution : null,
        description: str(m.description),
      };
    }),
    t0Ns: num(range.t0_ns),
    t1Ns: num(range.t1_ns),
    durationS: num(range.duration_s),
    geometry: parseGeometry(o.track_geometry),
    completeness: num(completeness.ratio, 1),
  };
}

/** An HTTP answer that is not 2xx/304, with the server's `{"error": ...}` text when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** `fetch` + the server's JSON error text on failure. */
export async function getJson(url: string, init: RequestInit = {}): Promise<{ status: number; etag: string | null; body: unknown }> {
  const res = await fetch(url, { ...init, headers: { Accept: "application/json", ...(init.headers ?? {}) } });
  if (res.status === 304) return { status: 304, etag: res.headers.get("etag"), body: null };
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const why = typeof body === "object" && body !== null && typeof (body as Obj).error === "string" ? (body as Obj).error : res.statusText;
    throw new ApiError(res.status, `${url}: HTTP ${res.status}: ${String(why)}`);
  }
  return { status: res.status, etag: res.headers.get("etag"), body };
}

/** Fetch a session's detail; null when `etag` still matches (304). */
export async function fetchDetail(id: string, etag: string | null, signal?: AbortSignal): Promise<{ detail: SessionDetail; etag: string | null } | null> {
  const headers: Record<string, string> = etag === null ? {} : { "If-None-Match": etag };
  const res = await getJson(`/api/sessions/${encodeURIComponent(id)}`, { signal, headers });
  if (res.status === 304) return null;
  return { detail: parseDetail(res.body), etag: res.etag };
}

export interface DetailState {
  detail: SessionDetail | null;
  /** The last failure's text, "" when the last request worked. */
  error: string;
}

/**
 * The detail of session `id` (null id: none), fetched on mount and then every `pollMs` [ms]
 * while `pollMs` > 0. Keeps showing the last good detail through failures.
 */
export function useSessionDetail(id: string | null, pollMs = 0): DetailState {
  const [state, setState] = useState<DetailState>({ detail: null, error: "" });
  useEffect(() => {
    setState({ detail: null, error: "" });
    if (id === null) return;
    const abort = new AbortController();
    let etag: string | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    async function load(): Promise<void> {
      try {
        const got = await fetchDetail(id as string, etag, abort.signal);
        if (abort.signal.aborted) return;
        if (got !== null) {
          etag = got.etag;
          setState({ detail: got.detail, error: "" });
        } else {
          setState((s) => (s.error === "" ? s : { ...s, error: "" }));
        }
      } catch (err) {
        if (abort.signal.aborted) return;
        setState((s) => ({ ...s, error: (err as Error).message }));
      }
      if (pollMs > 0) timer = setTimeout(() => void load(), pollMs);
    }
    void load();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [id, pollMs]);
  return state;
}

/** Best lap time [s] per stream among `laps` (timed laps only). */
export function bestLaps(laps: readonly Lap[]): Map<string, number> {
  const best = new Map<string, number>();
  for (const l of laps) {
    if (l.lapTime === null) continue;
    const b = best.get(l.stream);
    if (b === undefined || l.lapTime < b) best.set(l.stream, l.lapTime);
  }
  return best;
}

/** "1:23.456" for seconds; "—" for null/NaN. */
export function formatLapTime(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return "—";
  const sign = s < 0 ? "-" : "";
  const a = Math.abs(s);
  const m = Math.floor(a / 60);
  const rest = a - 60 * m;
  return m > 0 ? `${sign}${m}:${rest.toFixed(3).padStart(6, "0")}` : `${sign}${rest.toFixed(3)}`;
}
