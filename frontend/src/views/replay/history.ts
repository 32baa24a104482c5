/**
 * Chart history for the replay: after every jump (seek, step, reopened replay) and when the
 * focused car changes, the focused car's stored frames of the HISTORY_S seconds before the
 * clock instant are fetched (`/frames`) and put in front of what its ring holds, so the charts
 * show where the car came from instead of starting empty. A fetch made stale by a newer jump
 * or another car is abandoned.
 */

import { fetchFrames } from "../../api/frames";
import { DASHBOARD_CHANNELS, telemetry } from "../../data/streams";
import { debug } from "../../debug";
import { onReplayJump, replayEpoch } from "../../live/connection";
import { useUi } from "../../state/ui";

/** As long as the charts' window. */
export const HISTORY_S = 30;

/**
 * Follow jumps and focus changes of the replay of `session` (first frame `t0Ns`, channel
 * names `available`: the server refuses channels a session lacks); returns the stop.
 */
export function followHistory(session: string, t0Ns: number, available: readonly string[]): () => void {
  const channels = available.filter((c) => DASHBOARD_CHANNELS.has(c));
  let abort: AbortController | null = null;

  function fill(stream: string | null, t: number): void {
    abort?.abort();
    if (stream === null || !Number.isFinite(t) || channels.length === 0) return;
    const controller = new AbortController();
    abort = controller;
    const epoch = replayEpoch();
    const to = t - t0Ns / 1e9;
    const from = Math.max(0, to - HISTORY_S);
    if (!(to > from)) return;
    fetchFrames(session, { from, to, streams: [stream], channels }, controller.signal)
      .then((range) => {
        if (controller.signal.aborted || replayEpoch() !== epoch) return;
        const got = range.streams.find((s) => s.stream === stream);
        if (got === undefined || got.t.length === 0) return;
        telemetry.backfill({ stream, t0: range.t0Ns / 1e9, tOffsets: got.t, columns: Object.fromEntries(got.channels) });
        debug.historyFills++;
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) console.warn("pitwire: no chart history for the replay", err);
      });
  }

  const stopJumps = onReplayJump((_epoch, t) => fill(useUi.getState().selectedStream, t));
  const stopFocus = useUi.subscribe((s, prev) => {
    if (s.selectedStream !== prev.selectedStream && debug.replayT !== null) {
      const oldest = telemetry.ring(s.selectedStream ?? "")?.times()[0];
      fill(s.selectedStream, oldest ?? debug.replayT);
    }
  });
  return () => {
    abort?.abort();
    stopJumps();
    stopFocus();
  };
}
