/**
 * Lap comparison, pure: resample laps onto a common distance grid, the elapsed time at each
 * distance, each lap's running delta to a reference lap, and where along the lap time is
 * gained or lost.
 *
 * Units: distance [m] (the `lap_distance` channel, from the start line), time [s]. A delta
 * is `lap - reference` [s]: positive means the lap is behind the reference at that point.
 */

/** One lap's frames as received: times and channel columns of equal length. */
export interface LapTrace {
  /** Frame times [s], ascending (any origin). */
  t: Float64Array;
  /** Distance from the start line [m]; NaN, resets and glitches are tolerated. */
  distance: Float64Array;
  /** Other channels to resample (speed, throttle, x, y, ...), as long as `t`. */
  channels: ReadonlyMap<string, Float64Array>;
  /**
   * The lap's first frame [s, same origin as `t`], usable or not (the store's lap start).
   * Elapsed time counts from the line crossing, estimated from the first two usable frames
   * (see `lineCrossing`); when `start` is before the first usable frame (a frame of the
   * previous lap's tail, or a known crossing), the crossing is no earlier than `start`.
   */
  start?: number;
}

/** A lap on the common grid: each array is as long as the grid. */
export interface ResampledLap {
  /** Time since the lap's start when it reached each grid distance [s]. */
  elapsed: Float64Array;
  channels: Map<string, Float64Array>;
}

export interface Comparison {
  /** Grid distances [m]: 0, step, 2·step, ... up to the shortest lap's length. */
  grid: Float64Array;
  laps: ResampledLap[];
  /** Index into `laps` of the reference. */
  reference: number;
  /** Per lap, `elapsed - reference.elapsed` at each grid distance [s] (the reference's is all 0). */
  deltas: Float64Array[];
}

/** Default grid spacing [m]. */
export const GRID_STEP_M = 2;

/** Channels that hold whole steps (a gear is never 3.4): resampled by the previous frame's value. */
export const STEPPED: ReadonlySet<string> = new Set(["gear", "lap", "position"]);

/**
 * The frames usable for resampling: indices with finite time and distance whose distance
 * strictly increases, chosen as the longest such run (a longest increasing subsequence). This
 * drops NaN, a previous lap's tail before a reset to 0, one-frame glitches and standstills
 * (a repeated distance keeps its last frame: when the car set off again, which interpolates the
 * distance after it correctly).
 */
export function monotonicIndices(t: Float64Array, distance: Float64Array): Int32Array {
  const n = Math.min(t.length, distance.length);
  // Patience sorting over the finite samples: tails[k] = index ending the best run of length k+1.
  const tails: number[] = [];
  const prev = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const d = distance[i] as number;
    if (!Number.isFinite(d) || !Number.isFinite(t[i] as number)) continue;
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((distance[tails[mid] as number] as number) < d) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) prev[i] = tails[lo - 1] as number;
    tails[lo] = i;
  }
  const out = new Int32Array(tails.length);
  let k = tails.length - 1;
  for (let i = tails[k] ?? -1; i >= 0 && k >= 0; i = prev[i] as number) out[k--] = i;
  return out;
}

/** The distance a lap covers [m]: its largest usable distance, 0 with fewer than 2 usable frames. */
export function lapLength(lap: LapTrace): number {
  const idx = monotonicIndices(lap.t, lap.distance);
  if (idx.length < 2) return 0;
  return lap.distance[idx[idx.length - 1] as number] as number;
}

/** A grid 0, step, ... ≤ length [m] (at least one point). */
export function distanceGrid(length: number, step = GRID_STEP_M): Float64Array {
  if (!(step > 0)) throw new RangeError(`grid step must be > 0 m, not ${step}`);
  const n = Math.max(0, Math.floor(length / step + 1e-9)) + 1;
  const grid = new Float64Array(n);
  for (let i = 0; i < n; i++) grid[i] = i * step;
  return grid;
}

/** The line crossing is extrapolated at most this far [s] (or one frame interval, if longer) before the first frame. */
export const MAX_LINE_EXTRAPOLATION_S = 1;

