/**
 * Counters for browser tests, on `window.__pitwire`, mutated in place (never replaced):
 *
 * - framesReceived: telemetry frames (rows) appended to the ring buffers
 * - messagesReceived: binary data messages received (each holds one or more frames)
 * - lastSpeed: newest `speed` of the selected car [km/h], null before any
 * - selectedStream: name of the selected car, null before the first advertise
 * - drawCount: ticks of the one requestAnimationFrame loop (each runs every drawer)
 * - longTasks: main-thread tasks over 50 ms seen by a PerformanceObserver (where supported)
 * - replayTicks / replayT / replayEpoch: replay STATE frames shown, the newest one's clock
 *   instant [s since epoch] and epoch; staleFrames: frames of an older epoch dropped (never
 *   drawn); clocks: `clock` messages received; controlsSent: replay controls sent
 * - frameTimes: main-thread time of the last FRAME_SAMPLES animation frames [ms] (a ring,
 *   frameCount written so far), measured around every drawer with performance.now()
 */

export interface PitwireDebug {
  framesReceived: number;
  messagesReceived: number;
  lastSpeed: number | null;
  selectedStream: string | null;
  drawCount: number;
  longTasks: number;
  replayTicks: number;
  replayT: number | null;
  replayEpoch: number;
  staleFrames: number;
  clocks: number;
  controlsSent: number;
  frameTimes: Float64Array;
  frameCount: number;
}

/** Animation frames kept in `frameTimes` (about 70 s at 60 fps). */
export const FRAME_SAMPLES = 4096;

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
  replayTicks: 0,
  replayT: null,
  replayEpoch: 0,
  staleFrames: 0,
  clocks: 0,
  controlsSent: 0,
  frameTimes: new Float64Array(FRAME_SAMPLES),
  frameCount: 0,
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
