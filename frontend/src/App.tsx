/**
 * The page: resolve which session to show (`?session=ID`, else the first live one, else the
 * newest; poll every 2 s while there is none; follow to a new live session when an auto-chosen
 * one ends), connect the socket worker to it, and lay out header, gauges and chart.
 */

import { useEffect } from "react";
import { chooseSession, fetchSessions, switchTarget, type SessionSummary } from "./api/sessions";
import { connectSession } from "./live/connection";
import { useUi } from "./state/ui";
import { Chart } from "./ui/Chart";
import { Gauges } from "./ui/Gauges";
import { Header } from "./ui/Header";

const POLL_MS = 2000; // while there is no session to show
const FOLLOW_MS = 5000; // while showing an auto-chosen one: has it ended, is a new one live?

function useSessionChoice(): void {
  useEffect(() => {
    const requested = new URLSearchParams(location.search).get("session");
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ui = useUi.getState;

    async function poll(): Promise<void> {
      let sessions: SessionSummary[] = [];
      let reachable = true;
      try {
        sessions = await fetchSessions(abort.signal);
      } catch (err) {
        if (abort.signal.aborted) return;
        console.warn("pitwire: cannot list sessions", err);
        reachable = false;
      }
      if (abort.signal.aborted) return;
      const current = ui().sessionId;
      if (current === null) {
        const choice = chooseSession(sessions, requested);
        if (choice !== null) {
          ui().chooseSession(choice.id, choice.track);
          if (requested) return; // an explicit ?session= is never switched away from
        } else {
          ui().setSessionPhase(reachable ? "none" : "unreachable");
          ui().setConnection("disconnected", reachable ? "no session" : "server unreachable");
          timer = setTimeout(() => void poll(), POLL_MS);
          return;
        }
      } else if (reachable) {
        const next = switchTarget(sessions, current);
        if (next !== null) ui().chooseSession(next.id, next.track);
      }
      timer = setTimeout(() => void poll(), FOLLOW_MS);
    }

    void poll();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, []);
}

function Waiting() {
  const phase = useUi((s) => s.phase);
  return (
    <main className="waiting" data-testid="waiting">
      {phase === "none" ? (
        <p>
          No sessions yet — start one with <code>pitwire demo</code>
        </p>
      ) : phase === "unreachable" ? (
        <p>Cannot reach the pitwire server — retrying…</p>
      ) : (
        <p>Loading sessions…</p>
      )}
    </main>
  );
}

export function App() {
  useSessionChoice();
  const phase = useUi((s) => s.phase);
  const sessionId = useUi((s) => s.sessionId);

  useEffect(() => {
    if (sessionId !== null) connectSession(sessionId);
  }, [sessionId]);

  return (
    <div className="app">
      <Header />
      {phase === "ready" ? (
        <main className="dash">
          <Gauges />
          <Chart />
        </main>
      ) : (
        <Waiting />
      )}
    </div>
  );
}
