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
 *   drawn); clocks: `clock` messages received; controlsSent: replay controls sent;
 *   historyFills: chart histories put in front of the focused car's ring after a jump
 * - frameTimes: main-thread time of the last FRAME_SAMPLES animation frames [ms] (a ring,
 *   frameCount written so far), measured around every drawer with performance.now(), plus the
 *   worker messages handled since the previous frame; frameGaps: the rAF timestamps' intervals
 *   of the same frames [ms] (dropped frames show as gaps of two or more refresh periods)
 * - tickLog: the newest TICK_LOG replay ticks shown, as [epoch, t (s since epoch)] pairs, so a
 *   test can check that nothing of an older position is drawn after a seek
 * - mapCars: cars drawn in the newest track-map frame; mapFrames: track-map redraws;
 *   towerUpdates: timing-tower refreshes (cells written, rows put in order)
 * - compareLaps / compareDeltaPoints: laps shown by the lap comparison and points in its
 *   delta trace (distance-grid points per lap); 0 while no comparison is shown
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
  lapSeeks: number;
  historyFills: number;
  frameTimes: Float64Array;
  frameGaps: Float64Array;
  frameCount: number;
  tickLog: [number, number][];
  mapCars: number;
  mapFrames: number;
  towerUpdates: number;
  compareLaps: number;
  compareDeltaPoints: number;
}

/** Animation frames kept in `frameTimes` (about 70 s at 60 fps). */
export const FRAME_SAMPLES = 4096;

/** Replay ticks kept in `tickLog`. */
export const TICK_LOG = 256;

/** Note a replay tick shown. */
export function logTick(epoch: number, t: number): void {
  if (debug.tickLog.length >= TICK_LOG) debug.tickLog.shift();
  debug.tickLog.push([epoch, t]);
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
  replayTicks: 0,
  replayT: null,
  replayEpoch: 0,
  staleFrames: 0,
  clocks: 0,
  controlsSent: 0,
  lapSeeks: 0,
  historyFills: 0,
  frameTimes: new Float64Array(FRAME_SAMPLES),
  frameGaps: new Float64Array(FRAME_SAMPLES),
  frameCount: 0,
  tickLog: [],
  mapCars: 0,
  mapFrames: 0,
  towerUpdates: 0,
  compareLaps: 0,
  compareDeltaPoints: 0,
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
