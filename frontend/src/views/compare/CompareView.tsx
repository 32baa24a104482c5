/**
 * Lap comparison (`/compare?laps=S~car~lap,...&ref=i`): an "Add lap" row (AddLap.tsx) that
 * appends a lap of any stored session to `?laps=`, ✕ on each legend entry to drop it; then
 * fetch each session's detail once and each lap's frames, resample the laps onto one distance grid (analysis/compare.ts), and show
 * a lap legend (pick the reference), the running delta to the reference, speed, throttle,
 * brake, gear and steer against distance (one uPlot each, cursor and zoom synced), and the
 * reference lap's line on a track map coloured by where another lap gains or loses time.
 *
 * Everything is computed once per load (and the deltas once per reference change); hovering a
 * chart only writes the cursor's grid index to a ref, which the map's drawer reads on the
 * next animation frame.
 */

import { useEffect, useMemo, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import {
  addLapRef,
  compareHref,
  compareLaps,
  parseLapRefs,
  parseReference,
  rawQueryValue,
  removeLapRef,
  runningDelta,
  sameLap,
  type Comparison,
  type LapRef,
} from "../../analysis/compare";
import { formatLapTime } from "../../api/detail";
import { fetchLaps, type FetchedLap } from "../../api/frames";
import { debug } from "../../debug";
import { linkClick, navigate, useLocation } from "../../router";
import { COLORS } from "../../ui/draw";
import { AddLap } from "./AddLap";
import { DeltaMap } from "./DeltaMap";
import "../sessions/sessions.css";
import "./compare.css";

const CHANNELS = ["lap_distance", "speed", "throttle", "brake", "gear", "steer", "x", "y"];
const PLOTTED: { name: string; label: string; height: number; range?: [number, number] }[] = [
  { name: "speed", label: "Speed", height: 170 },
  { name: "throttle", label: "Throttle", height: 110, range: [0, 1] },
  { name: "brake", label: "Brake", height: 110, range: [0, 1] },
  { name: "gear", label: "Gear", height: 100 },
  { name: "steer", label: "Steer", height: 120 },
];
const SYNC_KEY = "pitwire-compare";
/** Lap colours when two picked laps share a car (and so its colour). */
const PALETTE = ["#38bdf8", "#f59e0b", "#c084fc", "#f472b6", "#34d399", "#facc15", "#fb7185", "#a3e635"];
const FONT = "12px system-ui, sans-serif";

interface LoadedLap extends FetchedLap {
  colour: string;
  /** Short name for legends: "Brandt L3" (+ session when several). */
  label: string;
}

type LoadState = { phase: "loading" } | { phase: "done"; laps: LoadedLap[]; problems: string[] };

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Fetch the laps, then give each a colour (its car's, unless two share a car) and a label. */
async function loadLaps(refs: readonly LapRef[], signal: AbortSignal): Promise<{ laps: LoadedLap[]; problems: string[] }> {
  const { laps: ok, problems } = await fetchLaps(refs, CHANNELS, signal);
  const cars = new Set(ok.map((l) => `${l.ref.session}\u0000${l.ref.stream}`));
  const sessions = new Set(ok.map((l) => l.ref.session));
  const laps = ok.map((l, i) => {
    const name = (l.car.driver || l.car.stream).split(/\s+/).pop() ?? l.car.stream;
    return {
      ...l,
      colour: cars.size === ok.length ? l.car.colour : (PALETTE[i % PALETTE.length] as string),
      label: `${name} L${l.ref.lap}${sessions.size > 1 ? ` · ${l.ref.session}` : ""}`,
    };
  });
  return { laps, problems };
}

function useLaps(refs: readonly LapRef[]): LoadState {
  const [state, setState] = useState<LoadState>({ phase: "loading" });
  const key = JSON.stringify(refs);
  useEffect(() => {
    const abort = new AbortController();
    setState({ phase: "loading" });
    const wanted = JSON.parse(key) as LapRef[];
    if (wanted.length === 0) return;
    loadLaps(wanted, abort.signal).then(
      (got) => {
        if (!abort.signal.aborted) setState({ phase: "done", ...got });
      },
      (err: unknown) => {
        if (!abort.signal.aborted) setState({ phase: "done", laps: [], problems: [message(err)] });
      },
    );
    return () => abort.abort();
  }, [key]);
  return state;
}

/** `+0.123` / `−0.456` [s]. */
function formatDelta(s: number): string {
  if (!Number.isFinite(s)) return "—";
  return `${s > 0 ? "+" : s < 0 ? "−" : "±"}${Math.abs(s).toFixed(3)}`;
}

/** uPlot draws null as a gap but NaN breaks its autoscaling: swap NaN for null when any. */
function gapped(a: Float64Array): Float64Array | (number | null)[] {
  if (a.every(Number.isFinite)) return a;
  return Array.from(a, (v) => (Number.isFinite(v) ? v : null));
}

/** The charts of one comparison: cursor sync by uPlot, x zoom sync here, cursor → `cursor.idx`. */
class ChartGroup {
  readonly plots = new Set<uPlot>();
  private syncing = false;
  constructor(readonly cursor: { idx: number }) {}

  zoom(from: uPlot): void {
    if (this.syncing) return;
    this.syncing = true;
    const { min, max } = from.scales.x ?? {};
    for (const p of this.plots) if (p !== from && min != null && max != null) p.setScale("x", { min, max });
    this.syncing = false;
  }
}

interface Series {
  label: string;
  colour: string;
  values: Float64Array;
}

function DistanceChart(props: {
  testid?: string;
  channel: string;
  title: string;
  grid: Float64Array;
  series: Series[];
  height: number;
  range?: [number, number];
  format: (v: number) => string;
  group: ChartGroup;
}) {
  const { grid, series, height, range, format, group } = props;
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = host.current;
    if (el === null) return;
    const fmt = (_u: uPlot, v: number | null): string => (v == null ? "—" : format(v));
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      cursor: { sync: { key: SYNC_KEY }, drag: { x: true, y: false, setScale: true }, points: { size: 6 } },
      legend: { show: true, live: true },
      scales: {
        x: { time: false },
        y: range === undefined ? {} : { range: (_u, _min, max) => [range[0], Math.max(range[1], max ?? range[1])] },
      },
      series: [
        { label: "Distance", value: (_u, v) => (v == null ? "—" : `${Math.round(v)} m`) },
        ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 1.5, points: { show: false }, value: fmt })),
      ],
      axes: [
        { stroke: COLORS.dim, font: FONT, grid: { stroke: COLORS.track, width: 1 }, ticks: { stroke: COLORS.track, width: 1 }, values: (_u, xs) => xs.map((x) => `${x} m`) },
        { stroke: COLORS.dim, font: FONT, size: 56, grid: { stroke: COLORS.track, width: 1 }, ticks: { stroke: COLORS.track, width: 1 } },
      ],
      hooks: {
        setCursor: [(u) => void (group.cursor.idx = u.cursor.idx ?? -1)],
        setScale: [(u, key) => key === "x" && group.zoom(u)],
      },
    };
    const plot = new uPlot(opts, [grid, ...series.map((s) => gapped(s.values))] as uPlot.AlignedData, el);
    group.plots.add(plot);
    const observer = new ResizeObserver((entries) => {
      const w = entries[0]?.contentRect.width ?? 0;
      if (w > 0 && Math.abs(w - plot.width) > 1) plot.setSize({ width: w, height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      group.plots.delete(plot);
      plot.destroy();
    };
  }, [grid, series, height, range, format, group]);

  return (
    <section className="cmp-chart" data-channel={props.channel} data-testid={props.testid} aria-label={props.title}>
      <h2>{props.title}</h2>
      <div ref={host} className="cmp-plot" />
    </section>
  );
}


