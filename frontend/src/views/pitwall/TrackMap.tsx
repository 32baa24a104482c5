/**
 * The track map (Canvas2D): the session's outline, drawn once into an offscreen canvas per
 * size/outline change, and every car as a dot in its colour at its newest position from the
 * ring buffers; the focused car bigger, ringed and labelled. Without an outline (not computed
 * yet) each car's recent trail is drawn instead. A drawer on the shared rAF loop redraws at
 * most MAX_HZ times a second, and only when a ring, the focus or the size changed.
 *
 * The map fits the outline's bounds and every car position seen, and only grows for the
 * session (the component is keyed by session), so a partial outline early in a live session
 * never leaves cars at or past the edge and the map does not jitter as cars move.
 */

import { useEffect, useRef } from "react";
import type { TrackGeometry } from "../../api/detail";
import type { TimeRing } from "../../data/ring";
import { telemetry } from "../../data/streams";
import { debug } from "../../debug";
import { useUi } from "../../state/ui";
import { COLORS } from "../../ui/draw";
import { onFrame, sizedCanvas } from "../../ui/loop";
import type { PitCar } from "./cars";

const MAX_HZ = 30;
/** Least time between redraws [ms]: 1/MAX_HZ less some rAF jitter. */
const MIN_INTERVAL_MS = 1000 / MAX_HZ - 3;
/** Trail length when there is no outline [s]. */
const TRAIL_S = 20;
/** Most points drawn per trail. */
const TRAIL_POINTS = 200;
/** Margin around the track, as a share of the smaller canvas side. */
const MARGIN = 0.06;
/** Least margin [CSS px]: the focused car's ring (11 px) and its stroke stay inside. */
const MIN_MARGIN_PX = 14;
/** The focused car's label: gap to its dot and least distance to the canvas edge [CSS px]. */
const LABEL_GAP_PX = 15;
const LABEL_PAD_PX = 4;

/** World bounds [m] (grow-only while a map is shown) and the world → canvas transform. */
class View {
  xmin = Infinity;
  ymin = Infinity;
  xmax = -Infinity;
  ymax = -Infinity;
  scale = 1;
  ox = 0;
  oy = 0;

  /** Widen the bounds to (x, y); true when they grew. */
  include(x: number, y: number): boolean {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return false;
    if (x >= this.xmin && x <= this.xmax && y >= this.ymin && y <= this.ymax) return false;
    this.xmin = Math.min(this.xmin, x);
    this.xmax = Math.max(this.xmax, x);
    this.ymin = Math.min(this.ymin, y);
    this.ymax = Math.max(this.ymax, y);
    return true;
  }

  /** Fit the bounds into w × h device pixels, aspect kept, y up. */
  fit(w: number, h: number, dpr: number): void {
    const m = Math.min(Math.max(Math.min(w, h) * MARGIN, MIN_MARGIN_PX * dpr), Math.min(w, h) / 4);
    const spanX = Math.max(this.xmax - this.xmin, 1);
    const spanY = Math.max(this.ymax - this.ymin, 1);
    this.scale = Math.min((w - 2 * m) / spanX, (h - 2 * m) / spanY);
    this.ox = (w - spanX * this.scale) / 2;
    this.oy = (h - spanY * this.scale) / 2;
  }

  px(x: number): number {
    return this.ox + (x - this.xmin) * this.scale;
  }

  py(y: number): number {
    return this.oy + (this.ymax - y) * this.scale;
  }
}

/** Draw the outline into `out` (sized like the map). */
function renderOutline(out: HTMLCanvasElement, w: number, h: number, g: TrackGeometry, view: View, dpr: number): void {
  out.width = w;
  out.height = h;
  const ctx = out.getContext("2d");
  if (ctx === null) return;
  const n = Math.min(g.x.length, g.y.length);
  const first = [g.x[0] ?? 0, g.y[0] ?? 0];
  const last = [g.x[n - 1] ?? 0, g.y[n - 1] ?? 0];
  const diagonal = Math.hypot(view.xmax - view.xmin, view.ymax - view.ymin);
  const closed = Math.hypot((first[0] ?? 0) - (last[0] ?? 0), (first[1] ?? 0) - (last[1] ?? 0)) < 0.05 * diagonal;
  ctx.beginPath();
  for (let i = 0; i < n; i++) {
    const x = view.px(g.x[i] ?? 0);
    const y = view.py(g.y[i] ?? 0);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  }
  if (closed) ctx.closePath();
  ctx.lineJoin = "round";
  ctx.lineCap = "round";
  ctx.strokeStyle = COLORS.track;
  ctx.lineWidth = 9 * dpr;
  ctx.stroke();
  ctx.strokeStyle = "#3a4a5e";
  ctx.lineWidth = 1.5 * dpr;
  ctx.stroke();
  const sx = view.px(first[0] ?? 0);
  const sy = view.py(first[1] ?? 0);
  ctx.fillStyle = COLORS.text;
  ctx.fillRect(sx - 2 * dpr, sy - 6 * dpr, 4 * dpr, 12 * dpr); // start/finish
}

