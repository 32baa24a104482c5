/**
 * Canvas2D gauges, pure functions of (context, size in device pixels, values): speed, rpm,
 * gear, pedals, rpm shift lights and steering. A value of NaN (no data yet) draws the empty
 * gauge and a dash. Colours match styles.css.
 */

export const COLORS = {
  track: "#243040",
  text: "#e6edf3",
  dim: "#7d8a99",
  speed: "#38bdf8",
  rpm: "#f59e0b",
  redline: "#ef4444",
  throttle: "#22c55e",
  brake: "#ef4444",
  needle: "#f8fafc",
  gear: "#a78bfa",
  steer: "#e879f9",
  shiftGreen: "#22c55e",
  shiftRed: "#ef4444",
  shiftBlue: "#3b82f6",
  ledOff: "#1a2230",
} as const;

const START = 0.75 * Math.PI; // 7:30 o'clock
const SWEEP = 1.5 * Math.PI; // 270°
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const MONO = "ui-monospace, 'SF Mono', Menlo, Consolas, monospace";

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

function font(px: number, family: string, weight = 600): string {
  return `${weight} ${Math.round(px)}px ${family}`;
}

/** Speed [km/h]: an arc from 0 to `max` and a big digital number. */
export function drawSpeed(ctx: CanvasRenderingContext2D, w: number, h: number, speed: number, max: number): void {
  ctx.clearRect(0, 0, w, h);
  const r = Math.min(w / 2, h / 1.7) * 0.88;
  const cx = w / 2;
  const cy = h * 0.55;
  const lw = Math.max(4, r * 0.12);
  ctx.lineCap = "round";
  ctx.lineWidth = lw;
  ctx.strokeStyle = COLORS.track;
  ctx.beginPath();
  ctx.arc(cx, cy, r, START, START + SWEEP);
  ctx.stroke();
  if (Number.isFinite(speed)) {
    ctx.strokeStyle = COLORS.speed;
    ctx.beginPath();
    ctx.arc(cx, cy, r, START, START + SWEEP * clamp01(speed / max));
    ctx.stroke();
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillStyle = COLORS.text;
  ctx.font = font(r * 0.62, MONO, 700);
  ctx.fillText(Number.isFinite(speed) ? String(Math.round(speed)) : "—", cx, cy);
  ctx.fillStyle = COLORS.dim;
  ctx.font = font(r * 0.16, FONT);
  ctx.fillText("km/h", cx, cy + r * 0.5);
}

/** Engine speed [1/min]: a needle dial 0..`max` with ticks every 1000 and a redline. */
export function drawRpm(ctx: CanvasRenderingContext2D, w: number, h: number, rpm: number, max: number): void {
  ctx.clearRect(0, 0, w, h);
  const r = Math.min(w / 2, h / 1.7) * 0.88;
  const cx = w / 2;
  const cy = h * 0.55;
  const angle = (frac: number): number => START + SWEEP * clamp01(frac);
  const lw = Math.max(3, r * 0.06);
  ctx.lineCap = "butt";
  ctx.lineWidth = lw;
  ctx.strokeStyle = COLORS.track;
  ctx.beginPath();
  ctx.arc(cx, cy, r, START, angle(0.9));
  ctx.stroke();
  ctx.strokeStyle = COLORS.redline;
  ctx.beginPath();
  ctx.arc(cx, cy, r, angle(0.9), angle(1));
  ctx.stroke();

  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.font = font(r * 0.13, FONT);
  const thousands = Math.floor(max / 1000);
  for (let k = 0; k <= thousands; k++) {
    const a = angle((k * 1000) / max);
    const cos = Math.cos(a);
    const sin = Math.sin(a);
    ctx.strokeStyle = k * 1000 >= 0.9 * max ? COLORS.redline : COLORS.dim;
    ctx.lineWidth = Math.max(1, r * 0.025);
    ctx.beginPath();
    ctx.moveTo(cx + cos * (r - lw), cy + sin * (r - lw));
    ctx.lineTo(cx + cos * (r - lw * 2.6), cy + sin * (r - lw * 2.6));
    ctx.stroke();
    if (thousands <= 12 || k % 2 === 0) {
      ctx.fillStyle = COLORS.dim;
      ctx.fillText(String(k), cx + cos * (r - lw * 4.4), cy + sin * (r - lw * 4.4));
    }
  }
  ctx.fillStyle = COLORS.dim;
  ctx.fillText("×1000 rpm", cx, cy + r * 0.55);

  if (Number.isFinite(rpm)) {
    const a = angle(rpm / max);
    ctx.strokeStyle = rpm >= 0.9 * max ? COLORS.redline : COLORS.needle;
    ctx.lineWidth = Math.max(2, r * 0.035);
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(cx - Math.cos(a) * r * 0.12, cy - Math.sin(a) * r * 0.12);
    ctx.lineTo(cx + Math.cos(a) * r * 0.86, cy + Math.sin(a) * r * 0.86);
    ctx.stroke();
  }
  ctx.fillStyle = COLORS.rpm;
  ctx.beginPath();
  ctx.arc(cx, cy, Math.max(3, r * 0.07), 0, 2 * Math.PI);
  ctx.fill();
}

/** Gear as a dashboard shows it: -1 → R, 0 → N, else the number; NaN → "—". */
export function gearLabel(gear: number): string {
  if (!Number.isFinite(gear)) return "—";
  const g = Math.round(gear);
  return g < 0 ? "R" : g === 0 ? "N" : String(g);
}

export function drawGear(ctx: CanvasRenderingContext2D, w: number, h: number, gear: number): void {
  ctx.clearRect(0, 0, w, h);
  const label = gearLabel(gear);
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillStyle = label === "R" ? COLORS.redline : label === "N" ? COLORS.rpm : COLORS.text;
  ctx.font = font(Math.min(h * 0.8, w * 0.9), MONO, 700);
  ctx.fillText(label, w / 2, h * 0.54);
}

/** Throttle and brake pedals [0-1] as two vertical bars with percentages. */
export function drawPedals(ctx: CanvasRenderingContext2D, w: number, h: number, throttle: number, brake: number): void {
  ctx.clearRect(0, 0, w, h);
  const gap = w * 0.12;
  const barW = (w - 3 * gap) / 2;
  const labelH = Math.min(h * 0.16, barW * 0.5);
  const top = labelH * 0.9; // name above the bar, percentage below
  const barH = h - top - labelH * 1.2;
  const bars: [number, string, string][] = [
    [throttle, COLORS.throttle, "THR"],
    [brake, COLORS.brake, "BRK"],
  ];
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  bars.forEach(([value, color, name], i) => {
    const x = gap + i * (barW + gap);
    ctx.fillStyle = COLORS.track;
    ctx.fillRect(x, top, barW, barH);
    if (Number.isFinite(value)) {
      const fill = barH * clamp01(value);
      ctx.fillStyle = color;
      ctx.fillRect(x, top + barH - fill, barW, fill);
    }
    ctx.fillStyle = COLORS.text;
    ctx.font = font(Math.min(labelH * 0.7, barW * 0.32), MONO, 700);
    ctx.fillText(Number.isFinite(value) ? `${Math.round(clamp01(value) * 100)}%` : "—", x + barW / 2, top + barH + labelH * 0.6);
    ctx.fillStyle = COLORS.dim;
    ctx.font = font(Math.min(labelH * 0.45, barW * 0.22), FONT);
    ctx.fillText(name, x + barW / 2, top * 0.5);
  });
}

/** A dial's full scale: at least `floor`, grown in `step`s to fit `seen`. */
export function scaleFor(seen: number, floor: number, step: number): number {
  return Number.isFinite(seen) && seen > floor ? Math.ceil(seen / step) * step : floor;
}

/** LEDs in the shift-light row: a third green, a third red, a third blue. */
export const SHIFT_LEDS = 15;
/** rpm fraction (of the limit, see `shiftLimit`) where the first LED lights, and where all flash. */
export const SHIFT_START = 0.7;
export const SHIFT_LIMIT = 0.97;
/** A car's highest rpm is taken as its limit once it has been seen for this long [s]. */
export const SHIFT_LEARN_S = 20;

/** How many of `n` shift lights are lit at `frac` of the limit (all from SHIFT_LIMIT). */
export function shiftLightsLit(frac: number, n: number = SHIFT_LEDS): number {
  if (!Number.isFinite(frac)) return 0;
  return Math.round(n * clamp01((frac - SHIFT_START) / (SHIFT_LIMIT - SHIFT_START)));
}

/**
 * The rpm [1/min] the shift lights count up to: the car's highest rpm `peak` once it has been
 * seen for SHIFT_LEARN_S [s] `seenS` (before that the peak may be a first gear's or the pit
 * lane's), else `scale`, the rpm gauge's full scale (its floor until the car revs past it).
 */
export function shiftLimit(peak: number, seenS: number, scale: number): number {
  return seenS >= SHIFT_LEARN_S && peak > 0 ? peak : scale;
}

/** The shift-light row at one instant: LEDs lit, or all of them flashing. */
export interface ShiftLights {
  lit: number;
  flashing: boolean;
}

/** The shift lights at `rpm` [1/min] of `limit` (see `shiftLimit`); none without either. */
export function shiftLights(rpm: number, limit: number, n: number = SHIFT_LEDS): ShiftLights {
  const frac = limit > 0 ? rpm / limit : Number.NaN;
  const flashing = frac >= SHIFT_LIMIT;
  return { lit: flashing ? n : shiftLightsLit(frac, n), flashing };
}

function ledColour(i: number, n: number): string {
  return i < n / 3 ? COLORS.shiftGreen : i < (2 * n) / 3 ? COLORS.shiftRed : COLORS.shiftBlue;
}

/**
 * A row of SHIFT_LEDS lights, `lights.lit` of them lit left to right; when they flash, all
 * are lit while `flashOn` and none otherwise.
 */
export function drawShiftLights(ctx: CanvasRenderingContext2D, w: number, h: number, lights: ShiftLights, flashOn: boolean): void {
  ctx.clearRect(0, 0, w, h);
  const n = SHIFT_LEDS;
  const lit = lights.flashing ? (flashOn ? n : 0) : lights.lit;
  const pitch = w / n;
  const r = Math.max(2, Math.min(pitch * 0.36, h * 0.4));
  for (let i = 0; i < n; i++) {
    ctx.fillStyle = i < lit ? ledColour(i, n) : COLORS.ledOff;
    ctx.beginPath();
    ctx.arc(pitch * (i + 0.5), h / 2, r, 0, 2 * Math.PI);
    ctx.fill();
  }
}

/** Steering angle [rad] (positive = left) in whole degrees, "—" without data. */
export function steerLabel(steer: number): string {
  return Number.isFinite(steer) ? String(Math.round((steer * 180) / Math.PI)) : "—";
}

/** A steering wheel turned by `steer` [rad] (positive = left, so anticlockwise on screen). */
export function drawSteering(ctx: CanvasRenderingContext2D, w: number, h: number, steer: number): void {
  ctx.clearRect(0, 0, w, h);
  const r = Math.min(w, h) * 0.4;
  const cx = w / 2;
  const cy = h / 2;
  const lw = Math.max(3, r * 0.16);
  ctx.save();
  ctx.translate(cx, cy);
  ctx.rotate(Number.isFinite(steer) ? -steer : 0);
  ctx.lineCap = "round";
  ctx.lineWidth = lw;
  ctx.strokeStyle = Number.isFinite(steer) ? COLORS.text : COLORS.track;
  ctx.beginPath();
  ctx.arc(0, 0, r, 0, 2 * Math.PI);
  ctx.moveTo(-r, 0);
  ctx.lineTo(r, 0);
  ctx.moveTo(0, 0);
  ctx.lineTo(0, r);
  ctx.stroke();
  ctx.strokeStyle = COLORS.steer;
  ctx.beginPath();
  ctx.arc(0, 0, r, -Math.PI / 2 - 0.18, -Math.PI / 2 + 0.18);
  ctx.stroke();
  ctx.restore();
}
