/**
 * Stored sessions (`/sessions`), newest first: one row per session with its track, cars,
 * start, duration, frames and completeness, a LIVE badge and links to the session, its replay
 * and (while live) the live pit wall. Refreshed every REFRESH_MS, so sessions that start,
 * grow or end show up without a reload.
 */

import { useCallback, useEffect, useState } from "react";
import { COMPLETE_RATIO, abbreviateDrivers, fetchSessions, formatDuration, formatPercent, formatStart, type SessionSummary } from "../../api/sessions";
import { linkClick } from "../../router";
import "./sessions.css";

const REFRESH_MS = 5000;

type ListState = { phase: "loading" } | { phase: "ready"; sessions: SessionSummary[]; error: string } | { phase: "failed"; error: string };

function useSessions(): { state: ListState; retry: () => void } {
  const [state, setState] = useState<ListState>({ phase: "loading" });
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    async function load(): Promise<void> {
      try {
        const sessions = await fetchSessions(abort.signal);
        if (abort.signal.aborted) return;
        setState({ phase: "ready", sessions, error: "" });
        timer = setTimeout(() => void load(), REFRESH_MS);
      } catch (err) {
        if (abort.signal.aborted) return;
        const error = (err as Error).message;
        // Keep showing the last list through a failed refresh (and keep refreshing).
        setState((s) => (s.phase === "ready" ? { ...s, error } : { phase: "failed", error }));
        timer = setTimeout(() => void load(), REFRESH_MS);
      }
    }
    void load();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [attempt]);
  const retry = useCallback(() => {
    setState({ phase: "loading" });
    setAttempt((a) => a + 1);
  }, []);
  return { state, retry };
}

function Cars({ s }: { s: SessionSummary }) {
  const count = s.cars.length > 0 ? s.cars.length : s.streams;
  const names = s.cars.map((c) => [c.driver || c.stream_id, c.car].filter(Boolean).join(" · ")).join("\n");
  return (
    <span title={names || undefined}>
      <span className="num">{count}</span>
      {s.cars.length > 0 ? <span className="dim cars-names"> {abbreviateDrivers(s.cars)}</span> : null}
    </span>
  );
}

function Row({ s }: { s: SessionSummary }) {
  const enc = encodeURIComponent(s.session_id);
  const incomplete = s.completeness !== null && s.completeness < COMPLETE_RATIO;
  return (
    <tr data-testid="session-row" data-session={s.session_id}>
      <td>
        <a href={`/sessions/${enc}`} onClick={linkClick} className="session-link">
          {s.session_id}
        </a>
        {s.live ? (
          <span className="live-badge" data-testid="live-badge">
            live
          </span>
        ) : null}
      </td>
      <td>{s.track || <span className="dim">—</span>}</td>
      <td>
        <Cars s={s} />
      </td>
      <td className="num">{formatStart(s.started_ns > 0 ? s.started_ns : s.t0_ns)}</td>
      <td className="num" data-cell="duration">
        {formatDuration(s.duration_s)}
      </td>
      <td className="num">{s.frames.toLocaleString()}</td>
      <td className={incomplete ? "num incomplete" : "num"} data-cell="completeness" title={incomplete ? "frames missing: see the session page" : undefined}>
        {formatPercent(s.completeness)}
      </td>
      <td className="actions">
        <a className="button" href={`/sessions/${enc}/replay`} onClick={linkClick} aria-label={`Replay ${s.session_id}`}>
          Replay
        </a>
        {s.live ? (
          <a className="button button-live" href={`/live/${enc}`} onClick={linkClick} aria-label={`Live view of ${s.session_id}`}>
            Live
          </a>
        ) : null}
      </td>
    </tr>
  );
}

export function SessionsList() {
  const { state, retry } = useSessions();
  return (
    <main className="page sessions-page" data-testid="sessions-page">
      <h1>Sessions</h1>
      {state.phase === "loading" ? (
        <p className="dim" data-testid="sessions-loading">
          Loading sessions…
        </p>
      ) : state.phase === "failed" ? (
        <div className="error-box" role="alert" data-testid="sessions-error">
          <p>Cannot list sessions: {state.error}</p>
          <button type="button" className="button" onClick={retry}>
            Retry
          </button>
        </div>
      ) : state.sessions.length === 0 ? (
        <p className="empty" data-testid="sessions-empty">
          No sessions stored yet — run <code>make demo</code> or <code>pitwire import</code>
        </p>
      ) : (
        <>
          {state.error ? (
            <p className="error-line" role="status">
              Refresh failed: {state.error} (retrying)
            </p>
          ) : null}
          <div className="table-wrap">
            <table className="data-table" data-testid="sessions-table" aria-label="stored sessions">
              <thead>
                <tr>
                  <th scope="col">Session</th>
                  <th scope="col">Track</th>
                  <th scope="col">Cars</th>
                  <th scope="col">Started</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Frames</th>
                  <th scope="col">Complete</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {state.sessions.map((s) => (
                  <Row key={s.session_id} s={s} />
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </main>
  );
}
