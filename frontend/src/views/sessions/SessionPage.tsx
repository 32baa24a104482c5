/** One session: cars and laps (placeholder). */
export function SessionPage({ sessionId }: { sessionId: string }) {
  return <main className="page" data-testid="session-page" data-session={sessionId} />;
}
