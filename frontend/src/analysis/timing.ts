/**
 * Timing-tower arithmetic, free of DOM and clocks: feed each car's samples to a `TimingBoard`
 * (`observe`), then `rank()` it for the running order, the gap to the leader and the interval
 * to the car ahead; `indexLaps` + `lapsAt` give each car's last and best lap and pit status at
 * any instant (live "now" or a replay's clock), from the session's lap list.
 *
 * Gaps are time gaps: how long ago the car ahead passed the point this car is at now, read
 * from a compact per-car record of when it passed every HISTORY_STEP_M metres of its current
 * and previous lap (`LapHistory`; bounded, whatever the sample rate). Samples up to
 * MAX_INTERPOLATE_S apart are interpolated (a 64× replay ticks 2.1 s of race time apart); a
 * longer pause (a dropout, a forward seek) leaves a hole in the record but keeps the rest.
 * Where that record does not reach (right after a backward seek, across a hole, before the
 * car ahead has history) the gap is the distance between them over this car's own speed. A
 * car a whole lap or more behind shows laps, not seconds.
 *
 * Points are (completed laps, lap distance), so gaps need no track length; only lapped-car
 * counts and the fallback use one: the longest lap distance seen so far (within a sample's
 * travel of the real one once a car has crossed the line).
 */

import type { Lap } from "../api/detail";

/** History resolution: one time per this much lap distance [m]. */
export const HISTORY_STEP_M = 10;
/** Steps per lap kept (25.6 km at 10 m: any circuit; 25 kB per car). */
export const HISTORY_STEPS = 2560;
/**
 * Two samples further apart than this [s] (a dropout, a forward seek, skipped server ticks
 * beyond a few) are not interpolated between: the history keeps both sides and a hole between
 * them. Closer samples are, even at a 64× replay (2.1 s of race time per tick).
 */
export const MAX_INTERPOLATE_S = 10;
/**
 * A car moving back further than this [m] (a backward seek, a reset to the pits) restarts its
 * history, as does time going backwards or the lap count other than staying or going up by one.
 */
const MAX_BACKWARDS_M = 50;
/** Below this speed [km/h] a distance gap cannot be turned into time. */
const MIN_SPEED_KMH = 5;

/** When a car passed each step of one lap: times relative to `base` [s], NaN = not passed. */
class LapTimes {
  lap = Number.NaN;
  base = 0;
  /** Furthest point of the lap known, and when the car was there ([m], [s]). */
  endD = Number.NaN;
  endT = Number.NaN;
  readonly times: Float32Array;
  /** cut[k] = 1: a hole in the samples lies between steps k and k + 1, nothing is interpolated there. */
  readonly cut: Uint8Array;

  constructor(steps: number) {
    this.times = new Float32Array(steps).fill(Number.NaN);
    this.cut = new Uint8Array(steps);
  }

  reset(lap: number, base: number): void {
    this.lap = lap;
    this.base = base;
    this.endD = Number.NaN;
    this.endT = Number.NaN;
    this.times.fill(Number.NaN);
    this.cut.fill(0);
  }

  set(k: number, t: number): void {
    if (k >= 0 && k < this.times.length) this.times[k] = t - this.base;
  }

  get(k: number): number {
    return k >= 0 && k < this.times.length ? (this.times[k] ?? Number.NaN) + this.base : Number.NaN;
  }
}

/**
 * When one car passed each multiple of `step` metres of lap distance on its current and its
 * previous lap: enough for the gap of any car less than a lap behind.
 */
export class LapHistory {
  private cur: LapTimes;
  private prev: LapTimes;

  constructor(
    steps: number = HISTORY_STEPS,
    readonly step: number = HISTORY_STEP_M,
  ) {
    this.cur = new LapTimes(steps);
    this.prev = new LapTimes(steps);
  }

  /**
   * The car was `lapDistance` [m] into the lap after `lap` completed ones at `time` [s];
   * `trackLength` [m] (as far as known) places the line crossing between two samples.
   */
  record(lap: number, lapDistance: number, time: number, trackLength: number): void {
    if (!Number.isFinite(lap) || !Number.isFinite(lapDistance) || !Number.isFinite(time)) return;
    const cur = this.cur;
    const lastD = cur.endD;
    const lastT = cur.endT;
    const jump = lap === cur.lap ? lapDistance < lastD - MAX_BACKWARDS_M : lap !== cur.lap + 1;
    if (Number.isNaN(lastT) || time < lastT || jump) {
      this.restart(lap, lapDistance, time);
      return;
    }
    const hole = time - lastT > MAX_INTERPOLATE_S;
    if (lap === cur.lap) {
      if (!(lapDistance > lastD && time > lastT)) return;
      if (hole) this.skipTo(cur, lapDistance, time);
      else this.fill(cur, lastD, lastT, lapDistance, time);
    } else if (hole) {
      // The line crossing is somewhere in the hole: the old lap ends at its last sample.
      this.newLap(lap, time);
      this.skipTo(this.cur, lapDistance, time);
    } else {
      this.crossLine(lap, lapDistance, time, Math.max(trackLength, lastD));
    }
  }

