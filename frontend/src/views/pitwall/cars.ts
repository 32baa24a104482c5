/**
 * The pit wall's car list: the cars the server advertises on the socket, merged with the
 * session detail's (which carries their colours, and may lag behind or know cars the socket
 * has not advertised yet). Changes a few times per session; the tower's rows and the map's
 * dots are built from it.
 */

import type { CarInfo } from "../../api/detail";
import type { StreamInfo } from "../../protocol/viewer";

/** Colours of cars the detail has none for, by list index (the server's palette). */
export const PALETTE = [
  "#e6194b", "#3cb44b", "#ffe119", "#4f8ef7", "#f58231", "#b36bff", "#42d4f4", "#f032e6",
  "#bfef45", "#fabed4", "#2fb8a8", "#dcbeff", "#c9894a", "#fffac8", "#ff7b7b", "#aaffc3",
  "#b8b83a", "#ffd8b1", "#8e9bff", "#a9a9a9",
] as const;

export interface PitCar {
  /** Stream name: the key of its ring buffer. */
  name: string;
  driver: string;
  car: string;
  /** `#rrggbb` */
  colour: string;
  /** Three letters for the tower and map: the driver's surname, else the stream name. */
  abbrev: string;
  /** The car's race number ("#27" of "GT3 #27"), "" when it has none. */
  number: string;
}

/** Advertised cars first (in their order), then any only the detail knows. */
export function pitCars(advertised: readonly StreamInfo[], detailCars: readonly CarInfo[]): PitCar[] {
  const known = new Map(detailCars.map((c) => [c.stream, c]));
  const names = advertised.map((s) => s.name);
  for (const c of detailCars) if (!names.includes(c.stream)) names.push(c.stream);
  return names.map((name, i) => {
    const info = known.get(name);
    const ad = advertised.find((s) => s.name === name);
    const driver = ad?.driver || info?.driver || "";
    return {
      name,
      driver,
      car: ad?.car || info?.car || "",
      colour: info?.colour ?? PALETTE[i % PALETTE.length] ?? "#a9a9a9",
      abbrev: abbreviate(driver, name),
      number: raceNumber(ad?.car || info?.car || ""),
    };
  });
}

/** "Lena Brandt" → "BRA"; no driver: the stream name's last part ("car-12" → "12"). */
export function abbreviate(driver: string, name: string): string {
  const surname = driver.trim().split(/\s+/).pop() ?? "";
  if (surname.length > 0) return surname.slice(0, 3).toUpperCase();
  return (name.split(/[-_\s]/).pop() || name).slice(0, 3).toUpperCase();
}

/** "GT3 #27" → "#27"; "" without a number. */
export function raceNumber(car: string): string {
  return /#\s*\d+/.exec(car)?.[0].replace(/\s/g, "") ?? "";
}

/** Whether two car lists would draw the same (so views keep their rows). */
export function sameCars(a: readonly PitCar[], b: readonly PitCar[]): boolean {
  return a.length === b.length && a.every((c, i) => {
    const d = b[i];
    return d !== undefined && c.name === d.name && c.colour === d.colour && c.driver === d.driver && c.car === d.car;
  });
}
