/**
 * The live pit wall: resolve which session to show (`/live/{id}` or `?session=ID`, else the
 * first live one, else the newest; poll every 2 s while there is none; follow to a new live
 * session when an auto-chosen one ends), connect the socket worker to it, and show the pit
 * wall with the session's detail (cars, colours, laps, outline) revalidated every few seconds.
 */

import { useEffect } from "react";
import { useSessionDetail } from "../../api/detail";
import { chooseSession, fetchSessions, switchTarget, type SessionSummary } from "../../api/sessions";
import { connectSession, disconnectSession } from "../../live/connection";
import { followLiveHistory } from "../../live/history";
import { queryParam } from "../../router";
import { useUi } from "../../state/ui";
import { PitWall } from "../pitwall/PitWall";

const POLL_MS = 2000; // while there is no session to show
const FOLLOW_MS = 5000; // while showing an auto-chosen one: has it ended, is a new one live?
/** How often a live session's laps and outline are revalidated (ETag: cheap when unchanged). */
export const DETAIL_POLL_MS = 3000;

function useSessionChoice(requested: string | null): void {
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let warned = false;
    const ui = useUi.getState;
    ui().resetSession();

    async function poll(): Promise<void> {
      let sessions: SessionSummary[] = [];
      let reachable = true;
      try {
        sessions = await fetchSessions(abort.signal);
      } catch (err) {
        if (abort.signal.aborted) return;
        if (!warned) console.warn(`pitwire: cannot list sessions (${(err as Error).message}); retrying`);
        warned = true; // once per outage, not every poll
        reachable = false;
      }
      if (reachable) warned = false;
      if (abort.signal.aborted) return;
      const current = ui().sessionId;
      if (current === null) {
        const choice = chooseSession(sessions, requested);
        if (choice !== null) {
          ui().chooseSession(choice.id, choice.track);
          if (requested) return; // an explicit session is never switched away from
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
  }, [requested]);
}

export function Waiting() {
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

export function LiveView({ session }: { session: string | null }) {
  useSessionChoice(session ?? queryParam("session"));
  const phase = useUi((s) => s.phase);
  const sessionId = useUi((s) => s.sessionId);
  const { detail } = useSessionDetail(sessionId, DETAIL_POLL_MS);

  useEffect(() => {
    if (sessionId === null) return;
    connectSession(sessionId);
    return () => disconnectSession();
  }, [sessionId]);

  // Chart history once the session's first frame time and channels are known.
  const origin = detail?.id === sessionId ? detail.t0Ns : null;
  const channels = detail?.id === sessionId ? detail.channels.map((c) => c.name).join(",") : "";
  useEffect(() => {
    if (sessionId === null || origin === null || origin === 0 || channels === "") return;
    return followLiveHistory({ session: sessionId, t0Ns: origin, channels: channels.split(",") });
  }, [sessionId, origin, channels]);

  return phase === "ready" && sessionId !== null ? <PitWall sessionId={sessionId} detail={detail} /> : <Waiting />;
}