  /** When the car passed `lapDistance` [m] after `lap` completed laps; NaN when not recorded. */
  timeAt(lap: number, lapDistance: number): number {
    const laps = lap === this.cur.lap ? this.cur : lap === this.prev.lap ? this.prev : null;
    if (laps === null || !(lapDistance >= 0) || !(lapDistance <= laps.endD)) return Number.NaN;
    if (lapDistance === laps.endD) return laps.endT;
    const k = Math.floor(lapDistance / this.step);
    if (laps.cut[k] === 1) return Number.NaN;
    const t0 = laps.get(k);
    const d0 = k * this.step;
    let d1 = d0 + this.step;
    let t1 = laps.get(k + 1);
    if (d1 > laps.endD) {
      d1 = laps.endD;
      t1 = laps.endT;
    }
    return d1 > d0 ? t0 + ((t1 - t0) * (lapDistance - d0)) / (d1 - d0) : t0;
  }

  /** Forget everything. */
  clear(): void {
    this.cur.reset(Number.NaN, 0);
    this.prev.reset(Number.NaN, 0);
  }

  private restart(lap: number, lapDistance: number, time: number): void {
    this.prev.reset(Number.NaN, 0);
    this.cur.reset(lap, time);
    this.cur.endD = lapDistance;
    this.cur.endT = time;
    const k = lapDistance / this.step;
    if (Number.isInteger(k)) this.cur.set(k, time);
  }

  /** Make the current lap the previous one and start lap `lap` (base time `time` [s]) empty. */
  private newLap(lap: number, time: number): void {
    const old = this.cur;
    this.cur = this.prev;
    this.prev = old;
    this.cur.reset(lap, time);
  }

  /**
   * The car is at `lapDistance` [m] at `time` [s] after a hole in its samples since the end of
   * `laps`' record (if any on that lap): the steps around the hole are cut, none inside it set.
   */
  private skipTo(laps: LapTimes, lapDistance: number, time: number): void {
    const from = Number.isNaN(laps.endD) ? 0 : Math.max(0, Math.floor(laps.endD / this.step));
    laps.cut.fill(1, from, Math.floor(lapDistance / this.step) + 1);
    laps.endD = lapDistance;
    laps.endT = time;
  }

  /** From the last sample of the lap over the line (at `length` [m]) to this one. */
  private crossLine(lap: number, lapDistance: number, time: number, length: number): void {
    const old = this.cur;
    const before = length - old.endD;
    const crossed = old.endT + ((time - old.endT) * before) / Math.max(before + Math.max(lapDistance, 0), 1e-9);
    this.fill(old, old.endD, old.endT, length, crossed);
    this.newLap(lap, crossed);
    this.cur.set(0, crossed);
    this.cur.endD = 0;
    this.cur.endT = crossed;
    if (lapDistance > 0) this.fill(this.cur, 0, crossed, lapDistance, time);
  }

  /** Record the steps in (d0, d1] passed between (d0, t0) and (d1, t1), and (d1, t1) as the end. */
  private fill(laps: LapTimes, d0: number, t0: number, d1: number, t1: number): void {
    const last = Math.floor(d1 / this.step);
    for (let k = Math.max(0, Math.floor(d0 / this.step) + 1); k <= last; k++) {
      laps.set(k, t0 + ((t1 - t0) * (k * this.step - d0)) / (d1 - d0));
    }
    laps.endD = d1;
    laps.endT = t1;
  }
}

/** One car's newest values, as the ring buffers hold them. */
export interface CarSample {
  /** Completed laps (0 on the out lap). */
  lap: number;
  /** Distance from the start line this lap [m]. */
  lapDistance: number;
  /** Race position, 0 = unknown. */
  position: number;
  /** [km/h] */
  speed: number;
  /** When these values were measured [s since epoch]. */
  time: number;
}

/** One car's line in the running order (reused between `rank` calls: copy what you keep). */
export interface TimingRow {
  name: string;
  /** 1-based place in the running order. */
  place: number;
  /** Completed laps. */
  lap: number;
  /** Total distance [m]. */
  distance: number;
  /** Time behind the leader [s] (0 for the leader, NaN unknown); meaningless when gapLaps > 0. */
  gap: number;
  /** Whole laps behind the leader (0 = on the lead lap). */
  gapLaps: number;
  /** Time behind the car ahead [s] (NaN for the leader or unknown). */
  interval: number;
  intervalLaps: number;
}

interface CarTiming {
  sample: CarSample;
  history: LapHistory;
  row: TimingRow;
}

/**
 * The running order of a set of cars: `observe` every sample (any rate), `rank` when the tower
 * is redrawn. Memory is bounded: one `LapHistory` per car.
 */
