/**
 * Canvas gauges and text readouts of the selected car: speed, rpm with shift lights, gear,
 * steering, pedals. Mounted once; a drawer on the shared rAF loop reads the newest values from
 * the ring buffer and repaints each gauge whose value (or the canvas size, or the car)
 * changed. Readouts are written with `textContent`, never React state.
 *
 * The rpm dial and the shift lights scale to each car's highest rpm, read from its whole ring
 * (all cars are buffered) and kept per car, so a focus change does not restart them at the
 * first sample; the lights trust that peak as the car's limit only once it has been seen for
 * SHIFT_LEARN_S (see `shiftLimit`).
 */

import { useEffect, useRef, type RefObject } from "react";
import type { TimeRing } from "../data/ring";
import { telemetry } from "../data/streams";
import { debug } from "../debug";
import { useUi } from "../state/ui";
import { drawGear, drawPedals, drawRpm, drawShiftLights, drawSpeed, drawSteering, gearLabel, scaleFor, shiftLights, shiftLimit, steerLabel } from "./draw";
import { onFrame, sizedCanvas } from "./loop";

const SPEED_FLOOR = 300; // km/h full scale until a car goes faster
const RPM_FLOOR = 8000; // 1/min
/** Shift lights at the limit flash with this half-period [ms]. */
const FLASH_MS = 80;
/** A pause between two samples counts as seen for at most this long [s]. */
const MAX_SEEN_STEP_S = 1;

const fmtInt = (v: number): string => (Number.isFinite(v) ? String(Math.round(v)) : "—");
const fmtPct = (v: number): string => (Number.isFinite(v) ? String(Math.round(Math.min(1, Math.max(0, v)) * 100)) : "—");

function setText(el: HTMLElement | null, text: string): void {
  if (el !== null && el.textContent !== text) el.textContent = text;
}

interface ReadoutProps {
  label: string;
  testid: string;
  unit?: string;
  valueRef: RefObject<HTMLSpanElement | null>;
}

function Readout({ label, testid, unit, valueRef }: ReadoutProps) {
  return (
    <div className="readout">
      <span className="readout-label">{label}</span>
      <span className="readout-value" data-testid={testid} ref={valueRef}>
        —
      </span>
      <span className="readout-unit">{unit ?? ""}</span>
    </div>
  );
}

/** One canvas gauge: its context and the values it shows now (redrawn when they change). */
interface Dial {
  canvas: HTMLCanvasElement;
  ctx: CanvasRenderingContext2D;
  shown: [number, number];
}

function dial(canvas: HTMLCanvasElement | null): Dial | null {
  const ctx = canvas?.getContext("2d") ?? null;
  return canvas === null || ctx === null ? null : { canvas, ctx, shown: [Number.NaN, Number.NaN] };
}

/** One car's rpm so far: the highest [1/min], for how long it has been seen [s], and the newest sample read [s]. */
interface RpmSeen {
  peak: number;
  seenS: number;
  last: number;
}

/** Fold the samples of `ring` newer than `seen.last` into `seen` (all of it after a seek back). */
function readRpm(seen: RpmSeen, ring: TimeRing): void {
  const newest = ring.lastTime();
  if (Number.isNaN(newest) || newest === seen.last) return;
  if (newest < seen.last) seen.last = Number.NaN; // the ring restarted
  const n = Number.isNaN(seen.last) ? ring.length : ring.countWithin(newest - seen.last);
  const times = ring.times(n);
  const rpm = ring.values("rpm", n);
  let prev = seen.last;
  for (let i = 0; i < times.length; i++) {
    const t = times[i] as number;
    if (t <= prev) continue;
    const r = rpm?.[i] ?? Number.NaN;
    if (Number.isFinite(r)) {
      if (!(r <= seen.peak)) seen.peak = r;
      if (!Number.isNaN(prev)) seen.seenS += Math.min(t - prev, MAX_SEEN_STEP_S);
      prev = t;
    }
  }
  seen.last = newest;
}

/** Whether `d` must be redrawn to show (a, b); records them as shown. */
function stale(d: Dial, a: number, b: number, force: boolean): boolean {
  const [sa, sb] = d.shown;
  if (!force && (sa === a || (Number.isNaN(sa) && Number.isNaN(a))) && (sb === b || (Number.isNaN(sb) && Number.isNaN(b)))) return false;
  d.shown[0] = a;
  d.shown[1] = b;
  return true;
}

