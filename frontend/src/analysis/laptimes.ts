/**
 * Each car's last and best lap and pit status at any instant (live "now" or a replay's clock),
 * from the session's lap list: `indexLaps` once per lap list, `lapsAt` per refresh.
 */

import type { Lap } from "../api/detail";

/** One car's laps by end time, with the best lap time up to each. */
export interface CarLaps {
  /** Oldest first by `t1Ns`. */
  laps: Lap[];
  /** bestUpTo[i]: the best timed lap among laps[0..i] [s], NaN when none is timed. */
  bestUpTo: Float64Array;
}

/** Group a session's laps by car, sorted by end time (once per detail, not per frame). */
export function indexLaps(laps: readonly Lap[]): Map<string, CarLaps> {
  const byCar = new Map<string, Lap[]>();
  for (const lap of laps) {
    const list = byCar.get(lap.stream);
    if (list === undefined) byCar.set(lap.stream, [lap]);
    else list.push(lap);
  }
  const out = new Map<string, CarLaps>();
  for (const [stream, list] of byCar) {
    list.sort((a, b) => a.t1Ns - b.t1Ns || a.t0Ns - b.t0Ns);
    const bestUpTo = new Float64Array(list.length);
    let best = Number.NaN;
    list.forEach((lap, i) => {
      if (lap.lapTime !== null && !(lap.lapTime >= best)) best = lap.lapTime;
      bestUpTo[i] = best;
    });
    out.set(stream, { laps: list, bestUpTo });
  }
  return out;
}

export type PitStatus = "" | "PIT" | "OUT";

/**
 * "PIT" from this long [s] before the end of a pit-in lap (the lap ends on the line in the pit
 * lane: this covers the pit entry and the lane up to it)...
 */
export const PIT_BEFORE_S = 20;
/** ...until this long [s] after the out-lap began (the stop in the box, at most a few seconds in a race). */
export const PIT_AFTER_S = 5;

/** A car's lap times at one instant (reused: copy what you keep). */
export interface LapsNow {
  /** The newest timed lap completed by then [s], NaN when none. */
  last: number;
  /** The best timed lap completed by then [s], NaN when none. */
  best: number;
  pit: PitStatus;
}

/**
 * Last and best lap and pit status of one car at `now` [s since epoch]: completed laps are
 * those with `t1Ns / 1e9 <= now` (untimed ones do not count as "last"). For the pit status see
 * `pitStatus`.
 */
export function lapsAt(car: CarLaps | undefined, now: number, out: LapsNow): LapsNow {
  out.last = Number.NaN;
  out.best = Number.NaN;
  out.pit = "";
  if (car === undefined || !Number.isFinite(now)) return out;
  const laps = car.laps;
  const done = completedBy(laps, now);
  if (done > 0) out.best = car.bestUpTo[done - 1] ?? Number.NaN;
  for (let i = done - 1; i >= 0; i--) {
    const t = laps[i]?.lapTime;
    if (t !== null && t !== undefined) {
      out.last = t;
      break;
    }
  }
  out.pit = pitStatus(laps, done, now);
  return out;
}

/**
 * Pit status at `now` [s] of a car whose first `done` of `laps` are completed. A pit-in lap
 * ends in the pit lane and the lap after it is the pit-out lap, so:
 *
 * - "PIT" from PIT_BEFORE_S before the end of a pit-in lap until PIT_AFTER_S after the next
 *   lap began (when that lap is not listed yet, live, after the pit-in lap's end);
 * - else "OUT" while the current lap is a pit-out lap. The current lap is the one under way
 *   (or, between two laps' frames, the next listed one); live, the lap under way is not listed
 *   until it ends, so after a pit-in lap the car is taken to be on its out-lap;
 * - else "".
 */
function pitStatus(laps: readonly Lap[], done: number, now: number): PitStatus {
  const previous = laps[done - 1];
  const next = laps[done];
  const current = next !== undefined && (next.t0Ns / 1e9 <= now || previous !== undefined) ? next : undefined;
  if (current?.pitIn === true && now >= current.t1Ns / 1e9 - PIT_BEFORE_S) return "PIT";
  if (previous?.pitIn === true) {
    const outStart = Math.max(previous.t1Ns, current?.t0Ns ?? previous.t1Ns) / 1e9;
    if (now <= outStart + PIT_AFTER_S) return "PIT";
  }
  if (current === undefined) return previous?.pitIn === true ? "OUT" : "";
  return current.pitOut ? "OUT" : "";
}

/** How many of `laps` (sorted by t1) ended by `now` [s]. */
function completedBy(laps: readonly Lap[], now: number): number {
  let lo = 0;
  let hi = laps.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((laps[mid]?.t1Ns ?? 0) / 1e9 <= now) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The best of every car's best lap [s], NaN when none. */
export function overallBest(cars: Iterable<LapsNow>): number {
  let best = Number.NaN;
  for (const { best: b } of cars) if (Number.isFinite(b) && !(b >= best)) best = b;
  return best;
}