export class TimingBoard {
  private readonly cars = new Map<string, CarTiming>();
  private readonly order: TimingRow[] = [];
  /** Track length [m] as far as known: the longest lap distance seen (0 before any data). */
  private length = 0;

  get trackLength(): number {
    return this.length;
  }

  /** Car `name` had these values at `time` [s]; samples of one car must come oldest first. */
  observe(name: string, time: number, lap: number, lapDistance: number, speed: number, position: number): void {
    if (!Number.isFinite(time) || !Number.isFinite(lap) || !Number.isFinite(lapDistance)) return;
    const car = this.car(name);
    if (lapDistance > this.length) this.length = lapDistance;
    const s = car.sample;
    s.time = time;
    s.lap = lap;
    s.lapDistance = lapDistance;
    s.speed = speed;
    s.position = Number.isFinite(position) ? position : 0;
    car.history.record(lap, lapDistance, time, this.length);
  }

  /** Forget car `name` (it left the session). */
  forget(name: string): void {
    this.cars.delete(name);
  }

  /**
   * The cars with data in running order: by `position` when every car reports one (> 0),
   * else by completed laps then lap distance. The array and rows are reused by the next call.
   */
  rank(): readonly TimingRow[] {
    const order = this.order;
    order.length = 0;
    let byPosition = true;
    for (const car of this.cars.values()) {
      const s = car.sample;
      if (!Number.isFinite(s.time)) continue;
      car.row.distance = this.totalDistance(s);
      car.row.lap = s.lap;
      if (!(s.position > 0)) byPosition = false;
      order.push(car.row);
    }
    order.sort(byPosition ? this.byPosition : byDistance);
    const length = this.trackLength;
    const leader = order[0];
    order.forEach((row, i) => {
      row.place = i + 1;
      const ahead = i === 0 ? undefined : order[i - 1];
      if (leader === undefined || ahead === undefined) {
        row.gap = 0;
        row.gapLaps = 0;
        row.interval = Number.NaN;
        row.intervalLaps = 0;
        return;
      }
      row.gapLaps = lapsBetween(leader.distance, row.distance, length);
      row.gap = this.timeBehind(leader.name, row.name);
      row.intervalLaps = lapsBetween(ahead.distance, row.distance, length);
      row.interval = this.timeBehind(ahead.name, row.name);
    });
    return order;
  }

  /** How long ago car `ahead` passed where car `behind` is now [s], NaN when unknown. */
  timeBehind(ahead: string, behind: string): number {
    const a = this.cars.get(ahead);
    const b = this.cars.get(behind);
    if (a === undefined || b === undefined) return Number.NaN;
    const passed = a.history.timeAt(b.sample.lap, b.sample.lapDistance);
    if (Number.isFinite(passed)) return b.sample.time - passed;
    if (!(b.sample.speed > MIN_SPEED_KMH)) return Number.NaN;
    return (this.totalDistance(a.sample) - this.totalDistance(b.sample)) / (b.sample.speed / 3.6);
  }

  private readonly byPosition = (a: TimingRow, b: TimingRow): number =>
    (this.cars.get(a.name)?.sample.position ?? 0) - (this.cars.get(b.name)?.sample.position ?? 0) || byName(a, b);

  /** Laps × track length + lap distance [m]: orders cars like (laps, lap distance) would. */
  private totalDistance(s: CarSample): number {
    return Math.max(0, s.lap) * this.length + s.lapDistance;
  }

  private car(name: string): CarTiming {
    let car = this.cars.get(name);
    if (car === undefined) {
      car = {
        sample: { lap: 0, lapDistance: 0, position: 0, speed: 0, time: Number.NaN },
        history: new LapHistory(),
        row: { name, place: 0, lap: 0, distance: 0, gap: Number.NaN, gapLaps: 0, interval: Number.NaN, intervalLaps: 0 },
      };
      this.cars.set(name, car);
    }
    return car;
  }
}

function byName(a: TimingRow, b: TimingRow): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function byDistance(a: TimingRow, b: TimingRow): number {
  return b.distance - a.distance || byName(a, b);
}

/** Whole laps between two total distances [m] (0 when the length is unknown). */
function lapsBetween(ahead: number, behind: number, length: number): number {
  return length > 0 && ahead - behind >= length ? Math.floor((ahead - behind) / length) : 0;
}

/** "+1.234", "+1:02.345", "+2 L"; "—" when unknown. */
export function formatGap(seconds: number, laps: number): string {
  if (laps > 0) return `+${laps} L`;
  if (!Number.isFinite(seconds)) return "—";
  const s = Math.max(0, seconds);
  if (s < 60) return `+${s.toFixed(3)}`;
  const m = Math.floor(s / 60);
  return `+${m}:${(s - 60 * m).toFixed(3).padStart(6, "0")}`;
}

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
