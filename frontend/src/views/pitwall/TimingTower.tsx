/**
 * The timing tower: one row per car with place, car, lap, last and best lap, gap to the
 * leader, interval to the car ahead and pit status. React creates the rows when the car list
 * changes; a drawer on the shared rAF loop feeds every car's new samples to a `TimingBoard`
 * and, at most UPDATE_HZ times a second, writes the cells with `textContent` and moves the
 * rows into running order with a transform (no re-render). Clicking a row focuses that car.
 */

import { useEffect, useMemo, useRef } from "react";
import { formatLapTime, type SessionDetail } from "../../api/detail";
import { indexLaps, lapsAt, overallBest, type CarLaps, type LapsNow } from "../../analysis/laptimes";
import { formatGap, TimingBoard, type TimingRow } from "../../analysis/timing";
import type { TimeRing } from "../../data/ring";
import { telemetry } from "../../data/streams";
import { debug } from "../../debug";
import { useUi } from "../../state/ui";
import { onFrame } from "../../ui/loop";
import type { PitCar } from "./cars";

const UPDATE_HZ = 5;

/** The cells a drawer writes, per row. */
interface RowEls {
  row: HTMLElement;
  place: HTMLElement;
  lap: HTMLElement;
  last: HTMLElement;
  best: HTMLElement;
  gap: HTMLElement;
  interval: HTMLElement;
  pit: HTMLElement;
  /** Row slot shown (-1 = none yet). */
  slot: number;
}

const CELLS = ["place", "lap", "last", "best", "gap", "interval", "pit"] as const;

function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

function findRows(list: HTMLElement): Map<string, RowEls> {
  const rows = new Map<string, RowEls>();
  for (const row of list.querySelectorAll<HTMLElement>("[data-car]")) {
    const cell = (name: string): HTMLElement => row.querySelector<HTMLElement>(`[data-cell="${name}"]`) ?? row;
    const [place, lap, last, best, gap, interval, pit] = CELLS.map(cell) as [HTMLElement, HTMLElement, HTMLElement, HTMLElement, HTMLElement, HTMLElement, HTMLElement];
    rows.set(row.dataset.car ?? "", { row, place, lap, last, best, gap, interval, pit, slot: -1 });
  }
  return rows;
}

/** Feed `board` the samples of `ring` newer than the last one fed (all after a seek back). */
function feed(board: TimingBoard, name: string, ring: TimeRing, fedUpTo: Map<string, number>): void {
  const times = ring.times();
  const n = times.length;
  const newest = times[n - 1];
  if (newest === undefined) return;
  let from = fedUpTo.get(name) ?? -Infinity;
  if (newest < from) from = -Infinity; // the ring restarted (replay seek back)
  let i = n;
  while (i > 0 && (times[i - 1] ?? -Infinity) > from) i--;
  if (i === n) return;
  const lap = ring.values("lap");
  const dist = ring.values("lap_distance");
  const speed = ring.values("speed");
  const pos = ring.values("position");
  if (lap === undefined || dist === undefined) return;
  for (let k = i; k < n; k++) {
    board.observe(name, times[k] ?? Number.NaN, lap[k] ?? Number.NaN, dist[k] ?? Number.NaN, speed?.[k] ?? Number.NaN, pos?.[k] ?? 0);
  }
  fedUpTo.set(name, newest);
}

/** Drop cars no longer listed from the board and the per-car maps, so they hold no place. */
function forgetGone(board: TimingBoard, cars: readonly PitCar[], ...perCar: Map<string, unknown>[]): void {
  for (const map of perCar) {
    for (const name of map.keys()) {
      if (cars.some((c) => c.name === name)) continue;
      board.forget(name);
      map.delete(name);
    }
  }
}

/** Show the row in `slot` (0 = top) and note its place (0 = none) in `data-place`. */
function moveRow(els: RowEls, slot: number, place: number): void {
  if (els.slot !== slot) {
    els.slot = slot;
    els.row.style.transform = `translateY(${slot * 100}%)`;
  }
  const text = place > 0 ? String(place) : "";
  if (els.row.dataset.place !== text) els.row.dataset.place = text;
}

function writeTiming(els: RowEls, row: TimingRow, laps: LapsNow, best: number): void {
  setText(els.place, String(row.place));
  setText(els.lap, String(row.lap));
  setText(els.last, formatLapTime(laps.last));
  setText(els.best, formatLapTime(laps.best));
  setText(els.gap, row.place === 1 ? "Leader" : formatGap(row.gap, row.gapLaps));
  setText(els.interval, row.place === 1 ? "" : formatGap(row.interval, row.intervalLaps));
  setText(els.pit, laps.pit);
  els.best.classList.toggle("overall-best", laps.best === best);
  els.last.classList.toggle("overall-best", laps.last === best);
  els.last.classList.toggle("personal-best", laps.last === laps.best && laps.last !== best);
  els.pit.classList.toggle("in-pit", laps.pit !== "");
}

