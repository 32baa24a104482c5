/**
 * UI state only (Zustand): which session and car are shown, the connection indicator, the
 * advertised cars. Changes a few times per session, never per frame — telemetry lives in
 * ring buffers (data/streams.ts) read by the rAF loop.
 */

import { create } from "zustand";
import type { ClockMsg } from "../live/bridge";
import type { StreamInfo } from "../protocol/viewer";

export type Connection = "connecting" | "live" | "lagging" | "disconnected";

/** What feeds the pit wall: the live session or the server's replay clock. */
export type Mode = "live" | "replay";

/** The replay clock as last announced by the server (times in s since epoch). */
export interface ReplayClock extends ClockMsg {
  /** performance.now() when it arrived [ms]: the clock runs at `speed` from there. */
  receivedAt: number;
}

/** A problem to show the user (a status from the server or the socket worker). */
export interface Notice {
  level: "warning" | "error";
  code: string;
  message: string;
}

/** The channels the charts can show, in menu order. */
export const CHART_CHANNELS = ["speed", "throttle", "brake", "rpm", "gear", "steer"] as const;
export type ChartChannel = (typeof CHART_CHANNELS)[number];

/** Session resolution: still asking, none exist yet, server unreachable, or chosen. */
export type SessionPhase = "loading" | "none" | "unreachable" | "ready";

export interface UiState {
  phase: SessionPhase;
  sessionId: string | null;
  track: string;
  streams: StreamInfo[];
  selectedStream: string | null;
  connection: Connection;
  /** Why the indicator shows what it shows (tooltip). */
  connectionDetail: string;
  mode: Mode;
  /** The replay's clock; null in live mode or before the first `clock`. */
  clock: ReplayClock | null;
  /** Charts shown for the focused car, one uPlot each, cursors in sync. */
  chartChannels: ChartChannel[];
  /** The newest problem reported, until dismissed or resolved. */
  notice: Notice | null;

  setSessionPhase(phase: SessionPhase): void;
  /** Forget the shown session (a view that chooses its own is opening). */
  resetSession(): void;
  chooseSession(sessionId: string, track: string): void;
  setAdvertised(track: string, streams: StreamInfo[]): void;
  selectStream(name: string): void;
  setConnection(connection: Connection, detail: string): void;
  setMode(mode: Mode): void;
  setClock(clock: ReplayClock | null): void;
  toggleChartChannel(channel: ChartChannel): void;
  setNotice(notice: Notice | null): void;
}

export const useUi = create<UiState>()((set) => ({
  phase: "loading",
  sessionId: null,
  track: "",
  streams: [],
  selectedStream: null,
  connection: "connecting",
  connectionDetail: "",
  mode: "live",
  clock: null,
  chartChannels: ["speed", "throttle", "brake"],
  notice: null,

  setSessionPhase: (phase) => set({ phase }),
  resetSession: () =>
    set({ phase: "loading", sessionId: null, track: "", streams: [], selectedStream: null, connection: "connecting", connectionDetail: "", clock: null, notice: null }),
  chooseSession: (sessionId, track) =>
    set({ phase: "ready", sessionId, track, streams: [], selectedStream: null, connection: "connecting", connectionDetail: "" }),
  setAdvertised: (track, streams) =>
    set((s) => ({
      track: track || s.track,
      streams,
      selectedStream: pickStream(streams, s.selectedStream),
    })),
  selectStream: (name) => set({ selectedStream: name }),
  setConnection: (connection, detail) => set({ connection, connectionDetail: detail }),
  setMode: (mode) => set({ mode, clock: null, notice: null }),
  setNotice: (notice) => set({ notice }),
  setClock: (clock) => set({ clock }),
  toggleChartChannel: (channel) =>
    set((s) => ({
      chartChannels: s.chartChannels.includes(channel)
        ? s.chartChannels.filter((c) => c !== channel)
        : CHART_CHANNELS.filter((c) => c === channel || s.chartChannels.includes(c)),
    })),
}));

/** Where the replay clock is at `nowMs` (performance.now()) [s since epoch]. */
export function clockAt(clock: ReplayClock, nowMs: number): number {
  if (!clock.playing) return clock.t;
  const elapsed = (nowMs - clock.receivedAt) / 1000;
  // A delayed-live view's end moves with the wall clock.
  const end = clock.delay === null ? clock.end : clock.end + elapsed;
  return Math.min(Math.max(clock.t + elapsed * clock.speed, clock.start), end);
}

/** Keep the current car if it is still advertised; else `?car=NAME`; else the first one. */
export function pickStream(streams: readonly StreamInfo[], current: string | null, wanted: string | null = carParam()): string | null {
  if (current !== null && streams.some((s) => s.name === current)) return current;
  if (wanted !== null && streams.some((s) => s.name === wanted)) return wanted;
  return streams[0]?.name ?? current;
}

function carParam(): string | null {
  return typeof location === "undefined" ? null : new URLSearchParams(location.search).get("car");
}
