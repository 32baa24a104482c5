/**
 * A fixed-capacity ring of time-aligned columns for one stream: a time column [s since epoch]
 * plus one typed array per channel, appended in batches as they arrive from the worker.
 *
 * The ring is *mirrored*: every sample is written at slot p and at p + capacity of arrays twice
 * the capacity long, so the newest k samples are always one contiguous range and reading a
 * window is a zero-copy `subarray` (what uPlot's `setData` takes) — no allocation of data per
 * frame, at the price of two writes per sample.
 *
 * Time must not go backwards: a batch that starts before the newest stored sample (a replay
 * seek, a restarted source) clears the ring first. Channels missing from a batch get NaN for
 * those rows, so every column stays aligned with the time column.
 */

export type Column = Float32Array | Float64Array;

export class TimeRing {
  readonly capacity: number;
  private readonly time: Float64Array;
  private readonly cols = new Map<string, Column>();
  /** Slot of the next write, in [0, capacity). */
  private head = 0;
  private size = 0;
  /** Bumped on every change, so readers can skip work when nothing is new. */
  version = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity must be a positive integer, not ${capacity}`);
    this.capacity = capacity;
    this.time = new Float64Array(2 * capacity);
  }

  /** Number of samples held (at most `capacity`). */
  get length(): number {
    return this.size;
  }

  /** Names of the channels seen so far. */
  channels(): string[] {
    return [...this.cols.keys()];
  }

  /**
   * Append a batch: frame i has time `t0 + tOffsets[i]` [s] and value `columns[name][i]`.
   * A batch longer than the capacity keeps only its newest `capacity` samples.
   */
  append(t0: number, tOffsets: ArrayLike<number>, columns: Readonly<Record<string, Column>>): void {
    const n = tOffsets.length;
    for (const [name, values] of Object.entries(columns)) {
      if (values.length !== n) throw new RangeError(`column ${name}: ${values.length} values for ${n} frames`);
    }
    if (n > 0 && this.size > 0 && t0 + (tOffsets[0] ?? 0) < this.lastTime()) this.clear();
    // Channels become known even from an empty batch (their columns read back empty).
    for (const [name, values] of Object.entries(columns)) {
      if (!this.cols.has(name)) this.cols.set(name, this.newColumn(values));
    }
    if (n === 0) return;
    const cap = this.capacity;
    const skip = Math.max(0, n - cap);
    const m = n - skip;
    const start = this.head;
    const time = this.time;
    for (let k = 0; k < m; k++) {
      const p = (start + k) % cap;
      const t = t0 + (tOffsets[skip + k] ?? Number.NaN);
      time[p] = t;
      time[p + cap] = t;
    }
    for (const [name, dst] of this.cols) {
      const src = columns[name];
      for (let k = 0; k < m; k++) {
        const p = (start + k) % cap;
        const v = src === undefined ? Number.NaN : (src[skip + k] ?? Number.NaN);
        dst[p] = v;
        dst[p + cap] = v;
      }
    }
    this.head = (start + m) % cap;
    this.size = Math.min(cap, this.size + m);
    this.version++;
  }

  /**
   * Append one sample: `values[i]` of channel `names[i]` at time `t` [s] (a replay tick).
   * Same rules as `append` (time going backwards clears first; missing channels get NaN),
   * without allocating.
   */
  appendRow(t: number, names: readonly string[], values: ArrayLike<number>): void {
    if (names.length !== values.length) throw new RangeError(`${values.length} values for ${names.length} channels`);
    if (this.size > 0 && t < this.lastTime()) this.clear();
    for (const name of names) if (!this.cols.has(name)) this.cols.set(name, this.newColumn(new Float64Array(0)));
    const cap = this.capacity;
    const p = this.head;
    this.time[p] = t;
    this.time[p + cap] = t;
    for (const [name, dst] of this.cols) {
      const i = names.indexOf(name);
      const v = i < 0 ? Number.NaN : (values[i] ?? Number.NaN);
      dst[p] = v;
      dst[p + cap] = v;
    }
    this.head = (p + 1) % cap;
    this.size = Math.min(cap, this.size + 1);
    this.version++;
  }

  /**
   * Put samples from before the oldest one held in front of them (history fetched after a
   * replay seek): only rows earlier than the oldest sample are taken; when the two do not
   * fit, the oldest rows are dropped. Same column rules as `append`.
   */
  backfill(t0: number, tOffsets: ArrayLike<number>, columns: Readonly<Record<string, Column>>): void {
    if (this.size === 0) {
      this.append(t0, tOffsets, columns);
      return;
    }
    const oldest = this.times()[0] as number;
    let n = 0;
    while (n < tOffsets.length && t0 + (tOffsets[n] as number) < oldest) n++;
    if (n === 0) return;
    const heldTimes = this.times().slice();
    const held: Record<string, Column> = {};
    for (const name of this.cols.keys()) held[name] = (this.values(name) as Column).slice();
    const older: Record<string, Column> = {};
    for (const [name, values] of Object.entries(columns)) older[name] = values.subarray(0, n);
    this.clear();
    this.append(t0, Array.prototype.slice.call(tOffsets, 0, n) as number[], older);
    this.append(0, heldTimes, held);
  }

  /** Forget all samples (channels stay known). */
  clear(): void {
    this.head = 0;
    this.size = 0;
    this.version++;
  }

  /** Time of the newest sample [s], NaN when empty. */
  lastTime(): number {
    return this.size === 0 ? Number.NaN : (this.time[this.head === 0 ? this.capacity - 1 : this.head - 1] ?? Number.NaN);
  }

  /** Newest value of `name`, NaN when empty or unknown. */
  latest(name: string): number {
    const col = this.cols.get(name);
    if (col === undefined || this.size === 0) return Number.NaN;
    return col[this.head === 0 ? this.capacity - 1 : this.head - 1] ?? Number.NaN;
  }

  /** How many of the newest samples lie within `seconds` of the newest one (inclusive). */
  countWithin(seconds: number): number {
    if (this.size === 0) return 0;
    const t = this.times();
    const from = (t[t.length - 1] ?? 0) - seconds;
    let lo = 0;
    let hi = t.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((t[mid] ?? 0) < from) lo = mid + 1;
      else hi = mid;
    }
    return t.length - lo;
  }

  /** The newest `n` times [s] (default all), oldest first: a contiguous view, no copy. */
  times(n: number = this.size): Float64Array {
    return this.time.subarray(...this.span(n));
  }

  /** The newest `n` values of `name`, aligned with `times(n)`; undefined for an unknown channel. */
  values(name: string, n: number = this.size): Column | undefined {
    return this.cols.get(name)?.subarray(...this.span(n));
  }

  private span(n: number): [number, number] {
    const k = Math.max(0, Math.min(Math.floor(n), this.size));
    const start = (this.head - k + this.capacity) % this.capacity;
    return [start, start + k];
  }

  private newColumn(like: Column): Column {
    const col = like instanceof Float32Array ? new Float32Array(2 * this.capacity) : new Float64Array(2 * this.capacity);
    col.fill(Number.NaN);
    return col;
  }
}
