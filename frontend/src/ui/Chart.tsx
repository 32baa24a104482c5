/**
 * Scrolling uPlot chart of the selected car's speed [km/h] (left axis) and rpm [1/min] (right
 * axis) over the last WINDOW_S seconds. The chart is created once on mount through a ref and
 * fed with `setData` views of the ring buffer from the rAF loop, at most MAX_HZ times a second
 * and only when new data arrived.
 */

import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { telemetry } from "../data/streams";
import { useUi } from "../state/ui";
import { COLORS, scaleFor } from "./draw";
import { onFrame } from "./loop";

export const WINDOW_S = 30;
const MAX_HZ = 30;
const EMPTY: uPlot.AlignedData = [new Float64Array(0), new Float64Array(0), new Float64Array(0)];

function axis(scale: string, color: string, side: 1 | 3, grid: boolean): uPlot.Axis {
  return {
    scale,
    side,
    stroke: color,
    size: 56,
    font: "12px system-ui, sans-serif",
    grid: { show: grid, stroke: COLORS.track, width: 1 },
    ticks: { stroke: COLORS.track, width: 1 },
  };
}

function options(width: number, height: number): uPlot.Options {
  return {
    width,
    height,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: {
        time: true,
        // Always show a full window ending at the newest sample, so the chart scrolls.
        range: (_u, _min, max) => {
          const end = max ?? Date.now() / 1000;
          return [end - WINDOW_S, end];
        },
      },
      speed: { range: (_u, _min, max) => [0, scaleFor(max ?? 0, 300, 50)] },
      rpm: { range: (_u, _min, max) => [0, scaleFor(max ?? 0, 8000, 1000)] },
    },
    series: [
      {},
      { label: "Speed", scale: "speed", stroke: COLORS.speed, width: 2, points: { show: false } },
      { label: "RPM", scale: "rpm", stroke: COLORS.rpm, width: 1.5, points: { show: false } },
    ],
    axes: [
      { stroke: COLORS.dim, font: "12px system-ui, sans-serif", grid: { stroke: COLORS.track, width: 1 }, ticks: { stroke: COLORS.track, width: 1 } },
      axis("speed", COLORS.speed, 3, true),
      axis("rpm", COLORS.rpm, 1, false),
    ],
  };
}

export function Chart() {
  const host = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const el = host.current;
    if (el === null) return;
    const plot = new uPlot(options(Math.max(100, el.clientWidth), Math.max(100, el.clientHeight)), EMPTY, el);
    const observer = new ResizeObserver((entries) => {
      const box = entries[0]?.contentRect;
      if (box && box.width > 0 && box.height > 0) plot.setSize({ width: box.width, height: box.height });
    });
    observer.observe(el);

    let lastDraw = -Infinity;
    let shownStream: string | null = null;
    let shownVersion = -1;
    const stop = onFrame((now) => {
      if (now - lastDraw < 1000 / MAX_HZ) return;
      const stream = useUi.getState().selectedStream;
      const ring = stream === null ? undefined : telemetry.ring(stream);
      const version = ring?.version ?? -1;
      if (stream === shownStream && version === shownVersion) return;
      lastDraw = now;
      shownStream = stream;
      shownVersion = version;
      if (ring === undefined || ring.length === 0) {
        plot.setData(EMPTY);
        return;
      }
      const n = ring.countWithin(WINDOW_S);
      const nan = (): Float64Array => new Float64Array(n).fill(Number.NaN);
      plot.setData([ring.times(n), ring.values("speed", n) ?? nan(), ring.values("rpm", n) ?? nan()]);
    });

    return () => {
      stop();
      observer.disconnect();
      plot.destroy();
    };
  }, []);

  return (
    <section className="chart-panel" aria-label="Speed and rpm over the last 30 seconds">
      <div className="chart-legend">
        <span style={{ color: COLORS.speed }}>■ Speed [km/h]</span>
        <span style={{ color: COLORS.rpm }}>■ RPM [1/min]</span>
        <span className="chart-window">last {WINDOW_S} s</span>
      </div>
      <div className="chart" ref={host} />
    </section>
  );
}