/** Draw the recent positions of one car as a faded line. */
function drawTrail(ctx: CanvasRenderingContext2D, ring: TimeRing, colour: string, view: View, dpr: number): void {
  const n = ring.countWithin(TRAIL_S);
  const xs = ring.values("x", n);
  const ys = ring.values("y", n);
  if (xs === undefined || ys === undefined || n < 2) return;
  const stride = Math.max(1, Math.ceil(n / TRAIL_POINTS));
  ctx.beginPath();
  let started = false;
  for (let i = 0; i < n; i += stride) {
    const x = xs[i] ?? Number.NaN;
    const y = ys[i] ?? Number.NaN;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    if (started) ctx.lineTo(view.px(x), view.py(y));
    else ctx.moveTo(view.px(x), view.py(y));
    started = true;
  }
  ctx.strokeStyle = colour;
  ctx.globalAlpha = 0.45;
  ctx.lineWidth = 2 * dpr;
  ctx.stroke();
  ctx.globalAlpha = 1;
}

/** Widen `view` to every trail point; true when it grew. */
function includeTrails(view: View, cars: readonly PitCar[]): boolean {
  let grew = false;
  for (const car of cars) {
    const ring = telemetry.ring(car.name);
    if (ring === undefined) continue;
    const n = ring.countWithin(TRAIL_S);
    const xs = ring.values("x", n);
    const ys = ring.values("y", n);
    if (xs === undefined || ys === undefined) continue;
    const stride = Math.max(1, Math.ceil(n / TRAIL_POINTS));
    for (let i = 0; i < n; i += stride) if (view.include(xs[i] ?? Number.NaN, ys[i] ?? Number.NaN)) grew = true;
  }
  return grew;
}

/**
 * Grow the map's bounds (never shrink them, so the map holds still) to the outline's and every
 * car's position (and trail, without an outline); true when they grew.
 */
function widen(view: View, cars: readonly PitCar[], geometry: TrackGeometry | null): boolean {
  let grew = false;
  if (geometry !== null) {
    const [x0, y0, x1, y1] = geometry.bounds;
    if (view.include(x0, y0)) grew = true;
    if (view.include(x1, y1)) grew = true;
  }
  for (const car of cars) {
    const ring = telemetry.ring(car.name);
    if (ring !== undefined && view.include(ring.latest("x"), ring.latest("y"))) grew = true;
  }
  if (geometry === null && includeTrails(view, cars)) grew = true;
  return grew;
}

function drawDot(ctx: CanvasRenderingContext2D, x: number, y: number, r: number, colour: string): void {
  ctx.fillStyle = colour;
  ctx.beginPath();
  ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.fill();
}

/**
 * Where the focused car's label goes: right of the dot, or left of it when it would cross the
 * right edge; clamped inside the w × h canvas [device px] either way.
 */
function labelPlace(x: number, y: number, textW: number, textH: number, w: number, h: number, dpr: number): { x: number; y: number; align: "left" | "right" } {
  const gap = LABEL_GAP_PX * dpr;
  const pad = LABEL_PAD_PX * dpr;
  const ly = Math.min(Math.max(y, pad + textH / 2), h - pad - textH / 2);
  if (x + gap + textW <= w - pad) return { x: x + gap, y: ly, align: "left" };
  if (x - gap - textW >= pad) return { x: x - gap, y: ly, align: "right" };
  // Too narrow for either side: as far right as fits, overlapping the dot if it must.
  return { x: Math.max(pad, Math.min(x + gap, w - pad - textW)), y: ly, align: "left" };
}

