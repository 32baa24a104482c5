/**
 * The lap comparison's track map: the reference lap's line coloured by where the compared lap
 * gains (green) or loses (red) time against it, and a marker at the charts' cursor. Canvas2D,
 * redrawn from the shared rAF loop when the cursor or the size changes.
 */

import { useEffect, useMemo, useRef, type RefObject } from "react";
import { deltaSegments, rateScale, type Comparison } from "../../analysis/compare";
import { COLORS } from "../../ui/draw";
import { onFrame, sizedCanvas } from "../../ui/loop";

function lossColour(rate: number, scale: number): string {
  const k = Math.min(1, Math.abs(rate) / scale);
  const alpha = (0.25 + 0.75 * k).toFixed(2);
  return rate < 0 ? `rgba(34, 197, 94, ${alpha})` : `rgba(239, 68, 68, ${alpha})`;
}

/** [xmin, ymin, xmax, ymax] of the finite points, null without any. */
function bounds(xs: Float64Array, ys: Float64Array): [number, number, number, number] | null {
  let xmin = Infinity;
  let xmax = -Infinity;
  let ymin = Infinity;
  let ymax = -Infinity;
  for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
    const x = xs[i] as number;
    const y = ys[i] as number;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    xmin = Math.min(xmin, x);
    xmax = Math.max(xmax, x);
    ymin = Math.min(ymin, y);
    ymax = Math.max(ymax, y);
  }
  return xmax >= xmin ? [xmin, ymin, xmax, ymax] : null;
}

/** The reference lap's line coloured by `delta` (the compared lap vs the reference), and the cursor. */
export function DeltaMap({ comparison, delta, colour, cursor }: { comparison: Comparison; delta: Float64Array | null; colour: string; cursor: RefObject<{ idx: number }> }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const ref = comparison.laps[comparison.reference];
  const xs = ref?.channels.get("x");
  const ys = ref?.channels.get("y");
  const box = useMemo(() => (xs && ys ? bounds(xs, ys) : null), [xs, ys]);
  // The canvas takes the track's shape (within 1:1 and 2.2:1) so the outline fills it.
  const aspect = box === null ? 1 : Math.min(2.2, Math.max(1, (box[2] - box[0]) / Math.max(1, box[3] - box[1])));
  useEffect(() => {
    const el = canvas.current;
    const ctx = el?.getContext("2d");
    if (!el || !ctx) return;
    const sized = sizedCanvas(el);
    const segments = delta === null ? [] : deltaSegments(comparison.grid, delta, 20);
    const scale = rateScale(segments);
    const n = xs && ys ? Math.min(xs.length, ys.length) : 0;
    let shown = -2;
    const stop = onFrame(() => {
      const resized = sized.fit();
      const idx = cursor.current.idx;
      if (!resized && idx === shown) return;
      shown = idx;
      const w = el.width;
      const h = el.height;
      const dpr = window.devicePixelRatio || 1;
      ctx.clearRect(0, 0, w, h);
      if (!xs || !ys || box === null) {
        ctx.fillStyle = COLORS.dim;
        ctx.font = `${14 * dpr}px system-ui, sans-serif`;
        ctx.textAlign = "center";
        ctx.fillText("no positions (x, y) in the reference lap", w / 2, h / 2);
        return;
      }
      const [xmin, ymin, xmax, ymax] = box;
      const pad = 18 * dpr;
      const s = Math.min((w - 2 * pad) / Math.max(1, xmax - xmin), (h - 2 * pad) / Math.max(1, ymax - ymin));
      const ox = (w - s * (xmax - xmin)) / 2;
      const oy = (h - s * (ymax - ymin)) / 2;
      const px = (i: number): number => ox + ((xs[i] as number) - xmin) * s;
      const py = (i: number): number => h - oy - ((ys[i] as number) - ymin) * s; // y up
      const line = (i0: number, i1: number): void => {
        ctx.beginPath();
        let pen = false;
        for (let i = i0; i <= i1; i++) {
          if (!Number.isFinite(xs[i] as number) || !Number.isFinite(ys[i] as number)) {
            pen = false;
            continue;
          }
          if (pen) ctx.lineTo(px(i), py(i));
          else ctx.moveTo(px(i), py(i));
          pen = true;
        }
        ctx.stroke();
      };
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.strokeStyle = COLORS.track;
      ctx.lineWidth = 9 * dpr;
      line(0, n - 1);
      ctx.lineWidth = 4.5 * dpr;
      if (segments.length === 0) {
        ctx.strokeStyle = colour;
        line(0, n - 1);
      }
      for (const seg of segments) {
        ctx.strokeStyle = lossColour(seg.rate, scale);
        line(seg.i0, Math.min(seg.i1, n - 1));
      }
      // Start line.
      ctx.fillStyle = COLORS.text;
      ctx.beginPath();
      ctx.arc(px(0), py(0), 3.5 * dpr, 0, 2 * Math.PI);
      ctx.fill();
      if (idx >= 0 && idx < n && Number.isFinite(xs[idx] as number)) {
        ctx.strokeStyle = COLORS.text;
        ctx.fillStyle = colour;
        ctx.lineWidth = 2 * dpr;
        ctx.beginPath();
        ctx.arc(px(idx), py(idx), 7 * dpr, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      }
    });
    return () => {
      stop();
      sized.dispose();
    };
  }, [comparison, delta, colour, cursor, xs, ys, box]);
  return <canvas ref={canvas} className="cmp-map" aria-label="delta map" role="img" style={{ aspectRatio: aspect.toFixed(3) }} />;
}
