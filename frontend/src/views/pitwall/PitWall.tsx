/**
 * The pit wall, live or replayed alike: the timing tower on the left; gauges, the track map
 * and the focused car's charts on the right; a banner while the server reports this viewer
 * lagging. Every panel is fed from the ring buffers by the shared rAF loop; React renders
 * only when the car list, the focus, the chosen charts or the connection change.
 */

import { useMemo, useRef } from "react";
import type { CarInfo, SessionDetail } from "../../api/detail";
import { useUi } from "../../state/ui";
import { Gauges } from "../../ui/Gauges";
import { pitCars, sameCars, type PitCar } from "./cars";
import { Charts } from "./Charts";
import { TimingTower } from "./TimingTower";
import { TrackMap } from "./TrackMap";
import "./pitwall.css";

export interface PitWallProps {
  sessionId: string;
  /** The session's cars, laps and outline; null until fetched. */
  detail: SessionDetail | null;
}

const NO_CARS: CarInfo[] = [];

/** The car list, kept the same object while it draws the same (detail revalidation). */
function useCars(detail: SessionDetail | null): readonly PitCar[] {
  const advertised = useUi((s) => s.streams);
  const detailCars = detail?.cars ?? NO_CARS;
  const kept = useRef<PitCar[]>([]);
  return useMemo(() => {
    const next = pitCars(advertised, detailCars);
    if (!sameCars(kept.current, next)) kept.current = next;
    return kept.current;
  }, [advertised, detailCars]);
}

function LagBanner() {
  const lagging = useUi((s) => s.connection === "lagging");
  if (!lagging) return null;
  return (
    <div className="lag-banner" data-testid="lag-banner" role="status">
      Server reports this viewer lagging — frames are being conflated
    </div>
  );
}

export function PitWall({ sessionId, detail }: PitWallProps) {
  const cars = useCars(detail);
  const geometry = detail?.id === sessionId ? detail.geometry : null;
  return (
    <main className="pitwall" data-testid="pitwall">
      <LagBanner />
      <TimingTower key={`tower-${sessionId}`} cars={cars} detail={detail} />
      <Gauges />
      <TrackMap key={`map-${sessionId}`} cars={cars} geometry={geometry} />
      <Charts />
    </main>
  );
}
