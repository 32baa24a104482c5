/**
 * Replay transport: play/pause, step, speed, a seek bar with the focused car's lap markers,
 * the clock, and keyboard shortcuts (listed in the bar's help). Controls go to the server's
 * replay clock; what the view shows comes back from it. The playhead and the time readout are
 * moved from the rAF loop between `clock` messages; React renders only on `clock` (about once
 * a second while playing) and on user input.
 */

import { useEffect, useMemo, useRef, useState, type PointerEvent as ReactPointerEvent } from "react";
import type { SessionDetail } from "../../api/detail";
import { debug } from "../../debug";
import { sendControl } from "../../live/connection";
import { setQueryParam } from "../../router";
import { clockAt, useUi } from "../../state/ui";
import { onFrame } from "../../ui/loop";
import { SPEEDS, formatClock, fraction, keyAction, lapStarts } from "./transport";

const HELP =
  "Space/K play·pause · ←/→ 1 s (Shift 10 s) · ,/. one frame · [/] speed · N/P next/previous lap · Home/End · 0-9 jump";

function isTyping(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName));
}

export function Transport({ detail }: { detail: SessionDetail }) {
  const clock = useUi((s) => s.clock);
  const stream = useUi((s) => s.selectedStream);
  const laps = useMemo(() => lapStarts(detail.laps, stream), [detail.laps, stream]);
  const t0 = detail.t0Ns / 1e9;
  const start = clock?.start ?? t0;
  const end = clock?.end ?? detail.t1Ns / 1e9;
  const barRef = useRef<HTMLDivElement>(null);
  const headRef = useRef<HTMLDivElement>(null);
  const fillRef = useRef<HTMLDivElement>(null);
  const timeRef = useRef<HTMLSpanElement>(null);
  const [hover, setHover] = useState<{ x: number; t: number } | null>(null);
  const dragging = useRef(false);

  // Playhead and readout follow the clock every frame (no React state).
  useEffect(
    () =>
      onFrame((now) => {
        const c = useUi.getState().clock;
        if (c === null || dragging.current) return;
        const t = clockAt(c, now);
        const f = fraction(t, c.start, c.end);
        const pct = `${(f * 100).toFixed(3)}%`;
        if (headRef.current !== null && headRef.current.style.left !== pct) headRef.current.style.left = pct;
        if (fillRef.current !== null && fillRef.current.style.width !== pct) fillRef.current.style.width = pct;
        const text = `${formatClock(t - t0)} / ${formatClock(c.end - t0)}`;
        if (timeRef.current !== null && timeRef.current.textContent !== text) timeRef.current.textContent = text;
      }),
    [t0],
  );

  // The URL follows the clock, so a reload or a shared link opens here.
  useEffect(() => {
    if (clock === null) return;
    setQueryParam("t", Math.max(0, clock.t - t0).toFixed(1));
    setQueryParam("speed", clock.speed === 1 ? null : String(clock.speed));
    setQueryParam("paused", clock.playing ? null : "1");
  }, [clock, t0]);

  useEffect(() => {
    const onKey = (ev: KeyboardEvent) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || isTyping(ev.target)) return;
      const c = useUi.getState().clock;
      if (c === null) return;
      const action = keyAction(ev.key, ev.shiftKey, {
        playing: c.playing,
        speed: c.speed,
        t: clockAt(c, performance.now()),
        start: c.start,
        end: c.end,
        fps: c.fps,
        laps,
        stream,
      });
      if (action === null) return;
      ev.preventDefault();
      sendControl(action);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [laps, stream]);

  function timeAt(clientX: number): { x: number; t: number } | null {
    const bar = barRef.current;
    if (bar === null) return null;
    const box = bar.getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (clientX - box.left) / Math.max(1, box.width)));
    return { x: f * box.width, t: start + f * (end - start) };
  }

  function onPointerDown(ev: ReactPointerEvent<HTMLDivElement>) {
    if (ev.button !== 0) return;
    ev.currentTarget.setPointerCapture(ev.pointerId);
    dragging.current = true;
    onPointerMove(ev);
  }

  function onPointerMove(ev: ReactPointerEvent<HTMLDivElement>) {
    const at = timeAt(ev.clientX);
    setHover(at);
    if (dragging.current && at !== null && headRef.current !== null && fillRef.current !== null) {
      const pct = `${(fraction(at.t, start, end) * 100).toFixed(3)}%`;
      headRef.current.style.left = pct;
      fillRef.current.style.width = pct;
    }
  }

  function onPointerUp(ev: ReactPointerEvent<HTMLDivElement>) {
    if (!dragging.current) return;
    dragging.current = false;
    const at = timeAt(ev.clientX);
    if (at !== null) sendControl({ action: "seek", t: at.t * 1e9 });
  }

  const playing = clock?.playing ?? false;
  const speed = clock?.speed ?? 1;
  return (
    <section className="transport" data-testid="replay-transport" aria-label="replay controls">
      <div className="transport-buttons">
        <button type="button" data-testid="replay-start" title="To the start (Home)" onClick={() => sendControl({ action: "seek", t: start * 1e9 })}>
          ⇤
        </button>
        <button type="button" data-testid="replay-step-back" title="Pause and go back 1 s (←, Shift: 10 s)" onClick={() => sendControl({ action: "step", by: -1 })}>
          −1s
        </button>
        <button
          type="button"
          className="transport-play"
          data-testid="replay-play"
          aria-label={playing ? "Pause" : "Play"}
          title={playing ? "Pause (Space)" : "Play (Space)"}
          disabled={clock === null}
          onClick={() => sendControl({ action: playing ? "pause" : "play" })}
        >
          {playing ? "❚❚" : "▶"}
        </button>
        <button type="button" data-testid="replay-step-forward" title="Pause and go forward 1 s (→, Shift: 10 s)" onClick={() => sendControl({ action: "step", by: 1 })}>
          +1s
        </button>
        <label className="transport-speed" title="Replay speed ([ and ])">
          <select data-testid="replay-speed" value={String(speed)} onChange={(ev) => sendControl({ action: "speed", speed: Number(ev.target.value) })}>
            {(SPEEDS as readonly number[]).includes(speed) ? null : <option value={String(speed)}>{speed}×</option>}
            {SPEEDS.map((s) => (
              <option key={s} value={String(s)}>
                {s}×
              </option>
            ))}
          </select>
        </label>
      </div>
      <div
        className="seekbar"
        data-testid="replay-seekbar"
        ref={barRef}
        role="slider"
        aria-label="replay position"
        aria-valuemin={0}
        aria-valuemax={Math.round(end - start)}
        aria-valuenow={clock === null ? 0 : Math.round(clock.t - start)}
        tabIndex={0}
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={onPointerUp}
        onPointerCancel={() => {
          dragging.current = false;
          setHover(null);
        }}
        onLostPointerCapture={() => {
          dragging.current = false;
        }}
        onPointerLeave={() => {
          if (!dragging.current) setHover(null);
        }}
      >
        <div className="seekbar-track" />
        <div className="seekbar-fill" ref={fillRef} />
        {laps.map((l) => (
          <button
            type="button"
            key={l.lap}
            className="lap-marker"
            data-lap={l.lap}
            style={{ left: `${fraction(l.t, start, end) * 100}%` }}
            title={`Lap ${l.lap} of ${stream ?? ""} — seek here`}
            onPointerDown={(ev) => ev.stopPropagation()}
            onClick={() => {
              debug.lapSeeks++;
              sendControl({ action: "seek", lap: l.lap, stream: stream ?? undefined });
            }}
          >
            <span>L{l.lap}</span>
          </button>
        ))}
        <div className="seekbar-head" ref={headRef} />
        {hover !== null ? (
          <div className="seekbar-hover" style={{ left: hover.x }}>
            {formatClock(hover.t - t0)}
          </div>
        ) : null}
      </div>
      <span className="transport-time" data-testid="replay-time" ref={timeRef}>
        —
      </span>
      <span className="transport-state" data-testid="replay-state">
        {clock === null ? "opening…" : clock.ended ? "ended" : playing ? `playing ${speed}×` : "paused"}
      </span>
      <span className="transport-help" title={HELP}>
        ⌨
      </span>
    </section>
  );
}
