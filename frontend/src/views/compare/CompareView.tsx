/** Lap comparison (placeholder). */
export function CompareView() {
  return <main className="page" data-testid="compare-view" />;
}
