/**
 * The compare view's "Add lap" row: pick a stored session (newest first), one of its cars and
 * one of that car's timed laps, and hand the lap to `onAdd` (the view appends it to `?laps=`).
 * Sessions across the whole store can be mixed, so today's practice can be laid over last
 * week's race without writing the address by hand.
 *
 * The session list is fetched once on mount, a session's detail when it is picked. Choices the
 * user has not made follow defaults: the session of the first compared lap (else the newest
 * with laps), the first car with a timed lap not compared yet, and that car's best lap (or its
 * first one not compared yet).
 */

import { useEffect, useMemo, useState, type FormEvent, type ReactNode } from "react";
import { sameLap, type LapRef } from "../../analysis/compare";
import { bestLaps, formatLapTime, useSessionDetail, type Lap } from "../../api/detail";
import { fetchSessions, type SessionSummary } from "../../api/sessions";

type SessionsState = { phase: "loading" } | { phase: "error"; error: string } | { phase: "done"; sessions: SessionSummary[] };

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The stored sessions, newest first (by start; the server's order breaks ties). */
function useSessionList(attempt: number): SessionsState {
  const [state, setState] = useState<SessionsState>({ phase: "loading" });
  useEffect(() => {
    const abort = new AbortController();
    setState({ phase: "loading" });
    fetchSessions(abort.signal).then(
      (sessions) => {
        if (abort.signal.aborted) return;
        const newest = sessions.map((s, i) => ({ s, i })).sort((a, b) => b.s.started_ns - a.s.started_ns || a.i - b.i);
        setState({ phase: "done", sessions: newest.map(({ s }) => s) });
      },
      (err: unknown) => {
        if (!abort.signal.aborted) setState({ phase: "error", error: message(err) });
      },
    );
    return () => abort.abort();
  }, [attempt]);
  return state;
}

/** "22 Nov 2026, 03:42" (local) for a start [ns since epoch]; "" when unknown. */
function formatDate(ns: number): string {
  if (!(ns > 0)) return "";
  return new Date(ns / 1e6).toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** "stored-race · sim-ring · 22 Nov 2026, 03:42" (+ live / no laps). */
function sessionLabel(s: SessionSummary): string {
  const parts = [s.session_id, s.track, formatDate(s.started_ns)].filter((p) => p !== "");
  if (s.live) parts.push("live");
  if (s.laps === 0) parts.push("no laps");
  return parts.join(" · ");
}

/** "Lap 3 · 1:25.791" (+ best, + compared). */
function lapLabel(l: Lap, best: boolean, compared: boolean): string {
  return `Lap ${l.lap} · ${formatLapTime(l.lapTime)}${best ? " · best" : ""}${compared ? " · compared" : ""}`;
}

export function AddLap({ compared, onAdd }: { compared: readonly LapRef[]; onAdd: (lap: LapRef) => void }) {
  const [attempt, setAttempt] = useState(0);
  const list = useSessionList(attempt);
  const [chosenSession, setChosenSession] = useState<string | null>(null);
  const [chosenCar, setChosenCar] = useState<string | null>(null);
  const [chosenLap, setChosenLap] = useState<number | null>(null);

  const sessions = list.phase === "done" ? list.sessions : [];
  const listed = (id: string | undefined): id is string => id !== undefined && sessions.some((s) => s.session_id === id);
  const first = compared[0]?.session;
  const newest = (sessions.find((s) => s.laps !== 0) ?? sessions[0])?.session_id ?? null;
  const session = listed(chosenSession ?? undefined) ? chosenSession : listed(first) ? first : newest;

  const { detail: loaded, error: detailError } = useSessionDetail(session);
  const detail = loaded !== null && loaded.id === session ? loaded : null;

  const isCompared = (stream: string, lap: number): boolean => session !== null && compared.some((c) => sameLap(c, { session, stream, lap }));
  /** Timed laps per car, in lap order. */
  const timed = useMemo(() => {
    const out = new Map<string, Lap[]>();
    for (const l of detail?.laps ?? []) {
      if (l.lapTime === null) continue;
      const laps = out.get(l.stream) ?? [];
      laps.push(l);
      out.set(l.stream, laps);
    }
    for (const laps of out.values()) laps.sort((a, b) => a.lap - b.lap);
    return out;
  }, [detail]);
  const best = useMemo(() => bestLaps(detail?.laps ?? []), [detail]);

  const cars = detail?.cars ?? [];
  const withLaps = cars.filter((c) => (timed.get(c.stream)?.length ?? 0) > 0);
  const car =
    chosenCar !== null && withLaps.some((c) => c.stream === chosenCar)
      ? chosenCar
      : (withLaps.find((c) => timed.get(c.stream)?.some((l) => !isCompared(c.stream, l.lap)))?.stream ?? withLaps[0]?.stream ?? null);
  const laps = car === null ? [] : (timed.get(car) ?? []);
  const bestTime = car === null ? undefined : best.get(car);
  const bestLap = laps.find((l) => l.lapTime === bestTime);
  const lap =
    chosenLap !== null && laps.some((l) => l.lap === chosenLap)
      ? chosenLap
      : car !== null && bestLap !== undefined && !isCompared(car, bestLap.lap)
        ? bestLap.lap
        : (laps.find((l) => car !== null && !isCompared(car, l.lap))?.lap ?? laps[0]?.lap ?? null);
  const duplicate = car !== null && lap !== null && isCompared(car, lap);
  const ready = session !== null && car !== null && lap !== null && !duplicate;

  const submit = (ev: FormEvent): void => {
    ev.preventDefault();
    if (!ready || session === null || car === null || lap === null) return;
    onAdd({ session, stream: car, lap });
    setChosenLap(null);
  };

  let status: ReactNode = null;
  if (list.phase === "loading") {
    return (
      <div className="cmp-add" data-testid="add-lap">
        <span className="cmp-add-title">Add lap</span>
        <span className="dim" data-testid="add-lap-loading">
          Loading sessions…
        </span>
      </div>
    );
  }
  if (list.phase === "error") {
    return (
      <div className="cmp-add" data-testid="add-lap">
        <span className="cmp-add-title">Add lap</span>
        <span className="cmp-add-error" role="alert" data-testid="add-lap-error">
          {list.error}
        </span>
        <button type="button" className="button" onClick={() => setAttempt((n) => n + 1)}>
          Retry
        </button>
      </div>
    );
  }
  if (sessions.length === 0) {
    status = <span className="dim">No stored sessions yet.</span>;
  } else if (detailError !== "") {
    status = (
      <span className="cmp-add-error" role="alert" data-testid="add-lap-error">
        {detailError}
      </span>
    );
  } else if (detail === null) {
    status = <span className="dim" data-testid="add-lap-loading">Loading laps…</span>;
  } else if (withLaps.length === 0) {
    status = <span className="dim">No timed laps in this session.</span>;
  } else if (duplicate) {
    status = <span className="dim">Already compared.</span>;
  }

  return (
    <form className="cmp-add" data-testid="add-lap" aria-label="Add a lap to the comparison" onSubmit={submit}>
      <span className="cmp-add-title">Add lap</span>
      <select
        className="cmp-add-session"
        aria-label="Session"
        data-testid="add-lap-session"
        value={session ?? ""}
        disabled={sessions.length === 0}
        onChange={(ev) => {
          setChosenSession(ev.target.value);
          setChosenCar(null);
          setChosenLap(null);
        }}
      >
        {sessions.map((s) => (
          <option key={s.session_id} value={s.session_id}>
            {sessionLabel(s)}
          </option>
        ))}
      </select>
      <select
        aria-label="Car"
        data-testid="add-lap-car"
        value={car ?? ""}
        disabled={withLaps.length === 0}
        onChange={(ev) => {
          setChosenCar(ev.target.value);
          setChosenLap(null);
        }}
      >
        {detail === null ? null : cars.map((c) => (
          <option key={c.stream} value={c.stream} disabled={!timed.has(c.stream)}>
            {[c.driver || c.stream, c.car].filter((p) => p !== "").join(" · ")}
            {timed.has(c.stream) ? "" : " (no timed laps)"}
          </option>
        ))}
      </select>
      <select aria-label="Lap" data-testid="add-lap-lap" value={lap ?? ""} disabled={laps.length === 0} onChange={(ev) => setChosenLap(Number(ev.target.value))}>
        {laps.map((l) => (
          <option key={l.lap} value={l.lap}>
            {lapLabel(l, l.lapTime === bestTime, car !== null && isCompared(car, l.lap))}
          </option>
        ))}
      </select>
      <button type="submit" className="button button-primary" data-testid="add-lap-button" disabled={!ready}>
        Add
      </button>
      {status}
    </form>
  );
}
