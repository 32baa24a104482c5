/**
 * `GET /api/sessions` and the choice of which session to show: `?session=ID` if given, else
 * the first live session, else the first (the list is newest first).
 */

export interface SessionSummary {
  session_id: string;
  track: string;
  source: string;
  /** Start time [ns since epoch]; may exceed 2^53, so treat as approximate. */
  started_ns: number;
  live: boolean;
  streams: number;
  frames: number;
}

/** Validate the `/api/sessions` body; throws naming the first bad entry. */
export function parseSessions(body: unknown): SessionSummary[] {
  if (!Array.isArray(body)) throw new Error("/api/sessions: expected a JSON array");
  return body.map((item: unknown, i) => {
    if (typeof item !== "object" || item === null) throw new Error(`/api/sessions[${i}]: expected an object`);
    const o = item as Record<string, unknown>;
    if (typeof o.session_id !== "string") throw new Error(`/api/sessions[${i}].session_id: expected a string`);
    return {
      session_id: o.session_id,
      track: typeof o.track === "string" ? o.track : "",
      source: typeof o.source === "string" ? o.source : "",
      started_ns: typeof o.started_ns === "number" ? o.started_ns : 0,
      live: o.live === true,
      streams: typeof o.streams === "number" ? o.streams : 0,
      frames: typeof o.frames === "number" ? o.frames : 0,
    };
  });
}

export async function fetchSessions(signal?: AbortSignal): Promise<SessionSummary[]> {
  const res = await fetch("/api/sessions", { signal, headers: { Accept: "application/json" } });
  if (!res.ok) throw new Error(`/api/sessions: HTTP ${res.status}`);
  return parseSessions(await res.json());
}

/** The session to show, or null when there is none to choose from and none was asked for. */
export function chooseSession(sessions: readonly SessionSummary[], requested: string | null): { id: string; track: string } | null {
  if (requested) {
    return { id: requested, track: sessions.find((s) => s.session_id === requested)?.track ?? "" };
  }
  const pick = sessions.find((s) => s.live) ?? sessions[0];
  return pick === undefined ? null : { id: pick.session_id, track: pick.track };
}

/**
 * While showing an auto-chosen session: the live session to switch to when the current one is
 * no longer live (ended, or gone after a server restart), else null.
 */
export function switchTarget(sessions: readonly SessionSummary[], current: string): { id: string; track: string } | null {
  if (sessions.some((s) => s.session_id === current && s.live)) return null;
  const live = sessions.find((s) => s.live && s.session_id !== current);
  return live === undefined ? null : { id: live.session_id, track: live.track };
}
