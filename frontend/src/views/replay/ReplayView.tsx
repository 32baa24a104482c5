/** Replay (placeholder). */
export function ReplayView({ sessionId }: { sessionId: string }) {
  return <main className="page" data-testid="replay-view" data-session={sessionId} />;
}
