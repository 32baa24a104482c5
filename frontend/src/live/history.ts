/**
 * Chart history: the focused car's stored frames of the HISTORY_S seconds before what its
 * ring holds are fetched (`/frames`) and put in front of it (`StreamStore.backfill`), so the
 * charts show where the car came from instead of starting empty.
 *
 * - Replay: after every jump (seek, step, reopened replay) and when the focus changes.
 * - Live: once per car, when the focused car's first frames have arrived (a page just opened
 *   or a car just focused).
 *
 * A fetch made stale by a newer jump or another focus is abandoned.
 */

import { fetchFrames } from "../api/frames";
import { DASHBOARD_CHANNELS, telemetry } from "../data/streams";
import { debug } from "../debug";
import { useUi } from "../state/ui";
import { onReplayJump, replayEpoch } from "./connection";

/** As long as the charts' window. */
export const HISTORY_S = 30;
/** How often live mode looks for a focused car whose history is not filled yet [ms]. */
const LIVE_CHECK_MS = 500;

/** The session whose history is filled: id, first frame [ns since epoch], channel names. */
export interface HistorySource {
  session: string;
  t0Ns: number;
  /** The session's channels (the server refuses ones it lacks). */
  channels: readonly string[];
}

/** Fetches and backfills; one fetch at a time, the newest wins. */
class Filler {
  private abort: AbortController | null = null;
  private readonly channels: string[];

  constructor(private readonly source: HistorySource) {
    this.channels = source.channels.filter((c) => DASHBOARD_CHANNELS.has(c));
  }

  /** Fill `stream`'s ring with the HISTORY_S seconds before `t` [s since epoch]. */
  fill(stream: string | null, t: number): void {
    this.abort?.abort();
    if (stream === null || !Number.isFinite(t) || this.channels.length === 0) return;
    const controller = new AbortController();
    this.abort = controller;
    const epoch = replayEpoch();
    const to = t - this.source.t0Ns / 1e9;
    const from = Math.max(0, to - HISTORY_S);
    if (!(to > from)) return;
    fetchFrames(this.source.session, { from, to, streams: [stream], channels: this.channels }, controller.signal)
      .then((range) => {
        if (controller.signal.aborted || replayEpoch() !== epoch) return;
        const got = range.streams.find((s) => s.stream === stream);
        if (got === undefined || got.t.length === 0) return;
        telemetry.backfill({ stream, t0: range.t0Ns / 1e9, tOffsets: got.t, columns: Object.fromEntries(got.channels) });
        debug.historyFills++;
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) console.warn("pitwire: no chart history", err);
      });
  }

  stop(): void {
    this.abort?.abort();
  }
}

/** The oldest sample time of `stream`'s ring [s], NaN when it holds none. */
function oldest(stream: string | null): number {
  const ring = stream === null ? undefined : telemetry.ring(stream);
  return ring === undefined || ring.length === 0 ? Number.NaN : (ring.times()[0] as number);
}

/** Replay: fill after every jump and focus change; returns the stop. */
export function followReplayHistory(source: HistorySource): () => void {
  const filler = new Filler(source);
  const stopJumps = onReplayJump((_epoch, t) => filler.fill(useUi.getState().selectedStream, t));
  const stopFocus = useUi.subscribe((s, prev) => {
    if (s.selectedStream !== prev.selectedStream && debug.replayT !== null) {
      const t = oldest(s.selectedStream);
      filler.fill(s.selectedStream, Number.isNaN(t) ? debug.replayT : t);
    }
  });
  return () => {
    filler.stop();
    stopJumps();
    stopFocus();
  };
}

/** Live: fill each focused car once, when its first frames are in; returns the stop. */
export function followLiveHistory(source: HistorySource): () => void {
  const filler = new Filler(source);
  const filled = new Set<string>();
  const timer = setInterval(() => {
    const stream = useUi.getState().selectedStream;
    if (stream === null || filled.has(stream)) return;
    const t = oldest(stream);
    if (Number.isNaN(t)) return;
    filled.add(stream);
    filler.fill(stream, t);
  }, LIVE_CHECK_MS);
  return () => {
    clearInterval(timer);
    filler.stop();
  };
}