function Legend(props: { laps: LoadedLap[]; comparison: Comparison; deltas: Float64Array[]; reference: number; onReference: (i: number) => void; onRemove: (i: number) => void }) {
  const { laps, comparison, deltas, reference, onReference, onRemove } = props;
  const last = comparison.grid.length - 1;
  const refTime = laps[reference]?.lap.lapTime ?? null;
  /** The official lap-time difference when both laps are timed, else the delta trace's end
   * (which stops at the shortest lap's length, short of the line). */
  const gap = (i: number): number => {
    const own = laps[i]?.lap.lapTime ?? null;
    return own !== null && refTime !== null ? own - refTime : (deltas[i]?.[last] ?? Number.NaN);
  };
  return (
    <ul className="cmp-legend" aria-label="compared laps">
      {laps.map((l, i) => (
        <li
          key={i}
          data-testid="compare-lap"
          data-session={l.ref.session}
          data-stream={l.ref.stream}
          data-lap={l.ref.lap}
          data-reference={i === reference ? "true" : "false"}
          className={i === reference ? "reference" : undefined}
        >
          <label>
            <input type="radio" name="cmp-reference" checked={i === reference} onChange={() => onReference(i)} aria-label={`Use ${l.label} as the reference`} />
            <span className="swatch" style={{ background: l.colour }} />
            <span className="cmp-who">
              <strong>{l.car.driver || l.car.stream}</strong>
              <span className="dim">
                {l.ref.session} · lap {l.ref.lap}
              </span>
            </span>
            <span className="num cmp-time">{formatLapTime(l.lap.lapTime)}</span>
            <span className={`num cmp-gap ${i === reference ? "" : gap(i) > 0 ? "loss" : "gain"}`} title="lap time difference to the reference">
              {i === reference ? "ref" : formatDelta(gap(i))}
            </span>
          </label>
          <button type="button" className="cmp-remove" data-testid="remove-lap" aria-label={`Remove ${l.label}`} title={`Remove ${l.label}`} onClick={() => onRemove(i)}>
            ✕
          </button>
        </li>
      ))}
    </ul>
  );
}

