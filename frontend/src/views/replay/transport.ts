/**
 * Replay transport logic without React or DOM: the speed ladder, what each key does, seek-bar
 * geometry and lap markers, and time formatting. The Transport component wires these to
 * buttons, the seek bar and the keyboard.
 */

import type { Lap } from "../../api/detail";
import type { ReplayControl } from "../../live/bridge";

/** The speeds offered, slowest first (the server accepts 0.1-64). */
export const SPEEDS = [0.25, 0.5, 1, 2, 4, 8, 16, 32] as const;

/** Seconds moved by ←/→, and with Shift. */
export const STEP_S = 1;
export const BIG_STEP_S = 10;

/** The next speed on the ladder up (+1) or down (-1) from `speed`, clamped at the ends. */
export function nextSpeed(speed: number, direction: 1 | -1): number {
  if (direction > 0) return SPEEDS.find((s) => s > speed + 1e-9) ?? (SPEEDS[SPEEDS.length - 1] as number);
  return [...SPEEDS].reverse().find((s) => s < speed - 1e-9) ?? SPEEDS[0];
}

/** Where the replay stands, for the key handler. */
export interface TransportState {
  playing: boolean;
  speed: number;
  /** Clock instant, start and end [s since epoch]. */
  t: number;
  start: number;
  end: number;
  fps: number;
  /** Lap starts of the focused car [s since epoch], ascending, with their lap numbers. */
  laps: readonly { lap: number; t: number }[];
  stream: string | null;
}

/** What a key press asks of the replay; null when the key is not a transport key. */
export function keyAction(key: string, shift: boolean, s: TransportState): ReplayControl | null {
  switch (key) {
    case " ":
    case "k":
    case "K":
      return { action: s.playing ? "pause" : "play" };
    case "ArrowLeft":
      return { action: "step", by: -(shift ? BIG_STEP_S : STEP_S) };
    case "ArrowRight":
      return { action: "step", by: shift ? BIG_STEP_S : STEP_S };
    case ",":
      return { action: "step", by: -1 / s.fps };
    case ".":
      return { action: "step", by: 1 / s.fps };
    case "[":
    case "-":
      return { action: "speed", speed: nextSpeed(s.speed, -1) };
    case "]":
    case "+":
    case "=":
      return { action: "speed", speed: nextSpeed(s.speed, 1) };
    case "Home":
      return { action: "seek", t: s.start * 1e9 };
    case "End":
      return { action: "seek", t: s.end * 1e9 };
    case "n":
    case "N":
    case "p":
    case "P": {
      const lap = neighbourLap(s.laps, s.t, key === "n" || key === "N" ? 1 : -1);
      return lap === null ? null : { action: "seek", t: lap.t * 1e9 };
    }
    default:
      if (/^[0-9]$/.test(key)) return { action: "seek", t: (s.start + (Number(key) / 10) * (s.end - s.start)) * 1e9 };
      return null;
  }
}

/**
 * The lap start after `t` (direction 1) or the one before the current lap's start (-1; within
 * 2 s of a lap start, "previous" means the lap before, as a media player's previous track).
 */
export function neighbourLap(laps: readonly { lap: number; t: number }[], t: number, direction: 1 | -1): { lap: number; t: number } | null {
  if (direction > 0) return laps.find((l) => l.t > t + 1e-3) ?? null;
  const before = laps.filter((l) => l.t < t - 2);
  return before[before.length - 1] ?? laps[0] ?? null;
}

/** Lap starts of `stream` [s since epoch] from the session's laps, ascending. */
export function lapStarts(laps: readonly Lap[], stream: string | null): { lap: number; t: number }[] {
  if (stream === null) return [];
  return laps
    .filter((l) => l.stream === stream)
    .map((l) => ({ lap: l.lap, t: l.t0Ns / 1e9 }))
    .sort((a, b) => a.t - b.t);
}

/** 0-1 position of `t` on a bar from `start` to `end`. */
export function fraction(t: number, start: number, end: number): number {
  if (!(end > start)) return 0;
  return Math.min(1, Math.max(0, (t - start) / (end - start)));
}

/** "1:02:03.4" / "2:03.4" for `s` seconds from the start. */
export function formatClock(s: number): string {
  if (!Number.isFinite(s)) return "—";
  const neg = s < 0;
  const a = Math.round(Math.abs(s) * 10) / 10; // so 59.96 shows as 1:00.0, not 0:60.0
  const h = Math.floor(a / 3600);
  const m = Math.floor((a % 3600) / 60);
  const sec = (a % 60).toFixed(1).padStart(4, "0");
  const body = h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
  return neg ? `-${body}` : body;
}

/** Start position [ns since epoch] from `?t=` (s from the session start); null = the start. */
export function startFromQuery(param: string | null, t0Ns: number, t1Ns: number): number | null {
  if (param === null || param.trim() === "") return null;
  const s = Number(param);
  if (!Number.isFinite(s) || s <= 0) return null;
  return Math.min(t0Ns + s * 1e9, t1Ns);
}

export function speedFromQuery(param: string | null): number {
  const v = Number(param);
  return param !== null && Number.isFinite(v) && v >= 0.1 && v <= 64 ? v : 1;
}
