/**
 * The one requestAnimationFrame loop that draws everything. Components register a drawer on
 * mount (and unregister on unmount); each tick calls every drawer with the tick's time.
 * Drawers read ring buffers and write to canvases, uPlot or `textContent` — never React state.
 */

import { FRAME_SAMPLES, debug } from "../debug";

/** now: rAF timestamp [ms]. */
export type Drawer = (now: number) => void;

const drawers = new Set<Drawer>();
let handle = 0;

function tick(now: number): void {
  handle = requestAnimationFrame(tick);
  const started = performance.now();
  for (const draw of drawers) {
    try {
      draw(now);
    } catch (err) {
      // One broken drawer must not stop the others (or the loop).
      console.error("pitwire drawer failed", err);
    }
  }
  debug.drawCount++;
  // This frame's drawing plus the data handling since the previous frame.
  const slot = debug.frameCount++ % FRAME_SAMPLES;
  debug.frameTimes[slot] = performance.now() - started + workSince;
  debug.frameGaps[slot] = previous === 0 ? 0 : now - previous;
  previous = now;
  workSince = 0;
}

let workSince = 0;
/** The previous tick's rAF timestamp [ms]; 0 after the loop (re)starts. */
let previous = 0;

/** Count `ms` of main-thread work outside the loop (worker messages) into the next frame's time. */
export function addWork(ms: number): void {
  workSince += ms;
}

/** Call `draw` on every animation frame until the returned function is called. */
export function onFrame(draw: Drawer): () => void {
  drawers.add(draw);
  if (handle === 0) handle = requestAnimationFrame(tick);
  return () => {
    drawers.delete(draw);
    if (drawers.size === 0 && handle !== 0) {
      cancelAnimationFrame(handle);
      handle = 0;
      previous = 0;
    }
  };
}

/**
 * Keep a canvas's backing store at its CSS size × devicePixelRatio. Sizes come from a
 * ResizeObserver, so drawing never forces a layout; `fit()` applies a pending resize and
 * returns true when the canvas was resized (and cleared).
 */
export function sizedCanvas(canvas: HTMLCanvasElement): { fit(): boolean; dispose(): void } {
  let cssW = canvas.clientWidth;
  let cssH = canvas.clientHeight;
  const observer = new ResizeObserver((entries) => {
    for (const entry of entries) {
      cssW = entry.contentRect.width;
      cssH = entry.contentRect.height;
    }
  });
  observer.observe(canvas);
  return {
    fit() {
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(1, Math.round(cssW * dpr));
      const h = Math.max(1, Math.round(cssH * dpr));
      if (canvas.width === w && canvas.height === h) return false;
      canvas.width = w;
      canvas.height = h;
      return true;
    },
    dispose: () => observer.disconnect(),
  };
}
