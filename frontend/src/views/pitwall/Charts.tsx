/**
 * The focused car's channels over the last WINDOW_S seconds: one uPlot per chosen channel
 * (`chartChannels` in the UI state), stacked, on the same time window, with one shared cursor
 * (`cursor.sync`). Each chart is created once when its channel is added and fed from the
 * shared rAF loop with `setData` of zero-copy ring views, at most MAX_HZ times a second and
 * only when the ring changed. A toggle bar adds and removes channels.
 */

import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { RING_CAPACITY, telemetry } from "../../data/streams";
import { CHART_CHANNELS, useUi, type ChartChannel } from "../../state/ui";
import { COLORS, gearLabel, scaleFor } from "../../ui/draw";
import { onFrame } from "../../ui/loop";

export const WINDOW_S = 30;
const MAX_HZ = 30;
/** Least time between redraws [ms]: 1/MAX_HZ less some rAF jitter. */
const MIN_INTERVAL_MS = 1000 / MAX_HZ - 3;
const SYNC_KEY = "pitwall";
const FONT = "11px system-ui, sans-serif";
const DEG = Math.PI / 180;
/** NaN column for a channel the ring lacks (sliced, never written). */
const NO_DATA = new Float64Array(RING_CAPACITY).fill(Number.NaN);
const EMPTY: uPlot.AlignedData = [new Float64Array(0), new Float64Array(0)];

interface ChannelSpec {
  label: string;
  unit: string;
  colour: string;
  range: uPlot.Range.Function;
  /** Axis tick steps (in the channel's unit) and labels; uPlot's defaults when absent. */
  incrs?: number[];
  values?: (self: uPlot, splits: number[]) => string[];
  stepped?: boolean;
}

/**
 * Least space between two y labels [CSS px]: uPlot's 30 on a tall chart, down to 14 on a short
 * one, so a chart squeezed by the others still gets two or three labels.
 */
const ySpace: uPlot.Axis.Space = (_u, _axis, _min, _max, plotDim) => Math.min(30, Math.max(14, plotDim / 3));

const blank = (_u: uPlot, splits: number[]): string[] => splits.map(() => "");
const percent = (_u: uPlot, splits: number[]): string[] => splits.map((v) => `${Math.round(v * 100)}`);

const SPECS: Record<ChartChannel, ChannelSpec> = {
  speed: { label: "Speed", unit: "km/h", colour: COLORS.speed, range: (_u, _min, max) => [0, scaleFor(max, 300, 50)] },
  throttle: { label: "Throttle", unit: "%", colour: COLORS.throttle, range: () => [0, 1], incrs: [0.25, 0.5, 1], values: percent },
  brake: { label: "Brake", unit: "%", colour: COLORS.brake, range: () => [0, 1], incrs: [0.25, 0.5, 1], values: percent },
  rpm: {
    label: "RPM",
    unit: "1/min",
    colour: COLORS.rpm,
    range: (_u, _min, max) => [0, scaleFor(max, 8000, 1000)],
    values: (_u, splits) => splits.map((v) => (v === 0 ? "0" : `${v / 1000}k`)),
  },
  // Labelled like the gear readout (N, R); steps of 1, 2 or 4 gears, so even a short chart has labels.
  gear: {
    label: "Gear",
    unit: "",
    colour: COLORS.gear,
    range: (_u, min, max) => [Math.min(0, min), Math.max(6, max)],
    incrs: [1, 2, 4],
    values: (_u, splits) => splits.map(gearLabel),
    stepped: true,
  },
  steer: {
    label: "Steer",
    unit: "° L+",
    colour: COLORS.steer,
    range: (_u, min, max) => {
      const m = Math.max(30 * DEG, Math.abs(min), Math.abs(max)) * 1.1;
      return [-m, m];
    },
    incrs: [15, 30, 45, 90, 180, 360].map((d) => d * DEG),
    values: (_u, splits) => splits.map((v) => `${Math.round(v / DEG)}`),
  },
};