/**
 * When the car crossed the start line [s]: extrapolated back from the first two usable frames
 * (t0, d0) and (t1, d1) at their mean speed, t0 - d0·(t1 - t0)/(d1 - d0), because the first
 * frame of a lap is already d0 metres past the line (up to a frame interval late). Clamped to
 * [t0 - max(MAX_LINE_EXTRAPOLATION_S, t1 - t0), t0], and to no earlier than `earliest` when
 * that is before t0 (at t0 it says nothing: a lap's first frame is after the crossing); t0
 * when d0 <= 0 or the frames do not advance.
 */
export function lineCrossing(t0: number, d0: number, t1: number, d1: number, earliest = Number.NEGATIVE_INFINITY): number {
  if (!(d0 > 0) || !(d1 > d0) || !(t1 > t0)) return t0;
  const estimate = t0 - (d0 * (t1 - t0)) / (d1 - d0);
  let floor = t0 - Math.max(MAX_LINE_EXTRAPOLATION_S, t1 - t0);
  if (earliest < t0 && earliest > floor) floor = earliest;
  return Math.min(t0, Math.max(floor, estimate));
}

/**
 * `lap` on `grid`: elapsed time and every channel linearly interpolated in distance between
 * the usable frames. Elapsed time counts from the line crossing (`lineCrossing`); before the
 * first usable frame it is interpolated from the crossing (at distance 0) and channels hold
 * their first value; past the last, both hold.
 */
export function resampleLap(lap: LapTrace, grid: Float64Array, stepped: ReadonlySet<string> = STEPPED): ResampledLap {
  const idx = monotonicIndices(lap.t, lap.distance);
  if (idx.length === 0) throw new RangeError("the lap has no frame with a usable lap_distance");
  const n = idx.length;
  const d = new Float64Array(n);
  const t = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    d[k] = lap.distance[idx[k] as number] as number;
    t[k] = lap.t[idx[k] as number] as number;
  }
  const first = t[0] as number;
  const d0 = d[0] as number;
  const given = lap.start !== undefined && lap.start < first ? lap.start : first;
  const start = n > 1 ? lineCrossing(first, d0, t[1] as number, d[1] as number, lap.start) : given;

  const m = grid.length;
  const elapsed = new Float64Array(m);
  const channels = new Map<string, Float64Array>();
  const sources: [Float64Array, Float64Array, boolean][] = [];
  for (const [name, values] of lap.channels) {
    const out = new Float64Array(m);
    channels.set(name, out);
    sources.push([values, out, stepped.has(name)]);
  }

  let k = 0; // d[k] <= x < d[k + 1] for the current grid point
  for (let g = 0; g < m; g++) {
    const x = grid[g] as number;
    if (x <= d0) {
      elapsed[g] = d0 > 0 ? ((first - start) * Math.max(0, x)) / d0 : first - start;
      for (const [src, out] of sources) out[g] = src[idx[0] as number] as number;
      continue;
    }
    while (k < n - 2 && (d[k + 1] as number) <= x) k++;
    if (n === 1 || x >= (d[n - 1] as number)) {
      elapsed[g] = (t[n - 1] as number) - start;
      for (const [src, out] of sources) out[g] = src[idx[n - 1] as number] as number;
      continue;
    }
    const da = d[k] as number;
    const db = d[k + 1] as number;
    const f = (x - da) / (db - da);
    elapsed[g] = (t[k] as number) + f * ((t[k + 1] as number) - (t[k] as number)) - start;
    const ia = idx[k] as number;
    const ib = idx[k + 1] as number;
    for (const [src, out, step] of sources) {
      const a = src[ia] as number;
      const b = src[ib] as number;
      out[g] = step ? a : a + f * (b - a);
    }
  }
  return { elapsed, channels };
}

/** `lap.elapsed - reference.elapsed` at each grid point [s]. */
export function runningDelta(reference: ResampledLap, lap: ResampledLap): Float64Array {
  const n = Math.min(reference.elapsed.length, lap.elapsed.length);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (lap.elapsed[i] as number) - (reference.elapsed[i] as number);
  return out;
}