function ComparisonView({ laps, problems, onRemove }: { laps: LoadedLap[]; problems: string[]; onRemove: (i: number, reference: number) => void }) {
  const comparison = useMemo(() => compareLaps(laps.map((l) => l.trace)), [laps]);
  const [reference, setReference] = useState(() => parseReference(rawQueryValue(location.search, "ref"), laps.length));
  const [mapLap, setMapLap] = useState(-1);
  const cursor = useRef({ idx: -1 });
  const group = useMemo(() => new ChartGroup(cursor.current), []);

  const deltas = useMemo(() => {
    const ref = comparison.laps[reference];
    return comparison.laps.map((l) => (ref === undefined ? new Float64Array(0) : runningDelta(ref, l)));
  }, [comparison, reference]);
  const refComparison = useMemo(() => ({ ...comparison, reference, deltas }), [comparison, reference, deltas]);
  const others = laps.map((_, i) => i).filter((i) => i !== reference);
  const shownOnMap = others.includes(mapLap) ? mapLap : (others[0] ?? -1);

  useEffect(() => {
    debug.compareLaps = laps.length;
    debug.compareDeltaPoints = comparison.grid.length;
    return () => {
      debug.compareLaps = 0;
      debug.compareDeltaPoints = 0;
    };
  }, [laps, comparison]);

  const deltaSeries = useMemo(() => laps.map((l, i) => ({ label: l.label, colour: l.colour, values: deltas[i] as Float64Array })), [laps, deltas]);
  const channelSeries = useMemo(
    () =>
      PLOTTED.map((c) =>
        laps.map((l, i) => ({ label: l.label, colour: l.colour, values: comparison.laps[i]?.channels.get(c.name) ?? new Float64Array(comparison.grid.length).fill(Number.NaN) })),
      ),
    [laps, comparison],
  );
  const units = laps[0]?.units ?? new Map<string, string>();
  const pick = (i: number): void => {
    setReference(i);
    keepReference(i);
  };
  const refLap = laps[reference];
  const mapped = laps[shownOnMap];

  return (
    <>
      {problems.length > 0 ? <Problems problems={problems} /> : null}
      <Legend laps={laps} comparison={comparison} deltas={deltas} reference={reference} onReference={pick} onRemove={(i) => onRemove(i, reference)} />
      {laps.length < 2 ? (
        <p className="dim cmp-hint" data-testid="compare-one">
          Add another lap above (from this session or any other) to compare it with.
        </p>
      ) : null}
      <div className="cmp-layout">
        <div className="cmp-charts">
          <DistanceChart testid="delta-chart" channel="delta" title={`Delta to ${refLap?.label ?? "reference"} [s] (+ = behind)`} grid={comparison.grid} series={deltaSeries} height={170} format={formatDelta} group={group} />
          {PLOTTED.map((c, k) => (
            <DistanceChart
              key={c.name}
              channel={c.name}
              title={units.get(c.name) ? `${c.label} [${units.get(c.name)}]` : c.label}
              grid={comparison.grid}
              series={channelSeries[k] as Series[]}
              height={c.height}
              range={c.range}
              format={c.name === "gear" ? formatGear : formatValue}
              group={group}
            />
          ))}
        </div>
        <aside className="cmp-side">
          <section className="cmp-map-panel" aria-label="where time is gained and lost">
            <div className="cmp-map-head">
              <h2>Track</h2>
              {others.length > 1 ? (
                <select value={shownOnMap} onChange={(ev) => setMapLap(Number(ev.target.value))} aria-label="lap compared on the map">
                  {others.map((i) => (
                    <option key={i} value={i}>
                      {laps[i]?.label}
                    </option>
                  ))}
                </select>
              ) : null}
            </div>
            <DeltaMap comparison={refComparison} delta={shownOnMap >= 0 ? (deltas[shownOnMap] ?? null) : null} colour={mapped?.colour ?? refLap?.colour ?? COLORS.text} cursor={cursor} />
            <p className="cmp-map-legend">
              {mapped ? (
                <>
                  <span className="gain">■ gains</span> <span className="loss">■ loses</span> — {mapped.label} vs {refLap?.label} (line of the reference; ● start)
                </>
              ) : (
                "Pick a second lap to see where time is gained and lost."
              )}
            </p>
          </section>
        </aside>
      </div>
    </>
  );
}