function writeBlank(els: RowEls): void {
  for (const el of [els.place, els.lap, els.gap, els.interval, els.pit]) setText(el, "");
  setText(els.last, "—");
  setText(els.best, "—");
}

/** Every car's lap results at `now` [s] into `out` (entries reused); returns the overall best lap [s]. */
function lapResults(cars: readonly PitCar[], index: Map<string, CarLaps>, now: number, out: Map<string, LapsNow>): number {
  for (const car of cars) {
    let laps = out.get(car.name);
    if (laps === undefined) {
      laps = { last: Number.NaN, best: Number.NaN, pit: "" };
      out.set(car.name, laps);
    }
    lapsAt(index.get(car.name), now, laps);
  }
  return overallBest(out.values());
}

interface TowerProps {
  cars: readonly PitCar[];
  detail: SessionDetail | null;
}

export function TimingTower({ cars, detail }: TowerProps) {
  const listRef = useRef<HTMLDivElement>(null);
  const selected = useUi((s) => s.selectedStream);
  const index = useMemo(() => indexLaps(detail?.laps ?? []), [detail?.laps]);
  const state = useRef({ cars, index, rows: new Map<string, RowEls>(), dirty: true });

  useEffect(() => {
    const s = state.current;
    s.cars = cars;
    s.index = index;
    s.rows = listRef.current === null ? new Map() : findRows(listRef.current);
    s.dirty = true;
  }, [cars, index]);

  useEffect(() => {
    const board = new TimingBoard();
    const fedUpTo = new Map<string, number>();
    const results = new Map<string, LapsNow>();
    const placed = new Set<string>();
    let lastUpdate = -Infinity;
    return onFrame((now) => {
      const s = state.current;
      if (!s.dirty && now - lastUpdate < 1000 / UPDATE_HZ) return;
      lastUpdate = now;
      if (s.dirty) forgetGone(board, s.cars, fedUpTo, results);
      s.dirty = false;
      for (const car of s.cars) {
        const ring = telemetry.ring(car.name);
        if (ring !== undefined) feed(board, car.name, ring, fedUpTo);
      }
      const best = lapResults(s.cars, s.index, telemetry.newestTime(), results);
      const order = board.rank();
      let slot = 0;
      placed.clear();
      for (const row of order) {
        const els = s.rows.get(row.name);
        const laps = results.get(row.name);
        if (els === undefined || laps === undefined) continue;
        placed.add(row.name);
        moveRow(els, slot++, row.place);
        writeTiming(els, row, laps, best);
      }
      for (const [name, els] of s.rows) {
        if (placed.has(name)) continue;
        moveRow(els, slot++, 0);
        writeBlank(els);
      }
      debug.towerUpdates++;
    });
  }, []);

  return (
    <section className="tower" data-testid="timing-tower" aria-label="timing tower">
      <div className="tower-head" aria-hidden="true">
        <span>P</span>
        <span>Car</span>
        <span>Lap</span>
        <span>Last</span>
        <span>Best</span>
        <span>Gap</span>
        <span>Int</span>
        <span />
      </div>
      <div className="tower-rows" ref={listRef} style={{ height: `calc(${cars.length} * var(--tower-row-h))` }}>
        {cars.map((car) => (
          <button
            type="button"
            key={car.name}
            className={car.name === selected ? "tower-row focused" : "tower-row"}
            data-testid="tower-row"
            data-car={car.name}
            aria-pressed={car.name === selected}
            title={[car.name, car.driver, car.car].filter(Boolean).join(" · ")}
            onClick={() => useUi.getState().selectStream(car.name)}
          >
            <span data-cell="place" className="cell-place" />
            <span className="cell-car">
              <i className="swatch" style={{ background: car.colour }} />
              <span className="car-driver">{car.abbrev}</span>
              <span className="car-name">{car.number}</span>
            </span>
            <span data-cell="lap" className="cell-num" />
            <span data-cell="last" className="cell-time" />
            <span data-cell="best" className="cell-time" />
            <span data-cell="gap" className="cell-time" />
            <span data-cell="interval" className="cell-time" />
            <span data-cell="pit" className="cell-pit" />
          </button>
        ))}
      </div>
    </section>
  );
}