export interface CompareOptions {
  /** Index into the laps of the reference (default 0). */
  reference?: number;
  /** Grid spacing [m] (default GRID_STEP_M). */
  step?: number;
  /** Channels resampled stepwise (default STEPPED). */
  stepped?: ReadonlySet<string>;
}

/**
 * Compare `laps` against `laps[reference]` on a grid of `step` [m] over the shortest lap's
 * length. Throws RangeError naming the lap (by index) that has no usable distance.
 */
export function compareLaps(laps: readonly LapTrace[], { reference = 0, step = GRID_STEP_M, stepped = STEPPED }: CompareOptions = {}): Comparison {
  if (laps.length === 0) throw new RangeError("no laps to compare");
  if (!Number.isInteger(reference) || reference < 0 || reference >= laps.length) {
    throw new RangeError(`reference ${reference} is not one of the ${laps.length} laps`);
  }
  const lengths = laps.map(lapLength);
  const bad = lengths.findIndex((l) => !(l > 0));
  if (bad >= 0) throw new RangeError(`lap ${bad} has no usable lap_distance (fewer than 2 increasing values)`);
  const grid = distanceGrid(Math.min(...lengths), step);
  const resampled = laps.map((l) => resampleLap(l, grid, stepped));
  const ref = resampled[reference] as ResampledLap;
  return { grid, laps: resampled, reference, deltas: resampled.map((l) => runningDelta(ref, l)) };
}

/** Time gained (< 0) or lost (> 0) over one stretch of the lap. */
export interface Segment {
  /** Grid indices: the segment runs from grid[i0] to grid[i1] [m]. */
  i0: number;
  i1: number;
  /** Change of the delta over the segment [s]. */
  dt: number;
  /** dt per metre [s/m]: the derivative of the delta over distance. */
  rate: number;
}

/**
 * Split the grid into segments of about `lengthM` [m] and give each the change of `delta`
 * across it, i.e. where the compared lap gains (negative) or loses (positive) time.
 * Segments' dt sum to the delta at the last grid point.
 */
export function deltaSegments(grid: Float64Array, delta: Float64Array, lengthM = 20): Segment[] {
  const n = Math.min(grid.length, delta.length);
  if (n < 2) return [];
  const step = (grid[1] as number) - (grid[0] as number);
  const per = Math.max(1, Math.round(lengthM / step));
  const out: Segment[] = [];
  for (let i0 = 0; i0 < n - 1; i0 += per) {
    const i1 = Math.min(n - 1, i0 + per);
    const dt = (delta[i1] as number) - (delta[i0] as number);
    const span = (grid[i1] as number) - (grid[i0] as number);
    out.push({ i0, i1, dt, rate: span > 0 ? dt / span : 0 });
  }
  return out;
}

/**
 * A scale for colouring segment rates: the 95th percentile of |rate| (so one outlier does not
 * wash out the rest), at least `floor` [s/m].
 */
export function rateScale(segments: readonly Segment[], floor = 1e-5): number {
  const a = segments.map((s) => Math.abs(s.rate)).filter(Number.isFinite).sort((x, y) => x - y);
  if (a.length === 0) return floor;
  return Math.max(floor, a[Math.min(a.length - 1, Math.floor(0.95 * a.length))] as number);
}

/** Index of the grid point nearest to distance `x` [m] (grid evenly spaced from grid[0]). */
export function nearestIndex(grid: Float64Array, x: number): number {
  const n = grid.length;
  if (n < 2 || !Number.isFinite(x)) return 0;
  const step = (grid[1] as number) - (grid[0] as number);
  return Math.min(n - 1, Math.max(0, Math.round((x - (grid[0] as number)) / step)));
}

// --- the `?laps=` parameter -------------------------------------------------------------

/** One lap to compare: session, stream (car) and lap number. */
export interface LapRef {
  session: string;
  stream: string;
  lap: number;
}

/**
 * `/compare?laps=S~car~lap,...[&ref=i]` (each part percent-encoded, `~` too so that an id
 * holding it stays one part); `ref` is the index of the reference lap, left out for 0 (the
 * first lap) and when it is not one of the laps. No laps: plain `/compare`.
 */
