/**
 * UI state only (Zustand): which session and car are shown, the connection indicator, the
 * advertised cars. Changes a few times per session, never per frame — telemetry lives in
 * ring buffers (data/streams.ts) read by the rAF loop.
 */

import { create } from "zustand";
import type { StreamInfo } from "../protocol/viewer";

export type Connection = "connecting" | "live" | "lagging" | "disconnected";

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

  setSessionPhase(phase: SessionPhase): void;
  chooseSession(sessionId: string, track: string): void;
  setAdvertised(track: string, streams: StreamInfo[]): void;
  selectStream(name: string): void;
  setConnection(connection: Connection, detail: string): void;
}

export const useUi = create<UiState>()((set) => ({
  phase: "loading",
  sessionId: null,
  track: "",
  streams: [],
  selectedStream: null,
  connection: "connecting",
  connectionDetail: "",

  setSessionPhase: (phase) => set({ phase }),
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
}));

/** Keep the current car if it is still advertised; else `?car=NAME`; else the first one. */
export function pickStream(streams: readonly StreamInfo[], current: string | null, wanted: string | null = carParam()): string | null {
  if (current !== null && streams.some((s) => s.name === current)) return current;
  if (wanted !== null && streams.some((s) => s.name === wanted)) return wanted;
  return streams[0]?.name ?? current;
}

function carParam(): string | null {
  return typeof location === "undefined" ? null : new URLSearchParams(location.search).get("car");
}
