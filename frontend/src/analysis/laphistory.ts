/**
 * When a car passed each point of its current and previous lap: one time per HISTORY_STEP_M
 * metres (bounded memory whatever the sample rate; laps started behind the line, on the grid,
 * included). Samples up to MAX_INTERPOLATE_S apart are interpolated; a longer pause leaves a
 * hole but keeps the rest. The timing board (timing.ts) reads intervals from it.
 */

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
export const MIN_SPEED_KMH = 5;

/** When a car passed each step of one lap: times relative to `base` [s], NaN = not passed. */
class LapTimes {
  lap = Number.NaN;
  base = 0;
  /** Lap distance of step 0 [m]: 0, or less for a lap recorded from behind the line (the grid). */
  origin = 0;
  /** First point of the newest stretch recorded without a hole ([m], [s]). */
  startD = Number.NaN;
  startT = Number.NaN;
  /** Furthest point of the lap known, and the latest time the car was there ([m], [s]). */
  endD = Number.NaN;
  endT = Number.NaN;
  readonly times: Float32Array;
  /** cut[k] = 1: a hole in the samples lies between steps k and k + 1, nothing is interpolated there. */
  readonly cut: Uint8Array;

  constructor(
    steps: number,
    readonly step: number,
  ) {
    this.times = new Float32Array(steps).fill(Number.NaN);
    this.cut = new Uint8Array(steps);
  }

  reset(lap: number, base: number, origin: number): void {
    this.lap = lap;
    this.base = base;
    this.origin = origin;
    this.startD = Number.NaN;
    this.startT = Number.NaN;
    this.endD = Number.NaN;
    this.endT = Number.NaN;
    this.times.fill(Number.NaN);
    this.cut.fill(0);
  }

  /** A stretch without a hole starts at (`d` [m], `t` [s]); it is the end of the record too. */
  begin(d: number, t: number): void {
    this.startD = d;
    this.endD = d;
    this.stay(t);
  }

  /** The car is (still) at the end of the record at `t` [s]: the latest time it was there. */
  stay(t: number): void {
    if (this.startD === this.endD) this.startT = t;
    this.endT = t;
    const k = this.index(this.endD);
    if (this.distance(k) === this.endD) this.set(k, t);
  }

  /** The step at or before lap distance `d` [m]. */
  index(d: number): number {
    return Math.floor((d - this.origin) / this.step);
  }

  /** Lap distance of step `k` [m]. */
  distance(k: number): number {
    return this.origin + k * this.step;
  }

  set(k: number, t: number): void {
    if (k >= 0 && k < this.times.length) this.times[k] = t - this.base;
  }

  get(k: number): number {
    return k >= 0 && k < this.times.length ? (this.times[k] ?? Number.NaN) + this.base : Number.NaN;
  }

  /** When the car passed `d` [m], interpolated between the recorded points around it; NaN when not recorded. */
  timeAt(d: number): number {
    if (!(d <= this.endD)) return Number.NaN;
    if (d === this.endD) return this.endT;
    const k = this.index(d);
    let d0 = this.distance(k);
    let t0: number;
    if (d >= this.startD && this.startD >= d0) {
      // The newest stretch begins between step k and d.
      d0 = this.startD;
      t0 = this.startT;
    } else {
      if (this.cut[k] === 1) return Number.NaN;
      t0 = this.get(k);
    }
    let d1 = this.distance(k + 1);
    let t1 = this.get(k + 1);
    if (d1 > this.endD) {
      d1 = this.endD;
      t1 = this.endT;
    }
    return d1 > d0 ? t0 + ((t1 - t0) * (d - d0)) / (d1 - d0) : t0;
  }

  /** The first recorded point past `d` [m] into `out` (distance, time); false when none. */
  firstAfter(d: number, out: { distance: number; time: number }): boolean {
    if (!(this.endD > d)) return false;
    out.distance = this.endD;
    out.time = this.endT;
    const last = this.index(this.endD);
    for (let k = Math.max(0, this.index(d) + 1); k <= last; k++) {
      const t = this.get(k);
      if (Number.isFinite(t) && this.distance(k) < this.endD) {
        out.distance = this.distance(k);
        out.time = t;
        break;
      }
    }
    if (this.startD > d && this.startD < out.distance) {
      out.distance = this.startD;
      out.time = this.startT;
    }
    return true;
  }
}

/** A point a car is known to have passed: when, and how fast it went on from there. */
export interface Passed {
  /** Completed laps. */
  lap: number;
  /** [m] */
  distance: number;
  /** [s] */
  time: number;
  /** Speed from there to the next recorded point [m/s], NaN when unknown. */
  speed: number;
}

/**
 * When one car passed each multiple of `step` metres of lap distance on its current and its
 * previous lap: enough for the interval of any car less than a lap behind.
 */
export class LapHistory {
  private cur: LapTimes;
  private prev: LapTimes;
  private readonly next = { distance: 0, time: 0 };