/** The focused car: a bigger dot, a white ring and "P3 BRA" beside it, inside the canvas. */
function drawFocused(ctx: CanvasRenderingContext2D, x: number, y: number, car: PitCar, position: number, dpr: number): void {
  drawDot(ctx, x, y, 7 * dpr, car.colour);
  ctx.strokeStyle = COLORS.needle;
  ctx.lineWidth = 2 * dpr;
  ctx.beginPath();
  ctx.arc(x, y, 11 * dpr, 0, 2 * Math.PI);
  ctx.stroke();
  const label = position > 0 ? `P${Math.round(position)} ${car.abbrev}` : car.abbrev;
  ctx.font = `700 ${Math.round(13 * dpr)}px ui-monospace, Menlo, Consolas, monospace`;
  ctx.textBaseline = "middle";
  const at = labelPlace(x, y, ctx.measureText(label).width, 13 * dpr, ctx.canvas.width, ctx.canvas.height, dpr);
  ctx.textAlign = at.align;
  ctx.lineWidth = 3 * dpr;
  ctx.strokeStyle = "#0b0e13";
  ctx.strokeText(label, at.x, at.y);
  ctx.fillStyle = COLORS.text;
  ctx.fillText(label, at.x, at.y);
}

/** Every car with a position (and its trail when `trails`), the focused one on top; returns how many. */
function drawCars(ctx: CanvasRenderingContext2D, cars: readonly PitCar[], focus: string | null, view: View, dpr: number, trails: boolean): number {
  let drawn = 0;
  let focused: PitCar | undefined;
  for (const car of cars) {
    const ring = telemetry.ring(car.name);
    if (ring === undefined) continue;
    if (trails) drawTrail(ctx, ring, car.colour, view, dpr);
    const x = ring.latest("x");
    const y = ring.latest("y");
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    drawn++;
    if (car.name === focus) focused = car;
    else drawDot(ctx, view.px(x), view.py(y), 4.5 * dpr, car.colour);
  }
  const ring = focused === undefined ? undefined : telemetry.ring(focused.name);
  if (focused !== undefined && ring !== undefined) {
    drawFocused(ctx, view.px(ring.latest("x")), view.py(ring.latest("y")), focused, ring.latest("position"), dpr);
  }
  return drawn;
}

interface MapProps {
  cars: readonly PitCar[];
  geometry: TrackGeometry | null;
}

export function TrackMap({ cars, geometry }: MapProps) {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const props = useRef({ cars, geometry, changed: true });

  useEffect(() => {
    props.current = { cars, geometry, changed: true };
  }, [cars, geometry]);

  useEffect(() => {
    const canvas = canvasRef.current;
    const ctx = canvas?.getContext("2d") ?? null;
    if (canvas === null || ctx === null) return;
    const sized = sizedCanvas(canvas);
    const outline = document.createElement("canvas");
    const view = new View();
    let outlined: TrackGeometry | null = null;
    let lastDraw = -Infinity;
    let shownVersions = -1;
    let shownFocus: string | null = null;

    const stop = onFrame((now) => {
      if (now - lastDraw < MIN_INTERVAL_MS) return;
      const p = props.current;
      const resized = sized.fit();
      const focus = useUi.getState().selectedStream;
      let versions = 0;
      for (const car of p.cars) versions += telemetry.ring(car.name)?.version ?? 0;
      if (!resized && !p.changed && versions === shownVersions && focus === shownFocus) return;
      lastDraw = now;
      shownVersions = versions;
      shownFocus = focus;
      const dpr = window.devicePixelRatio || 1;
      const w = canvas.width;
      const h = canvas.height;

      const grew = widen(view, p.cars, p.geometry);
      p.changed = false;
      if (grew || resized) view.fit(w, h, dpr);
      if (p.geometry !== null && (grew || resized || outlined !== p.geometry)) {
        renderOutline(outline, w, h, p.geometry, view, dpr);
        outlined = p.geometry;
      }

      ctx.clearRect(0, 0, w, h);
      if (p.geometry !== null) ctx.drawImage(outline, 0, 0);
      debug.mapCars = drawCars(ctx, p.cars, focus, view, dpr, p.geometry === null);
      debug.mapFrames++;
    });
    return () => {
      stop();
      sized.dispose();
    };
  }, []);

  return <canvas className="track-map" ref={canvasRef} aria-label="track map" data-testid="track-map" />;
}
