/**
 * Top bar: app name, session and track, the car selector and the connection indicator.
 * Re-renders only when UI state changes (a few times per session).
 */

import { useUi } from "../state/ui";
import type { StreamInfo } from "../protocol/viewer";

function carLabel(s: StreamInfo): string {
  return [s.name, s.driver, s.car].filter(Boolean).join(" · ");
}

export function Header() {
  const sessionId = useUi((s) => s.sessionId);
  const track = useUi((s) => s.track);
  const streams = useUi((s) => s.streams);
  const selected = useUi((s) => s.selectedStream);
  const selectStream = useUi((s) => s.selectStream);
  const connection = useUi((s) => s.connection);
  const detail = useUi((s) => s.connectionDetail);

  return (
    <header className="header">
      <div className="brand">pitwire</div>
      <div className="session" title="session · track">
        <span data-testid="session-id">{sessionId ?? "no session"}</span>
        {track ? <span className="track"> · {track}</span> : null}
      </div>
      <div className="spacer" />
      <label className="car-select">
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
        {connection}
      </div>
    </header>
  );
}
