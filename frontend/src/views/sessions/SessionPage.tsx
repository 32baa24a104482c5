/**
 * One stored session (`/sessions/{id}`): its facts (track, start, duration, cars,
 * completeness), links to its replay and live view, and the laps table — per car, with best
 * laps and sectors marked, a replay link per lap and checkboxes to pick laps for comparison.
 * Revalidated every POLL_MS while the session is live (an unchanged session costs a 304). A
 * first load that fails other than with a 404 (the store unavailable, the server restarting)
 * shows the server's error with a Retry button and is retried every POLL_MS until it succeeds.
 */

import { useCallback, useEffect, useMemo, useState } from "react";
import { ApiError, fetchDetail, formatLapTime, type Lap, type SessionDetail } from "../../api/detail";
import { COMPLETE_RATIO, formatDuration, formatPercent, formatStart } from "../../api/sessions";
import { linkClick, navigate } from "../../router";
import { compareHref } from "../../analysis/compare";
import "./sessions.css";

const POLL_MS = 3000;

type PageState = { phase: "loading" } | { phase: "ready"; detail: SessionDetail; error: string } | { phase: "failed"; status: number; error: string };

function useDetail(id: string): { state: PageState; retry: () => void } {
  const [state, setState] = useState<PageState>({ phase: "loading" });
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    const abort = new AbortController();
    let etag: string | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let live = false; // as of the last detail received
    let loaded = false; // a detail was received
    async function load(): Promise<void> {
      let again: boolean;
      try {
        const got = await fetchDetail(id, etag, abort.signal);
        if (abort.signal.aborted) return;
        if (got !== null) {
          etag = got.etag;
          live = got.detail.live;
          loaded = true;
          setState({ phase: "ready", detail: got.detail, error: "" });
        } else {
          setState((s) => (s.phase === "ready" && s.error !== "" ? { ...s, error: "" } : s));
        }
        again = live;
      } catch (err) {
        if (abort.signal.aborted) return;
        const error = (err as Error).message;
        const status = err instanceof ApiError ? err.status : 0;
        // Keep showing the last good detail through a failed refresh, unless it was deleted.
        setState((s) => (s.phase === "ready" && status !== 404 ? { ...s, error } : { phase: "failed", status, error }));
        if (status === 404) live = false;
        // A deleted or unknown session stays so; anything else may pass (a store coming back).
        again = status !== 404 && (live || !loaded);
      }
      if (again) timer = setTimeout(() => void load(), POLL_MS);
    }
    void load();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [id, attempt]);
  const retry = useCallback(() => {
    setState({ phase: "loading" });
    setAttempt((a) => a + 1);
  }, []);
  return { state, retry };
}

/** `/sessions/{id}/replay?t=&car=` starting at `lap`. */
function replayHref(detail: SessionDetail, lap: Lap): string {
  const t = Math.max(0, (lap.t0Ns - detail.t0Ns) / 1e9);
  return `/sessions/${encodeURIComponent(detail.id)}/replay?t=${Number(t.toFixed(3))}&car=${encodeURIComponent(lap.stream)}`;
}

interface Marks {
  /** Each stream's best lap time [s]. */
  best: Map<string, number>;
  fastest: number;
  /** Per sector index: the session's best and each stream's best [s]. */
  sectorBest: number[];
  sectorPb: Map<string, number[]>;
  sectors: number;
}

function marks(laps: readonly Lap[]): Marks {
  const best = new Map<string, number>();
  const sectorPb = new Map<string, number[]>();
  const sectorBest: number[] = [];
  let fastest = Number.POSITIVE_INFINITY;
  let sectors = 0;
  for (const l of laps) {
    sectors = Math.max(sectors, l.sectors.length);
    if (l.lapTime !== null) {
      const b = best.get(l.stream);
      if (b === undefined || l.lapTime < b) best.set(l.stream, l.lapTime);
      fastest = Math.min(fastest, l.lapTime);
    }
    const pb = sectorPb.get(l.stream) ?? [];
    sectorPb.set(l.stream, pb);
    l.sectors.forEach((s, i) => {
      if (!(s > 0)) return;
      if (!(s >= (pb[i] ?? Number.POSITIVE_INFINITY))) pb[i] = s;
      if (!(s >= (sectorBest[i] ?? Number.POSITIVE_INFINITY))) sectorBest[i] = s;
    });
  }
  return { best, fastest, sectorBest, sectorPb, sectors };
}

const key = (l: { stream: string; lap: number }): string => `${l.stream}~${l.lap}`;

