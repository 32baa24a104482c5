/**
 * Canvas gauges and text readouts of the selected car. Mounted once; a drawer on the shared
 * rAF loop reads the newest values from the ring buffer and repaints when they (or the canvas
 * size, or the car) changed. Readouts are written with `textContent`, never React state.
 */

import { useEffect, useRef, type RefObject } from "react";
import { telemetry } from "../data/streams";
import { debug } from "../debug";
import { useUi } from "../state/ui";
import { drawGear, drawPedals, drawRpm, drawSpeed, gearLabel, scaleFor } from "./draw";
import { onFrame, sizedCanvas } from "./loop";

const SPEED_FLOOR = 300; // km/h full scale until a car goes faster
const RPM_FLOOR = 8000; // 1/min

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

export function Gauges() {
  const speedCanvas = useRef<HTMLCanvasElement>(null);
  const rpmCanvas = useRef<HTMLCanvasElement>(null);
  const gearCanvas = useRef<HTMLCanvasElement>(null);
  const pedalCanvas = useRef<HTMLCanvasElement>(null);
  const speedText = useRef<HTMLSpanElement>(null);
  const rpmText = useRef<HTMLSpanElement>(null);
  const gearText = useRef<HTMLSpanElement>(null);
  const throttleText = useRef<HTMLSpanElement>(null);
  const brakeText = useRef<HTMLSpanElement>(null);
  const lapText = useRef<HTMLSpanElement>(null);

  useEffect(() => {
    const canvases = [speedCanvas.current, rpmCanvas.current, gearCanvas.current, pedalCanvas.current];
    const contexts = canvases.map((c) => c?.getContext("2d") ?? null);
    const sized = canvases.flatMap((c) => (c === null ? [] : [sizedCanvas(c)]));
    let shownStream: string | null = null;
    let shownVersion = -1;
    let speedPeak = Number.NaN;
    let rpmPeak = Number.NaN;

    const stop = onFrame(() => {
      const stream = useUi.getState().selectedStream;
      debug.selectedStream = stream;
      const ring = stream === null ? undefined : telemetry.ring(stream);
      const resized = sized.map((s) => s.fit()).some(Boolean);
      const version = ring?.version ?? -1;
      if (!resized && stream === shownStream && version === shownVersion) return;
      if (stream !== shownStream) {
        speedPeak = Number.NaN;
        rpmPeak = Number.NaN;
      }
      shownStream = stream;
      shownVersion = version;

      const speed = ring?.latest("speed") ?? Number.NaN;
      const rpm = ring?.latest("rpm") ?? Number.NaN;
      const gear = ring?.latest("gear") ?? Number.NaN;
      const throttle = ring?.latest("throttle") ?? Number.NaN;
      const brake = ring?.latest("brake") ?? Number.NaN;
      const lap = ring?.latest("lap") ?? Number.NaN;
      if (speed > speedPeak || Number.isNaN(speedPeak)) speedPeak = speed;
      if (rpm > rpmPeak || Number.isNaN(rpmPeak)) rpmPeak = rpm;
      debug.lastSpeed = Number.isFinite(speed) ? speed : null;

      const [speedCtx, rpmCtx, gearCtx, pedalCtx] = contexts;
      const [speedEl, rpmEl, gearEl, pedalEl] = canvases;
      if (speedCtx && speedEl) drawSpeed(speedCtx, speedEl.width, speedEl.height, speed, scaleFor(speedPeak, SPEED_FLOOR, 50));
      if (rpmCtx && rpmEl) drawRpm(rpmCtx, rpmEl.width, rpmEl.height, rpm, scaleFor(rpmPeak, RPM_FLOOR, 1000));
      if (gearCtx && gearEl) drawGear(gearCtx, gearEl.width, gearEl.height, gear);
      if (pedalCtx && pedalEl) drawPedals(pedalCtx, pedalEl.width, pedalEl.height, throttle, brake);

      setText(speedText.current, fmtInt(speed));
      setText(rpmText.current, fmtInt(rpm));
      setText(gearText.current, gearLabel(gear));
      setText(throttleText.current, fmtPct(throttle));
      setText(brakeText.current, fmtPct(brake));
      setText(lapText.current, fmtInt(lap));
    });
    return () => {
      stop();
      for (const s of sized) s.dispose();
    };
  }, []);

  return (
    <section className="gauges" aria-label="Gauges of the selected car">
      <canvas className="gauge gauge-speed" ref={speedCanvas} aria-label="speed gauge" />
      <canvas className="gauge gauge-rpm" ref={rpmCanvas} aria-label="rpm gauge" />
      <div className="gauge-side">
        <canvas className="gauge gauge-gear" ref={gearCanvas} aria-label="gear" />
        <canvas className="gauge gauge-pedals" ref={pedalCanvas} aria-label="throttle and brake" />
      </div>
      <div className="readouts">
        <Readout label="Speed" testid="speed-value" unit="km/h" valueRef={speedText} />
        <Readout label="RPM" testid="rpm-value" unit="1/min" valueRef={rpmText} />
        <Readout label="Gear" testid="gear-value" valueRef={gearText} />
        <Readout label="Throttle" testid="throttle-value" unit="%" valueRef={throttleText} />
        <Readout label="Brake" testid="brake-value" unit="%" valueRef={brakeText} />
        <Readout label="Laps done" testid="lap-value" valueRef={lapText} />
      </div>
    </section>
  );
}
