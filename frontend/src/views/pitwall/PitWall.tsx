/**
 * The pit wall (placeholder until the timing tower, track map and charts land): gauges and
 * the focused car's chart. Fed from the ring buffers, live or replayed alike.
 */

import type { SessionDetail } from "../../api/detail";
import { Chart } from "../../ui/Chart";
import { Gauges } from "../../ui/Gauges";

export interface PitWallProps {
  sessionId: string;
  /** The session's cars, laps and outline; null until fetched. */
  detail: SessionDetail | null;
}

export function PitWall(_props: PitWallProps) {
  return (
    <main className="dash">
      <Gauges />
      <Chart />
    </main>
  );
}