export function compareHref(laps: readonly LapRef[], reference = 0): string {
  if (laps.length === 0) return "/compare";
  const enc = (s: string): string => encodeURIComponent(s).replace(/~/g, "%7E");
  const ref = Number.isInteger(reference) && reference > 0 && reference < laps.length ? `&ref=${reference}` : "";
  return `/compare?laps=${laps.map((l) => `${enc(l.session)}~${enc(l.stream)}~${enc(String(l.lap))}`).join(",")}${ref}`;
}

/** The reference index of a raw `?ref=` value among `count` laps: 0 when absent or not one of them. */
export function parseReference(value: string | null, count: number): number {
  const i = value === null || value.trim() === "" ? 0 : Number(value);
  return Number.isInteger(i) && i >= 0 && i < count ? i : 0;
}

/** Whether two references name the same lap of the same car in the same session. */
export function sameLap(a: LapRef, b: LapRef): boolean {
  return a.session === b.session && a.stream === b.stream && a.lap === b.lap;
}

/** `laps` with `lap` appended, or `laps` unchanged (a copy) when it is already there. */
export function addLapRef(laps: readonly LapRef[], lap: LapRef): LapRef[] {
  return laps.some((l) => sameLap(l, lap)) ? [...laps] : [...laps, lap];
}

/**
 * `laps` without `laps[index]`, and `reference` moved so that it still names the same lap
 * (0 when the reference itself is removed, or was not one of the laps).
 */
export function removeLapRef(laps: readonly LapRef[], index: number, reference: number): { laps: LapRef[]; reference: number } {
  const left = laps.filter((_, i) => i !== index);
  if (reference === index || !Number.isInteger(reference) || reference < 0 || reference >= laps.length) return { laps: left, reference: 0 };
  return { laps: left, reference: index >= 0 && index < reference ? reference - 1 : reference };
}

/**
 * The raw (still percent-encoded) value of `name` in a query string such as
 * `location.search`; null when absent. `URLSearchParams` would decode `%2C` and `%7E` inside
 * ids into the separators, so `?laps=` is split before it is decoded.
 */
export function rawQueryValue(search: string, name: string): string | null {
  for (const pair of search.replace(/^\?/, "").split("&")) {
    const eq = pair.indexOf("=");
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (key === name) return eq < 0 ? "" : pair.slice(eq + 1);
  }
  return null;
}

/**
 * The laps of a raw `?laps=` value (see `rawQueryValue`): entries split on `,`, parts on `~`,
 * then each part decoded. A value encoded as a whole (no raw `~` at all, as URLSearchParams
 * writes it back) is decoded once first. Duplicates are dropped; `problems` names each entry
 * that is not `session~stream~lap`.
 */
export function parseLapRefs(value: string | null): { laps: LapRef[]; problems: string[] } {
  const laps: LapRef[] = [];
  const problems: string[] = [];
  if (value === null || value.trim() === "") return { laps, problems };
  if (!value.includes("~") && /%7e/i.test(value)) {
    try {
      value = decodeURIComponent(value.replace(/\+/g, " "));
    } catch {
      // Left as it is: each entry below is reported.
    }
  }
  for (const item of value.split(",")) {
    if (item.trim() === "") continue;
    const parts = item.split("~");
    let decoded: string[];
    try {
      decoded = parts.map((p) => decodeURIComponent(p.replace(/\+/g, " ")));
    } catch {
      problems.push(`"${item}" is not percent-encoded correctly`);
      continue;
    }
    const [session, stream, lapText] = decoded;
    const lap = Number(lapText);
    if (decoded.length !== 3 || !session || !stream || lapText === undefined || lapText.trim() === "" || !Number.isInteger(lap) || lap < 0) {
      problems.push(`"${item}" is not session~car~lap`);
      continue;
    }
    if (!laps.some((l) => l.session === session && l.stream === stream && l.lap === lap)) laps.push({ session, stream, lap });
  }
  return { laps, problems };
}
