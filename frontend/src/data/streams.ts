/**
 * Ring buffers for every stream (car) of the current session, keyed by stream name. The main
 * thread appends each `data` message from the worker; the rAF loop reads windows. Only the
 * channels in `keep` are stored (null = all), so 20 cars with 40 channels stay small.
 */

import { TimeRing, type Column } from "./ring";

export interface DataBatch {
  stream: string;
  /** Time of the first frame [s since epoch]. */
  t0: number;
  tOffsets: Float64Array;
  columns: Readonly<Record<string, Column>>;
}

export class StreamStore {
  private readonly rings = new Map<string, TimeRing>();

  constructor(
    private readonly capacity: number,
    private readonly keep: ReadonlySet<string> | null = null,
  ) {}

  /** Append one batch; returns the number of frames it held. */
  append(batch: DataBatch): number {
    let ring = this.rings.get(batch.stream);
    if (ring === undefined) {
      ring = new TimeRing(this.capacity);
      this.rings.set(batch.stream, ring);
    }
    const keep = this.keep;
    if (keep === null) {
      ring.append(batch.t0, batch.tOffsets, batch.columns);
    } else {
      const kept: Record<string, Column> = {};
      for (const [name, values] of Object.entries(batch.columns)) if (keep.has(name)) kept[name] = values;
      ring.append(batch.t0, batch.tOffsets, kept);
    }
    return batch.tOffsets.length;
  }

  /** Append one replay tick of `stream`: `values[i]` of channel `names[i]` at `t` [s]. */
  appendRow(stream: string, t: number, names: readonly string[], values: ArrayLike<number>): void {
    let ring = this.rings.get(stream);
    if (ring === undefined) {
      ring = new TimeRing(this.capacity);
      this.rings.set(stream, ring);
    }
    if (this.keep === null) {
      ring.appendRow(t, names, values);
      return;
    }
    const keptNames: string[] = [];
    const kept: number[] = [];
    names.forEach((name, i) => {
      if (this.keep?.has(name)) {
        keptNames.push(name);
        kept.push(values[i] ?? Number.NaN);
      }
    });
    ring.appendRow(t, keptNames, kept);
  }

  /** History of `batch.stream` from before what its ring holds (see TimeRing.backfill). */
  backfill(batch: DataBatch): void {
    const ring = this.rings.get(batch.stream);
    if (ring === undefined) {
      this.append(batch);
      return;
    }
    ring.backfill(batch.t0, batch.tOffsets, this.kept(batch.columns));
  }

  private kept(columns: Readonly<Record<string, Column>>): Record<string, Column> {
    const out: Record<string, Column> = {};
    for (const [name, values] of Object.entries(columns)) if (this.keep === null || this.keep.has(name)) out[name] = values;
    return out;
  }

  /** Time of the newest sample of any stream [s], NaN when empty: "now" for the views. */
  newestTime(): number {
    let t = Number.NaN;
    for (const ring of this.rings.values()) {
      const last = ring.lastTime();
      if (Number.isFinite(last) && !(last <= t)) t = last;
    }
    return t;
  }

  ring(stream: string): TimeRing | undefined {
    return this.rings.get(stream);
  }

  streams(): string[] {
    return [...this.rings.keys()];
  }

  /** Forget every car and its ring (a new session). */
  drop(): void {
    this.rings.clear();
  }

  /** Empty every car's ring, keeping its buffers (a replay jump: no reallocation). */
  clear(): void {
    for (const ring of this.rings.values()) ring.clear();
  }
}

/** Channels the pit wall draws (gauges, charts, timing tower, track map). */
export const DASHBOARD_CHANNELS: ReadonlySet<string> = new Set([
  "speed",
  "rpm",
  "gear",
  "throttle",
  "brake",
  "steer",
  "lap",
  "lap_distance",
  "lap_time",
  "position",
  "x",
  "y",
]);

/** ~30 s chart window at up to ~270 Hz per car. */
export const RING_CAPACITY = 8192;

/** The app's one store of live data. */
export const telemetry = new StreamStore(RING_CAPACITY, DASHBOARD_CHANNELS);
