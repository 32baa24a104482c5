/**
 * Counters for browser tests, on `window.__pitwire`, mutated in place (never replaced):
 *
 * - framesReceived: telemetry frames (rows) appended to the ring buffers
 * - messagesReceived: binary data messages received (each holds one or more frames)
 * - lastSpeed: newest `speed` of the selected car [km/h], null before any
 * - selectedStream: name of the selected car, null before the first advertise
 * - drawCount: ticks of the one requestAnimationFrame loop (each runs every drawer)
 * - longTasks: main-thread tasks over 50 ms seen by a PerformanceObserver (where supported)
 */

export interface PitwireDebug {
  framesReceived: number;
  messagesReceived: number;
  lastSpeed: number | null;
  selectedStream: string | null;
  drawCount: number;
  longTasks: number;
}

declare global {
  interface Window {
    __pitwire: PitwireDebug;
  }
}

export const debug: PitwireDebug = {
  framesReceived: 0,
  messagesReceived: 0,
  lastSpeed: null,
  selectedStream: null,
  drawCount: 0,
  longTasks: 0,
};

/** Publish `debug` on window and start counting long tasks. */
export function installDebug(): void {
  window.__pitwire = debug;
  try {
    new PerformanceObserver((list) => {
      debug.longTasks += list.getEntries().length;
    }).observe({ type: "longtask", buffered: true });
  } catch {
    // longtask entries are Chromium-only; elsewhere the count stays 0.
  }
}