function options(spec: ChannelSpec, width: number, height: number, timeAxis: boolean): uPlot.Options {
  const grid = { stroke: COLORS.track, width: 1 };
  return {
    width,
    height,
    legend: { show: false },
    cursor: { sync: { key: SYNC_KEY }, drag: { x: false, y: false }, points: { size: 6 } },
    scales: {
      x: {
        time: true,
        // A full window ending at the newest sample, so the chart scrolls.
        range: (_u, _min, max) => [(max ?? 0) - WINDOW_S, max ?? 0],
      },
      y: { range: spec.range },
    },
    series: [
      {},
      {
        label: spec.label,
        stroke: spec.colour,
        width: 1.5,
        points: { show: false },
        ...(spec.stepped ? { paths: uPlot.paths.stepped?.({ align: 1 }) } : {}),
      },
    ],
    axes: [
      // Time labels on the bottom chart only; every chart keeps the time grid.
      timeAxis ? { stroke: COLORS.dim, font: FONT, size: 28, grid, ticks: grid } : { size: 2, grid, ticks: { show: false }, values: blank },
      { stroke: COLORS.dim, font: FONT, size: 44, grid, ticks: grid, space: ySpace, incrs: spec.incrs, values: spec.values },
    ],
  };
}

/** A chart the drawer feeds, and what it shows now. */
interface Fed {
  plot: uPlot;
  channel: ChartChannel;
  stream: string | null;
  version: number;
}

function ChannelChart({ channel, timeAxis, feeds }: { channel: ChartChannel; timeAxis: boolean; feeds: Set<Fed> }) {
  const host = useRef<HTMLDivElement>(null);
  const spec = SPECS[channel];

  useEffect(() => {
    const el = host.current;
    if (el === null) return;
    const plot = new uPlot(options(spec, Math.max(100, el.clientWidth), Math.max(40, el.clientHeight), timeAxis), EMPTY, el);
    const fed: Fed = { plot, channel, stream: null, version: -1 };
    feeds.add(fed);
    const observer = new ResizeObserver((entries) => {
      const box = entries[0]?.contentRect;
      if (box && box.width > 0 && box.height > 0) plot.setSize({ width: box.width, height: box.height });
    });
    observer.observe(el);
    return () => {
      feeds.delete(fed);
      observer.disconnect();
      plot.destroy();
    };
  }, [channel, spec, timeAxis, feeds]);

  return (
    <div className="chart-row" data-channel={channel}>
      <span className="chart-label" style={{ color: spec.colour }}>
        {spec.label}
        {spec.unit ? <span className="chart-unit"> {spec.unit}</span> : null}
      </span>
      <div className="chart-plot" ref={host} />
    </div>
  );
}

/** Give `fed` the newest WINDOW_S seconds of the focused car, if anything changed. */
function feed(fed: Fed, stream: string | null): void {
  const ring = stream === null ? undefined : telemetry.ring(stream);
  const version = ring?.version ?? -1;
  if (stream === fed.stream && version === fed.version) return;
  fed.stream = stream;
  fed.version = version;
  if (ring === undefined || ring.length === 0) {
    fed.plot.setData(EMPTY);
    return;
  }
  const n = ring.countWithin(WINDOW_S);
  fed.plot.setData([ring.times(n), ring.values(fed.channel, n) ?? NO_DATA.subarray(0, n)]);
}

function ChartToggles({ shown }: { shown: readonly ChartChannel[] }) {
  return (
    <div className="chart-toggles" role="group" aria-label="chart channels">
      {CHART_CHANNELS.map((c) => (
        <button
          type="button"
          key={c}
          className="chart-toggle"
          data-testid={`chart-toggle-${c}`}
          aria-pressed={shown.includes(c)}
          style={{ borderColor: shown.includes(c) ? SPECS[c].colour : undefined }}
          onClick={() => useUi.getState().toggleChartChannel(c)}
        >
          {SPECS[c].label}
        </button>
      ))}
      <span className="chart-window">last {WINDOW_S} s</span>
    </div>
  );
}

export function Charts() {
  const channels = useUi((s) => s.chartChannels);
  const feeds = useRef(new Set<Fed>()).current;

  useEffect(() => {
    let lastDraw = -Infinity;
    return onFrame((now) => {
      if (now - lastDraw < MIN_INTERVAL_MS) return;
      lastDraw = now;
      const stream = useUi.getState().selectedStream;
      for (const fed of feeds) feed(fed, stream);
    });
  }, [feeds]);

  return (
    <section className="charts" data-testid="charts" aria-label={`Focused car over the last ${WINDOW_S} seconds`}>
      <ChartToggles shown={channels} />
      <div className="chart-stack">
        {channels.length === 0 ? <p className="chart-empty">No channel chosen — pick one above.</p> : null}
        {channels.map((c, i) => (
          <ChannelChart key={c} channel={c} timeAxis={i === channels.length - 1} feeds={feeds} />
        ))}
      </div>
    </section>
  );
}
