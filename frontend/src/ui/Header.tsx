/**
 * Top bar: app name, navigation, and on the pit wall (live or replay) the session and track,
 * the car selector and the connection indicator. Re-renders only when UI state or the route
 * changes (a few times per session).
 */

import { linkClick, type Route } from "../router";
import { useUi } from "../state/ui";
import type { StreamInfo } from "../protocol/viewer";
import "./header.css";

function carLabel(s: StreamInfo): string {
  return [s.name, s.driver, s.car].filter(Boolean).join(" · ");
}

function NavLink({ href, active, children }: { href: string; active: boolean; children: string }) {
  return (
    <a href={href} onClick={linkClick} className={active ? "nav-link active" : "nav-link"} aria-current={active ? "page" : undefined}>
      {children}
    </a>
  );
}

export function Header({ route }: { route: Route }) {
  const sessionId = useUi((s) => s.sessionId);
  const track = useUi((s) => s.track);
  const streams = useUi((s) => s.streams);
  const selected = useUi((s) => s.selectedStream);
  const selectStream = useUi((s) => s.selectStream);
  const connection = useUi((s) => s.connection);
  const detail = useUi((s) => s.connectionDetail);
  const mode = useUi((s) => s.mode);
  const pitWall = route.view === "live" || route.view === "replay";
  const selectedInfo = streams.find((s) => s.name === selected);
  const selectedLabel = selectedInfo === undefined ? undefined : carLabel(selectedInfo);

  return (
    <header className="header">
      <a className="brand" href="/" onClick={linkClick}>
        pitwire
      </a>
      <nav className="nav" aria-label="views">
        <NavLink href="/" active={route.view === "live"}>
          Live
        </NavLink>
        <NavLink href="/sessions" active={route.view === "sessions" || route.view === "session" || route.view === "replay"}>
          Sessions
        </NavLink>
        <NavLink href="/compare" active={route.view === "compare"}>
          Compare
        </NavLink>
      </nav>
      {pitWall ? (
        <>
          <div className="session" title={[sessionId ?? "no session", track].filter(Boolean).join(" · ")}>
            {mode === "replay" ? <span className="mode-badge">replay</span> : null}
            <span className="session-id" data-testid="session-id">
              {sessionId ?? "no session"}
            </span>
            {track ? <span className="track"> · {track}</span> : null}
          </div>
          <div className="header-end">
            <label className="car-select" title={selectedLabel}>
              <span>Car</span>
              <select
                data-testid="car-select"
                value={selected ?? ""}
                disabled={streams.length === 0}
                onChange={(ev) => selectStream(ev.target.value)}
              >
                {streams.length === 0 ? <option value="">no cars yet</option> : null}
                {streams.map((s) => (
                  <option key={s.name} value={s.name}>
                    {carLabel(s)}
                  </option>
                ))}
              </select>
            </label>
            <div data-testid="connection" className={`connection connection-${connection}`} title={detail}>
              {mode === "replay" && connection === "live" ? "connected" : connection}
            </div>
          </div>
        </>
      ) : (
        <div className="spacer" />
      )}
    </header>
  );
}