/**
 * Keep the reference in the URL (`&ref=i`, none for 0) without re-encoding `?laps=`
 * (router's `setQueryParam` goes through URLSearchParams, which would turn its `~` and `,`
 * separators into %7E and %2C).
 */
function keepReference(i: number): void {
  const parts = location.search
    .replace(/^\?/, "")
    .split("&")
    .filter((p) => p !== "" && !p.startsWith("ref="));
  if (i > 0) parts.push(`ref=${i}`);
  const href = `${location.pathname}${parts.length > 0 ? `?${parts.join("&")}` : ""}`;
  if (href !== location.pathname + location.search) history.replaceState(null, "", href);
}

const formatGear = (v: number): string => String(Math.round(v));
const formatValue = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3));

function Problems({ problems }: { problems: string[] }) {
  return (
    <div className="error-box" role="alert" data-testid="compare-error">
      {problems.map((p) => (
        <p key={p}>{p}</p>
      ))}
    </div>
  );
}

function HowTo({ problems }: { problems: string[] }) {
  return (
    <div className="cmp-howto" data-testid="compare-empty">
      {problems.length > 0 ? <Problems problems={problems} /> : null}
      <p>
        No laps to compare. Pick a session, car and lap under <strong>Add lap</strong> above, from as many sessions as you like, or open a
        session in the{" "}
        <a href="/sessions" onClick={linkClick}>
          sessions list
        </a>
        , tick two or more laps in its laps table and press <strong>Compare</strong>.
      </p>
      <p className="dim">
        Or write the address yourself: <code>/compare?laps=SESSION~CAR~LAP,SESSION~CAR~LAP</code> (the first lap is the reference).
      </p>
    </div>
  );
}

export function CompareView() {
  useLocation(); // re-render when the query changes
  const raw = rawQueryValue(location.search, "laps");
  const parsed = useMemo(() => parseLapRefs(raw), [raw]);
  const state = useLaps(parsed.laps);
  const n = parsed.laps.length;

  /** Append `lap` to `?laps=` (kept once), the reference staying where it is. */
  const add = (lap: LapRef): void => {
    navigate(compareHref(addLapRef(parsed.laps, lap), parseReference(rawQueryValue(location.search, "ref"), n)));
  };
  /** Drop the `i`th loaded lap from `?laps=`; the reference follows its lap (0 if it was that one). */
  const remove = (i: number, reference: number): void => {
    if (state.phase !== "done") return;
    const target = state.laps[i]?.ref;
    if (target === undefined) return;
    const kept = removeLapRef(
      state.laps.map((l) => l.ref),
      i,
      reference,
    );
    navigate(compareHref(parsed.laps.filter((l) => !sameLap(l, target)), kept.reference));
  };

  return (
    <main className="page compare-page" data-testid="compare-view">
      <h1>Lap comparison</h1>
      <AddLap compared={parsed.laps} onAdd={add} />
      {n === 0 ? (
        <HowTo problems={parsed.problems} />
      ) : state.phase === "loading" ? (
        <p className="dim" data-testid="compare-loading">
          Loading {n} {n === 1 ? "lap" : "laps"}…
        </p>
      ) : state.laps.length === 0 ? (
        <>
          <Problems problems={[...parsed.problems, ...state.problems]} />
          <p>
            <a href="/sessions" onClick={linkClick}>
              ← Pick laps in a session
            </a>{" "}
            or{" "}
            <a href="/compare" onClick={linkClick}>
              start again
            </a>
          </p>
        </>
      ) : (
        <ComparisonView laps={state.laps} problems={[...parsed.problems, ...state.problems]} onRemove={remove} />
      )}
    </main>
  );
}
