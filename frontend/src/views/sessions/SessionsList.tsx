/** Stored sessions (placeholder). */
export function SessionsList() {
  return <main className="page" data-testid="sessions-page" />;
}