export function Gauges() {
  const shiftCanvas = useRef<HTMLCanvasElement>(null);
  const speedCanvas = useRef<HTMLCanvasElement>(null);
  const rpmCanvas = useRef<HTMLCanvasElement>(null);
  const gearCanvas = useRef<HTMLCanvasElement>(null);
  const steerCanvas = useRef<HTMLCanvasElement>(null);
  const pedalCanvas = useRef<HTMLCanvasElement>(null);
  const speedText = useRef<HTMLSpanElement>(null);
  const rpmText = useRef<HTMLSpanElement>(null);
  const gearText = useRef<HTMLSpanElement>(null);
  const throttleText = useRef<HTMLSpanElement>(null);
  const brakeText = useRef<HTMLSpanElement>(null);
  const steerText = useRef<HTMLSpanElement>(null);
  const lapText = useRef<HTMLSpanElement>(null);

  useEffect(() => {
    const refs = [shiftCanvas, speedCanvas, rpmCanvas, gearCanvas, steerCanvas, pedalCanvas];
    const [shift, speedDial, rpmDial, gearDial, steerDial, pedals] = refs.map((r) => dial(r.current));
    const sized = refs.flatMap((r) => (r.current === null ? [] : [sizedCanvas(r.current)]));
    let shownStream: string | null = null;
    let shownVersion = -1;
    let shownFlash = false;
    let speedPeak = Number.NaN;
    const rpmSeen = new Map<string, RpmSeen>();

    const stop = onFrame((now) => {
      const stream = useUi.getState().selectedStream;
      debug.selectedStream = stream;
      const ring = stream === null ? undefined : telemetry.ring(stream);
      let resized = false;
      for (const s of sized) if (s.fit()) resized = true;
      const version = ring?.version ?? -1;
      const rpm = ring?.latest("rpm") ?? Number.NaN;
      let seen = stream === null ? undefined : rpmSeen.get(stream);
      if (stream !== null && seen === undefined) {
        seen = { peak: Number.NaN, seenS: 0, last: Number.NaN };
        rpmSeen.set(stream, seen);
      }
      if (seen !== undefined && ring !== undefined) readRpm(seen, ring);
      const rpmPeak = seen?.peak ?? Number.NaN;
      const rpmMax = scaleFor(rpmPeak, RPM_FLOOR, 1000);
      const lights = shiftLights(rpm, shiftLimit(rpmPeak, seen?.seenS ?? 0, rpmMax));
      const flash = lights.flashing && Math.floor(now / FLASH_MS) % 2 === 0;
      if (!resized && stream === shownStream && version === shownVersion && flash === shownFlash) return;
      const force = resized || stream !== shownStream;
      if (stream !== shownStream) speedPeak = Number.NaN;
      shownStream = stream;
      shownVersion = version;
      shownFlash = flash;

      const speed = ring?.latest("speed") ?? Number.NaN;
      const gear = ring?.latest("gear") ?? Number.NaN;
      const throttle = ring?.latest("throttle") ?? Number.NaN;
      const brake = ring?.latest("brake") ?? Number.NaN;
      const steer = ring?.latest("steer") ?? Number.NaN;
      const lap = ring?.latest("lap") ?? Number.NaN;
      if (speed > speedPeak || Number.isNaN(speedPeak)) speedPeak = speed;
      debug.lastSpeed = Number.isFinite(speed) ? speed : null;

      const speedMax = scaleFor(speedPeak, SPEED_FLOOR, 50);
      if (shift && stale(shift, lights.flashing ? -1 : lights.lit, flash ? 1 : 0, force)) drawShiftLights(shift.ctx, shift.canvas.width, shift.canvas.height, lights, flash);
      if (speedDial && stale(speedDial, speed, speedMax, force)) drawSpeed(speedDial.ctx, speedDial.canvas.width, speedDial.canvas.height, speed, speedMax);
      if (rpmDial && stale(rpmDial, rpm, rpmMax, force)) drawRpm(rpmDial.ctx, rpmDial.canvas.width, rpmDial.canvas.height, rpm, rpmMax);
      if (gearDial && stale(gearDial, gear, 0, force)) drawGear(gearDial.ctx, gearDial.canvas.width, gearDial.canvas.height, gear);
      if (steerDial && stale(steerDial, steer, 0, force)) drawSteering(steerDial.ctx, steerDial.canvas.width, steerDial.canvas.height, steer);
      if (pedals && stale(pedals, throttle, brake, force)) drawPedals(pedals.ctx, pedals.canvas.width, pedals.canvas.height, throttle, brake);

      setText(speedText.current, fmtInt(speed));
      setText(rpmText.current, fmtInt(rpm));
      setText(gearText.current, gearLabel(gear));
      setText(throttleText.current, fmtPct(throttle));
      setText(brakeText.current, fmtPct(brake));
      setText(steerText.current, steerLabel(steer));
      setText(lapText.current, fmtInt(lap));
    });
    return () => {
      stop();
      for (const s of sized) s.dispose();
    };
  }, []);

  return (
    <section className="gauges" aria-label="Gauges of the selected car">
      <canvas className="gauge gauge-shift" ref={shiftCanvas} aria-label="shift lights" data-testid="shift-lights" />
      <canvas className="gauge gauge-speed" ref={speedCanvas} aria-label="speed gauge" />
      <canvas className="gauge gauge-rpm" ref={rpmCanvas} aria-label="rpm gauge" />
      <div className="gauge-side">
        <canvas className="gauge gauge-gear" ref={gearCanvas} aria-label="gear" />
        <canvas className="gauge gauge-steer" ref={steerCanvas} aria-label="steering" />
      </div>
      <canvas className="gauge gauge-pedals" ref={pedalCanvas} aria-label="throttle and brake" />
      <div className="readouts">
        <Readout label="Speed" testid="speed-value" unit="km/h" valueRef={speedText} />
        <Readout label="RPM" testid="rpm-value" unit="1/min" valueRef={rpmText} />
        <Readout label="Gear" testid="gear-value" valueRef={gearText} />
        <Readout label="Throttle" testid="throttle-value" unit="%" valueRef={throttleText} />
        <Readout label="Brake" testid="brake-value" unit="%" valueRef={brakeText} />
        <Readout label="Steer" testid="steer-value" unit="° L+" valueRef={steerText} />
        <Readout label="Laps done" testid="lap-value" valueRef={lapText} />
      </div>
    </section>
  );
}
