/**
 * Messages between the main thread and the socket worker (structured clone, no JSON).
 * `data` messages carry typed-array views whose ArrayBuffer is transferred, not copied.
 */

import type { Column } from "../protocol/frames";
import type { ReplayAction } from "../protocol/messages";
import type { ChannelInfo, StreamInfo } from "../protocol/viewer";

export type SocketState = "connecting" | "open" | "closed" | "error";

/** How a replay opens: `t` [ns since epoch] (null = the start), speed, paused. */
export interface ReplayStart {
  t: number | null;
  speed: number;
  paused: boolean;
  /** Delayed-live delay [s]; null = a replay of the stored session. */
  delay: number | null;
}

/** A replay control (protocol `control`, without the op and id). */
export interface ReplayControl {
  action: ReplayAction;
  /** seek: where [ns since epoch]. */
  t?: number;
  /** seek: to the start of this lap of `stream` (name; absent = the first car to start it). */
  lap?: number;
  stream?: string;
  /** speed: the new speed. */
  speed?: number;
  /** step: by this many seconds (negative = back). */
  by?: number;
}

/**
 * Main thread → worker. `gen` numbers each connect, replay and disconnect; the worker stamps
 * what it posts with the newest one it was given, so the page can drop what was posted for a
 * connection it has already left.
 */
export type ToWorker =
  | { type: "connect"; gen: number; session: string; channels: string[] }
  | { type: "replay"; gen: number; session: string; channels: string[]; start: ReplayStart }
  | { type: "control"; control: ReplayControl }
  | { type: "disconnect"; gen: number };

/** What the worker posts: a message and the generation of the connection it belongs to. */
export interface WorkerPost {
  gen: number;
  msg: FromWorker;
}

/** One live data batch of one stream. */
export interface DataBatchMsg {
  stream: string;
  epoch: number;
  /** Time of the first frame [s since epoch]. */
  t0: number;
  /** Per-frame offset from t0 [s]. */
  tOffsets: Float64Array;
  columns: Record<string, Column>;
}

/** One STATE frame of a replay: every touched car's values at clock instant `t`. */
export interface ReplayTickMsg {
  epoch: number;
  keyframe: boolean;
  /** The clock instant [s since epoch]. */
  t: number;
  /** Per car: its name, its channel names and their values (NaN = no value). */
  cars: { stream: string; names: string[]; values: Float64Array }[];
}

/** Worker → main thread. */
export type FromWorker =
  | {
      type: "state";
      state: SocketState;
      /** Why (close code and reason, error text), empty if nothing to say. */
      detail: string;
      /** Seconds until the next reconnect attempt (state closed/error), else 0. */
      retryIn: number;
    }
  | { type: "status"; level: "info" | "warning" | "error"; code: string; message: string }
  | { type: "advertise"; session: string; track: string; source: string; streams: StreamInfo[]; channels: ChannelInfo[] }
  /** Live data, batched: everything that arrived within one flush interval. */
  | { type: "data"; batches: DataBatchMsg[] }
  /** Replay STATE frames, batched the same way (normally one per tick). */
  | { type: "ticks"; ticks: ReplayTickMsg[]; stale: number }
  | { type: "clock"; clock: ClockMsg };

/** The protocol's `clock` with times in seconds since epoch. */
export interface ClockMsg {
  epoch: number;
  /** The clock's instant when the server sent it [s]. */
  t: number;
  playing: boolean;
  speed: number;
  /** What can be played [s]; a delayed-live view's end moves with the wall clock. */
  start: number;
  end: number;
  fps: number;
  /** Delayed-live delay [s]; null for a replay. */
  delay: number | null;
  ended: boolean;
}

/** `ws://host/ws/{session}?format=bin` (wss for https) from the page origin. */
export function socketUrl(origin: string, session: string): string {
  const url = new URL(`/ws/${encodeURIComponent(session)}`, origin);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("format", "bin");
  return url.toString();
}

/** Reconnect delay [s] after `attempt` consecutive failures: 0.5, 1, 2, 4, then 5, with ±20 % jitter. */
export function backoff(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(5, 0.5 * 2 ** Math.max(0, attempt));
  return base * (0.8 + 0.4 * random());
}

/** A replay's last clock as the worker keeps it: instant and end [ns], and when it came [ms]. */
export interface LastClock {
  tNs: number;
  endNs: number;
  speed: number;
  playing: boolean;
  at: number;
}

/** Where a reopened replay resumes [ns]: the last clock, run on at its speed while playing. */
export function resumeAt(clock: LastClock, nowMs: number): number {
  if (!clock.playing) return clock.tNs;
  return Math.min(clock.endNs, clock.tNs + (nowMs - clock.at) * 1e6 * clock.speed);
}