  constructor(
    steps: number = HISTORY_STEPS,
    readonly step: number = HISTORY_STEP_M,
  ) {
    this.cur = new LapTimes(steps, step);
    this.prev = new LapTimes(steps, step);
  }

  /**
   * The car was `lapDistance` [m] into the lap after `lap` completed ones at `time` [s];
   * `trackLength` [m] (as far as known) places the line crossing between two samples.
   * A car that has not moved on since its last sample was still there at `time`.
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
    if (!(time > lastT)) return;
    const hole = time - lastT > MAX_INTERPOLATE_S;
    if (lap === cur.lap) {
      if (!(lapDistance > lastD)) cur.stay(time); // standing (or a jitter back): still at the end
      else if (hole) this.skipTo(cur, lapDistance, time);
      else this.fill(cur, lastD, lastT, lapDistance, time);
    } else if (hole) {
      // The line crossing is somewhere in the hole: the old lap ends at its last sample.
      this.newLap(lap, time, lapDistance);
      this.cur.begin(lapDistance, time);
    } else {
      this.crossLine(lap, lapDistance, time, Math.max(trackLength, lastD));
    }
  }

  /** When the car passed `lapDistance` [m] after `lap` completed laps; NaN when not recorded. */
  timeAt(lap: number, lapDistance: number): number {
    const laps = lap === this.cur.lap ? this.cur : lap === this.prev.lap ? this.prev : null;
    return laps === null ? Number.NaN : laps.timeAt(lapDistance);
  }

  /**
   * The first point recorded past (`lap`, `lapDistance` [m]), on that lap or a later one, into
   * `out`; false when there is none.
   */
  firstAfter(lap: number, lapDistance: number, out: Passed): boolean {
    for (const laps of [this.prev, this.cur]) {
      if (!(laps.lap >= lap) || !laps.firstAfter(laps.lap === lap ? lapDistance : -Infinity, this.next)) continue;
      out.lap = laps.lap;
      out.distance = this.next.distance;
      out.time = this.next.time;
      out.speed = Number.NaN;
      if (laps.firstAfter(out.distance, this.next)) {
        const dt = this.next.time - out.time;
        if (dt > 0 && dt <= MAX_INTERPOLATE_S) out.speed = (this.next.distance - out.distance) / dt;
      }
      return true;
    }
    return false;
  }

  /** Forget everything. */
  clear(): void {
    this.cur.reset(Number.NaN, 0, 0);
    this.prev.reset(Number.NaN, 0, 0);
  }

  private restart(lap: number, lapDistance: number, time: number): void {
    this.prev.reset(Number.NaN, 0, 0);
    this.cur.reset(lap, time, this.originFor(lapDistance));
    this.cur.begin(lapDistance, time);
  }

  /** Step 0 of a lap first seen at `lapDistance` [m]: the line, or before it (the grid). */
  private originFor(lapDistance: number): number {
    return Math.min(0, Math.floor(lapDistance / this.step) * this.step);
  }

  /** Make the current lap the previous one and start lap `lap` (base time `time` [s]) empty. */
  private newLap(lap: number, time: number, lapDistance: number): void {
    const old = this.cur;
    this.cur = this.prev;
    this.prev = old;
    this.cur.reset(lap, time, this.originFor(lapDistance));
  }

  /**
   * The car is at `lapDistance` [m] at `time` [s] after a hole in its samples since the end of
   * `laps`' record: the steps around the hole are cut, none inside it set, a new stretch begins.
   */
  private skipTo(laps: LapTimes, lapDistance: number, time: number): void {
    laps.cut.fill(1, Math.max(0, laps.index(laps.endD)), Math.max(0, laps.index(lapDistance) + 1));
    laps.begin(lapDistance, time);
  }

  /** From the last sample of the lap over the line (at `length` [m]) to this one. */
  private crossLine(lap: number, lapDistance: number, time: number, length: number): void {
    const old = this.cur;
    const before = length - old.endD;
    const crossed = old.endT + ((time - old.endT) * before) / Math.max(before + Math.max(lapDistance, 0), 1e-9);
    this.fill(old, old.endD, old.endT, length, crossed);
    this.newLap(lap, crossed, 0);
    this.cur.begin(0, crossed);
    if (lapDistance > 0) this.fill(this.cur, 0, crossed, lapDistance, time);
  }

  /** Record the steps in (d0, d1] passed between (d0, t0) and (d1, t1), and (d1, t1) as the end. */
  private fill(laps: LapTimes, d0: number, t0: number, d1: number, t1: number): void {
    const last = laps.index(d1);
    for (let k = Math.max(0, laps.index(d0) + 1); k <= last; k++) {
      laps.set(k, t0 + ((t1 - t0) * (laps.distance(k) - d0)) / (d1 - d0));
    }
    laps.endD = d1;
    laps.endT = t1;
  }
}
