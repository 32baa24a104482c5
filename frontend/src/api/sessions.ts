/**
 * `GET /api/sessions` and the choice of which session to show: `?session=ID` if given, else
 * the first live session, else the first (the list is newest first). Fields newer servers add
 * (time range, cars, completeness) are parsed defensively: an older server's list still works,
 * with them unknown.
 */

import { getJson } from "./detail";

export interface SessionCar {
  stream_id: string;
  driver: string;
  car: string;
}

export interface SessionSummary {
  session_id: string;
  track: string;
  source: string;
  /** Start time [ns since epoch]; may exceed 2^53, so treat as approximate. */
  started_ns: number;
  live: boolean;
  streams: number;
  frames: number;
  /** Stored laps; null when the server does not say. */
  laps: number | null;
  /** First and last stored frame [ns since epoch]; 0 when unknown or without frames. */
  t0_ns: number;
  t1_ns: number;
  /** t1 - t0 [s]; null when the server does not say. */
  duration_s: number | null;
  /** Empty when the server does not list them (see `streams` for the count). */
  cars: SessionCar[];
  /** Received / expected frames, 0-1; null when unknown. */
  completeness: number | null;
}

const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function parseCars(v: unknown): SessionCar[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((c: unknown) => {
    if (typeof c !== "object" || c === null) return [];
    const o = c as Record<string, unknown>;
    if (typeof o.stream_id !== "string") return [];
    return [{ stream_id: o.stream_id, driver: typeof o.driver === "string" ? o.driver : "", car: typeof o.car === "string" ? o.car : "" }];
  });
}

/** Validate the `/api/sessions` body; throws naming the first bad entry. */
export function parseSessions(body: unknown): SessionSummary[] {
  if (!Array.isArray(body)) throw new Error("/api/sessions: expected a JSON array");
  return body.map((item: unknown, i) => {
    if (typeof item !== "object" || item === null) throw new Error(`/api/sessions[${i}]: expected an object`);
    const o = item as Record<string, unknown>;
    if (typeof o.session_id !== "string") throw new Error(`/api/sessions[${i}].session_id: expected a string`);
    return {
      session_id: o.session_id,
      track: typeof o.track === "string" ? o.track : "",
      source: typeof o.source === "string" ? o.source : "",
      started_ns: typeof o.started_ns === "number" ? o.started_ns : 0,
      live: o.live === true,
      streams: typeof o.streams === "number" ? o.streams : 0,
      frames: typeof o.frames === "number" ? o.frames : 0,
      laps: finite(o.laps) ? o.laps : null,
      t0_ns: finite(o.t0_ns) ? o.t0_ns : 0,
      t1_ns: finite(o.t1_ns) ? o.t1_ns : 0,
      duration_s: finite(o.duration_s) && o.duration_s >= 0 ? o.duration_s : null,
      cars: parseCars(o.cars),
      completeness: finite(o.completeness) ? Math.min(1, Math.max(0, o.completeness)) : null,
    };
  });
}

/** The stored sessions, newest first; throws `ApiError` with the server's error text. */
export async function fetchSessions(signal?: AbortSignal): Promise<SessionSummary[]> {
  const res = await getJson("/api/sessions", { signal });
  return parseSessions(res.body);
}

/** The session to show, or null when there is none to choose from and none was asked for. */
export function chooseSession(sessions: readonly SessionSummary[], requested: string | null): { id: string; track: string } | null {
  if (requested) {
    return { id: requested, track: sessions.find((s) => s.session_id === requested)?.track ?? "" };
  }
  const pick = sessions.find((s) => s.live) ?? sessions[0];
  return pick === undefined ? null : { id: pick.session_id, track: pick.track };
}

/**
 * While showing an auto-chosen session: the live session to switch to when the current one is
 * no longer live (ended, or gone after a server restart), else null.
 */
export function switchTarget(sessions: readonly SessionSummary[], current: string): { id: string; track: string } | null {
  if (sessions.some((s) => s.session_id === current && s.live)) return null;
  const live = sessions.find((s) => s.live && s.session_id !== current);
  return live === undefined ? null : { id: live.session_id, track: live.track };
}

/** "1:02:03" for 3723 s (hours always shown, to the nearest second); "—" when unknown. */
export function formatDuration(s: number | null): string {
  if (s === null || !Number.isFinite(s) || s < 0) return "—";
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
}

/** Local date and time of a start [ns since epoch]; "—" when unknown. */
export function formatStart(ns: number): string {
  if (!(ns > 0)) return "—";
  return new Date(ns / 1e6).toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** Completeness below this ratio is flagged in the lists. */
export const COMPLETE_RATIO = 0.999;

/** "99.95 %" for a 0-1 ratio (floored, so 99.999 % never reads as 100 %); "—" when unknown. */
export function formatPercent(ratio: number | null): string {
  if (ratio === null || !Number.isFinite(ratio)) return "—";
  if (ratio >= 1) return "100 %";
  return `${(Math.floor(ratio * 10000) / 100).toFixed(2)} %`;
}

/** Drivers' names shortened for a table cell: "Brandt, Kowalski +2" (first `max` surnames). */
export function abbreviateDrivers(cars: readonly SessionCar[], max = 2): string {
  const names = cars.map((c) => {
    const who = c.driver.trim() || c.stream_id;
    const parts = who.split(/\s+/);
    return parts[parts.length - 1] ?? who;
  });
  const shown = names.slice(0, max).join(", ");
  return names.length > max ? `${shown} +${names.length - max}` : shown;
}
