/**
 * The newest problem the server or the socket worker reported (a refused replay or control,
 * the store unavailable, a malformed frame), under the header until dismissed or resolved.
 */

import { useUi } from "../state/ui";

export function NoticeBar() {
  const notice = useUi((s) => s.notice);
  const setNotice = useUi((s) => s.setNotice);
  if (notice === null) return null;
  return (
    <div className={`notice notice-${notice.level}`} data-testid="notice" role="alert">
      <span className="notice-code">{notice.code.replace(/_/g, " ")}</span>
      <span className="notice-message">{notice.message}</span>
      <button type="button" aria-label="Dismiss" onClick={() => setNotice(null)}>
        ✕
      </button>
    </div>
  );
}
