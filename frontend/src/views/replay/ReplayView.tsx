/**
 * Replay: the pit wall driven by the server's replay clock, with transport controls. Opens at
 * `?t=` (seconds from the session's first frame), `?speed=` and `?car=`; the URL follows the
 * clock (on every `clock` message, so a reload or a shared link opens where you are).
 */

import { useEffect } from "react";
import { useSessionDetail } from "../../api/detail";
import { connectReplay, disconnectSession } from "../../live/connection";
import { queryParam } from "../../router";
import { useUi } from "../../state/ui";
import { PitWall } from "../pitwall/PitWall";
import { Transport } from "./Transport";
import { followReplayHistory } from "../../live/history";
import { speedFromQuery, startFromQuery } from "./transport";
import "./replay.css";

export function ReplayView({ sessionId }: { sessionId: string }) {
  const { detail, error } = useSessionDetail(sessionId);
  const ready = detail !== null;

  useEffect(() => {
    useUi.getState().resetSession();
  }, [sessionId]);

  useEffect(() => {
    if (detail === null) return;
    useUi.getState().chooseSession(detail.id, detail.track);
    connectReplay(detail.id, {
      t: startFromQuery(queryParam("t"), detail.t0Ns, detail.t1Ns),
      speed: speedFromQuery(queryParam("speed")),
      paused: queryParam("paused") === "1",
      delay: null,
    });
    const stopHistory = followReplayHistory({
      session: detail.id,
      t0Ns: detail.t0Ns,
      channels: detail.channels.map((c) => c.name),
    });
    return () => {
      stopHistory();
      disconnectSession();
    };
    // Connect once per session: later detail changes (none for a stored session) do not reopen.
  }, [ready, sessionId]);

  if (detail === null) {
    return (
      <main className="waiting" data-testid="replay-loading">
        {error ? (
          <p>
            Cannot open the replay: {error} — back to the <a href="/sessions">sessions</a>.
          </p>
        ) : (
          <p>Loading session {sessionId}…</p>
        )}
      </main>
    );
  }
  if (detail.frames === 0) {
    return (
      <main className="waiting" data-testid="replay-empty">
        <p>Session {sessionId} has no stored frames to replay yet.</p>
      </main>
    );
  }
  return (
    <div className="replay-view" data-testid="replay-view">
      <Transport detail={detail} />
      <PitWall sessionId={sessionId} detail={detail} />
    </div>
  );
}
