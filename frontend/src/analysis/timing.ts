/**
 * Timing-tower arithmetic, free of DOM and clocks: feed each car's samples to a `TimingBoard`
 * (`observe`), then `rank()` it for the running order, the gap to the leader and the interval
 * to the car ahead (each car's last and best lap and pit status: laptimes.ts).
 *
 * Intervals are time gaps: how long ago the car ahead passed the point this car is at now, read
 * from a compact per-car record of when it passed every HISTORY_STEP_M metres of its current
 * and previous lap (`LapHistory`; bounded, whatever the sample rate; laps started behind the
 * line, on the grid, included). Samples up to MAX_INTERPOLATE_S apart are interpolated (a 64×
 * replay ticks 2.1 s of race time apart); a longer pause (a dropout, a forward seek) leaves a
 * hole in the record but keeps the rest. Where that record does not reach (right after a
 * seek, across a hole) the interval is extrapolated back from the first point the car ahead is
 * known to have passed further on, so it meets the recorded value without a jump. Each gap to
 * the leader is the sum of the intervals above it: one method for both columns, so they agree
 * and gaps never decrease down the order. A car a whole lap or more behind shows laps, not
 * seconds, counted from (completed laps, lap distance): no track length needed.
 *
 * Only the line crossing between two samples and the fallback across the line use a track
 * length: the longest lap distance seen so far (within a sample's travel of the real one once
 * a car has crossed the line).
 */

import { LapHistory, MIN_SPEED_KMH, type Passed } from "./laphistory";

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
  /** The `lap` channel: completed laps (the stored lap number of the lap under way). */
  lap: number;
  /** Distance from the line this lap [m] (negative on the grid behind it). */
  lapDistance: number;
  /**
   * Time behind the leader [s] (0 for the leader, NaN unknown): the gap of the car ahead plus
   * this car's interval; meaningless when gapLaps > 0.
   */
  gap: number;
  /** Whole laps behind the leader (0 = on the lead lap). */
  gapLaps: number;
  /** How long ago the car ahead passed where this car is now [s] (>= 0; NaN for the leader or unknown). */
  interval: number;
  /** Whole laps behind the car ahead. */
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
  private readonly passed: Passed = { lap: 0, distance: 0, time: 0, speed: 0 };
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
   * else by completed laps then lap distance. Each car's interval is measured to the car ahead
   * (`interval`) and its gap is the sum of the intervals above it, so GAP and INT always agree
   * and gaps never decrease down the order. The array and rows are reused by the next call.
   */
  rank(): readonly TimingRow[] {
    const order = this.order;
    order.length = 0;
    let byPosition = true;
    for (const car of this.cars.values()) {
      const s = car.sample;
      if (!Number.isFinite(s.time)) continue;
      car.row.lap = s.lap;
      car.row.lapDistance = s.lapDistance;
      if (!(s.position > 0)) byPosition = false;
      order.push(car.row);
    }
    order.sort(byPosition ? this.byPosition : byDistance);
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
      row.gapLaps = lapsBehind(leader, row);
      row.intervalLaps = lapsBehind(ahead, row);
      row.interval = Math.max(0, this.interval(ahead.name, row.name));
      row.gap = ahead.gap + row.interval;
    });
    return order;
  }

  /**
   * How long ago car `ahead` passed where car `behind` is now [s], NaN when unknown: from
   * `ahead`'s history where it reaches; else (after a seek, across a hole) extrapolated back
   * from the first point `ahead` is known to have passed further on, over the distance between
   * at the mean of `behind`'s speed now and `ahead`'s there. The estimate meets the recorded
   * value when `behind` reaches that point, so the interval does not jump when history takes over.
   */
  interval(ahead: string, behind: string): number {
    const a = this.cars.get(ahead);
    const b = this.cars.get(behind)?.sample;
    if (a === undefined || b === undefined) return Number.NaN;
    const at = a.history.timeAt(b.lap, b.lapDistance);
    if (Number.isFinite(at)) return b.time - at;
    const p = this.passed;
    const own = b.speed / 3.6;
    if (!a.history.firstAfter(b.lap, b.lapDistance, p)) {
      p.lap = a.sample.lap;
      p.distance = a.sample.lapDistance;
      p.time = a.sample.time;
      p.speed = Number.NaN;
    }
    if (!Number.isFinite(p.speed) && p.time === a.sample.time) p.speed = a.sample.speed / 3.6;
    const speed = Number.isFinite(p.speed) ? (own + p.speed) / 2 : own;
    if (!(speed > MIN_SPEED_KMH / 3.6)) return Number.NaN;
    const apart = (p.lap - b.lap) * this.length + p.distance - b.lapDistance;
    return b.time - p.time + apart / speed;
  }

  private readonly byPosition = (a: TimingRow, b: TimingRow): number =>
    (this.cars.get(a.name)?.sample.position ?? 0) - (this.cars.get(b.name)?.sample.position ?? 0) || byName(a, b);

  private car(name: string): CarTiming {
    let car = this.cars.get(name);
    if (car === undefined) {
      car = {
        sample: { lap: 0, lapDistance: 0, position: 0, speed: 0, time: Number.NaN },
        history: new LapHistory(),
        row: { name, place: 0, lap: 0, lapDistance: 0, gap: Number.NaN, gapLaps: 0, interval: Number.NaN, intervalLaps: 0 },
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
  return b.lap - a.lap || b.lapDistance - a.lapDistance || byName(a, b);
}

/**
 * Whole laps `behind` is behind `ahead`, from their (completed laps, lap distance): no track
 * length needed, so cars close together on the first lap are never counted a lap down.
 */
function lapsBehind(ahead: TimingRow, behind: TimingRow): number {
  return Math.max(0, ahead.lap - behind.lap - (ahead.lapDistance < behind.lapDistance ? 1 : 0));
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