function Facts({ detail }: { detail: SessionDetail }) {
  const incomplete = detail.completeness < COMPLETE_RATIO;
  const facts: [string, string, string?][] = [
    ["Track", detail.track || "—"],
    ["Started", formatStart(detail.startedNs > 0 ? detail.startedNs : detail.t0Ns)],
    ["Duration", formatDuration(detail.durationS)],
    ["Cars", String(detail.cars.length)],
    ["Laps", String(detail.laps.length)],
    ["Frames", detail.frames.toLocaleString()],
    ["Complete", formatPercent(detail.completeness), incomplete ? "incomplete" : undefined],
  ];
  return (
    <dl className="session-facts">
      {facts.map(([k, v, cls]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd className={cls}>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

function LapsTable({ detail, picks, onPick, car }: { detail: SessionDetail; picks: readonly string[]; onPick: (lap: Lap, on: boolean) => void; car: string }) {
  const m = useMemo(() => marks(detail.laps), [detail.laps]);
  const cars = detail.cars.filter((c) => car === "" || c.stream === car);
  const byStream = useMemo(() => {
    const g = new Map<string, Lap[]>();
    for (const l of detail.laps) {
      const list = g.get(l.stream) ?? [];
      list.push(l);
      g.set(l.stream, list);
    }
    for (const list of g.values()) list.sort((a, b) => a.lap - b.lap);
    return g;
  }, [detail.laps]);
  const sectorCols = Array.from({ length: m.sectors }, (_, i) => i);
  const cols = 6 + m.sectors;

  return (
    <div className="table-wrap">
      <table className="data-table laps-table" data-testid="laps-table" aria-label="laps">
        <thead>
          <tr>
            <th scope="col">
              <span className="sr-only">Pick for comparison</span>
            </th>
            <th scope="col">Car</th>
            <th scope="col">Lap</th>
            <th scope="col">Time</th>
            {sectorCols.map((i) => (
              <th scope="col" key={i}>
                S{i + 1}
              </th>
            ))}
            <th scope="col">Tyre / pit</th>
            <th scope="col">
              <span className="sr-only">Replay</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {cars.map((c) => {
            const laps = byStream.get(c.stream) ?? [];
            const best = m.best.get(c.stream);
            return [
              <tr className="car-group" key={`g-${c.stream}`} data-testid="car-group" data-stream={c.stream}>
                <td colSpan={cols}>
                  <span className="swatch" style={{ background: c.colour }} />
                  {c.driver || c.stream} <span className="dim">{[c.car, `${laps.length} laps`, best !== undefined ? `best ${formatLapTime(best)}` : ""].filter(Boolean).join(" · ")}</span>
                </td>
              </tr>,
              ...laps.map((l) => {
                const timed = l.lapTime !== null;
                const picked = picks.includes(key(l));
                const cls = [
                  timed ? "" : "untimed",
                  timed && l.lapTime === best ? "best" : "",
                  timed && l.lapTime === m.fastest ? "fastest" : "",
                  picked ? "picked" : "",
                ]
                  .filter(Boolean)
                  .join(" ");
                const label = `${c.driver || c.stream} lap ${l.lap}`;
                return (
                  <tr key={key(l)} className={cls || undefined} data-testid="lap-row" data-stream={l.stream} data-lap={l.lap}>
                    <td>
                      <input
                        type="checkbox"
                        data-testid="lap-pick"
                        checked={picked}
                        disabled={!timed}
                        aria-label={timed ? `Pick ${label} for comparison` : `${label} is untimed`}
                        onChange={(ev) => onPick(l, ev.target.checked)}
                      />
                    </td>
                    <td>
                      <span className="swatch" style={{ background: c.colour }} />
                      {c.driver || c.stream}
                    </td>
                    <td className="num">{l.lap}</td>
                    <td className="num lap-time">{formatLapTime(l.lapTime)}</td>
                    {sectorCols.map((i) => {
                      const s = l.sectors[i];
                      const ok = s !== undefined && s > 0;
                      const sc = ok && s === m.sectorBest[i] ? "best-sector" : ok && s === m.sectorPb.get(l.stream)?.[i] ? "pb-sector" : "";
                      return (
                        <td key={i} className={`num sector ${sc}`.trim()}>
                          {ok ? formatLapTime(s) : "—"}
                        </td>
                      );
                    })}
                    <td>
                      {l.compound ? <span className="flag">{l.compound}</span> : null}
                      {l.pitOut ? (
                        <span className="flag flag-pit" title="left the pit lane on this lap">
                          OUT
                        </span>
                      ) : null}
                      {l.pitIn ? (
                        <span className="flag flag-pit" title="entered the pit lane on this lap">
                          IN
                        </span>
                      ) : null}
                    </td>
                    <td className="actions">
                      <a className="replay-link" href={replayHref(detail, l)} onClick={linkClick} aria-label={`Replay from ${label}`} title="Replay from here">
                        ▶
                      </a>
                    </td>
                  </tr>
                );
              }),
            ];
          })}
        </tbody>
      </table>
    </div>
  );
}

export function SessionPage({ sessionId }: { sessionId: string }) {
  const { state, retry } = useDetail(sessionId);
  const [picks, setPicks] = useState<string[]>([]);
  const [car, setCar] = useState("");
  const enc = encodeURIComponent(sessionId);

  if (state.phase === "loading") {
    return (
      <main className="page session-page" data-testid="session-page" data-session={sessionId}>
        <p className="dim">Loading session {sessionId}…</p>
      </main>
    );
  }
  if (state.phase === "failed") {
    return (
      <main className="page session-page" data-testid="session-page" data-session={sessionId}>
        <div className="error-box" role="alert" data-testid="session-error">
          {state.status === 404 ? (
            <p>No session {sessionId}</p>
          ) : (
            <>
              <p>
                Cannot load session {sessionId}: {state.error}
              </p>
              <p className="dim">Retrying every {POLL_MS / 1000} s.</p>
              <button type="button" className="button" onClick={retry} data-testid="session-retry">
                Retry
              </button>
            </>
          )}
          <p>
            <a href="/sessions" onClick={linkClick}>
              ← All sessions
            </a>
          </p>
        </div>
      </main>
    );
  }

  const { detail, error } = state;
  const onPick = (lap: Lap, on: boolean): void => {
    const k = key(lap);
    setPicks((p) => (on ? (p.includes(k) ? p : [...p, k]) : p.filter((x) => x !== k)));
  };
  const picked = picks.flatMap((k) => {
    const l = detail.laps.find((x) => key(x) === k && x.lapTime !== null);
    return l === undefined ? [] : [l];
  });

  return (
    <main className="page session-page" data-testid="session-page" data-session={sessionId}>
      <div className="session-head">
        <div>
          <h1>
            {detail.id}
            {detail.live ? <span className="live-badge">live</span> : null}
          </h1>
          <Facts detail={detail} />
        </div>
        <div className="session-actions">
          <a className="button" href={`/sessions/${enc}/replay`} onClick={linkClick} data-testid="replay-button">
            ▶ Replay
          </a>
          {detail.live ? (
            <a className="button button-live" href={`/live/${enc}`} onClick={linkClick} data-testid="live-button">
              Live
            </a>
          ) : null}
        </div>
      </div>
      {error ? (
        <p className="error-line" role="status">
          Refresh failed: {error} (retrying)
        </p>
      ) : null}
      <div className="car-chips" aria-label="cars">
        {detail.cars.map((c) => (
          <span key={c.stream} title={c.stream}>
            <span className="swatch" style={{ background: c.colour }} />
            {c.driver || c.stream}
            {c.car ? <span className="dim"> · {c.car}</span> : null}
          </span>
        ))}
      </div>
      <div className="laps-toolbar">
        <label>
          Car
          <select value={car} onChange={(ev) => setCar(ev.target.value)} aria-label="show laps of car">
            <option value="">All cars</option>
            {detail.cars.map((c) => (
              <option key={c.stream} value={c.stream}>
                {c.driver || c.stream}
              </option>
            ))}
          </select>
        </label>
        <button
          type="button"
          className="button button-primary"
          data-testid="compare-button"
          disabled={picked.length < 2}
          onClick={() => navigate(compareHref(picked.map((l) => ({ session: detail.id, stream: l.stream, lap: l.lap }))))}
        >
          Compare {picked.length} laps
        </button>
        {picked.length > 0 ? (
          <button type="button" className="button" onClick={() => setPicks([])}>
            Clear
          </button>
        ) : null}
        <span className="hint">{picked.length < 2 ? "Pick two or more timed laps to compare them." : "The first lap picked is the reference."}</span>
      </div>
      {detail.laps.length === 0 ? (
        <p className="empty">No laps stored for this session yet.</p>
      ) : (
        <LapsTable detail={detail} picks={picks} onPick={onPick} car={car} />
      )}
    </main>
  );
}
