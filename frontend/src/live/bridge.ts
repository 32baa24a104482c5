/**
 * Messages between the main thread and the socket worker (structured clone, no JSON).
 * `data` messages carry typed-array views whose ArrayBuffer is transferred, not copied.
 */

import type { Column } from "../protocol/frames";
import type { ChannelInfo, StreamInfo } from "../protocol/viewer";

export type SocketState = "connecting" | "open" | "closed" | "error";

/** Main thread → worker. */
export type ToWorker = { type: "connect"; session: string } | { type: "disconnect" };

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
  | {
      type: "data";
      stream: string;
      epoch: number;
      /** Time of the first frame [s since epoch]. */
      t0: number;
      /** Per-frame offset from t0 [s]. */
      tOffsets: Float64Array;
      columns: Record<string, Column>;
    };

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
