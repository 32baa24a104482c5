"""FastF1-shaped test data: a session object with the attributes and DataFrame columns of a
loaded ``fastf1.core.Session`` (car_data, pos_data, laps, track_status, t0_date, event, ...),
built offline with pandas at live timing's real, irregular rates (car ≈240 ms, position
≈220 ms per sample, each on its own clock).

The race: drivers 1 (VER), 16 (LEC) and 44 (HAM); the green flag at session time
``START`` s; ``LAPS`` laps of ``LAP`` s each (HAM's a bit slower); HAM pits at the end of lap 2
and leaves on HARDs; LEC's car data has a hole of ``HOLE`` (3 s) in lap 2; a yellow flag from
``START + 10`` to ``START + 15`` s. The car runs round a circle of radius 500 m; its speed is
``speed_at`` (km/h) of the session time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

T0 = pd.Timestamp("2024-09-01 13:00:00")
START = 60.0  # session time of the green flag [s]
LAP = 20.0  # lap time of VER and LEC [s]
LAPS = 3
HOLE = (START + 25.0, START + 28.0)  # LEC's car data is missing in here [s]
DRIVERS = {
    "1": ("VER", "Max Verstappen", "Red Bull Racing", "3671C6", 0.0),
    "16": ("LEC", "Charles Leclerc", "Ferrari", "E8002D", 0.0),
    "44": ("HAM", "Lewis Hamilton", "Mercedes", "27F4D2", 1.0),  # 1 s slower per lap
}


def speed_at(t: np.ndarray) -> np.ndarray:
    """The fake speed trace [km/h] at session times ``t`` [s]."""
    return 200.0 + 80.0 * np.sin(2 * math.pi * t / LAP)


def _times(rng: np.random.Generator, period: float, start: float, stop: float) -> np.ndarray:
    """Session times [s] from start to stop, ``period`` apart ± 30 ms of jitter."""
    n = int((stop - start) / period)
    t = start + np.arange(n) * period + rng.uniform(-0.03, 0.03, n)
    return np.round(np.sort(t), 3)


def _td(seconds: Any) -> Any:
    return pd.to_timedelta(seconds, unit="s")


def car_frame(rng: np.random.Generator, start: float, stop: float) -> pd.DataFrame:
    """Car data as fastf1 has it: Date, SessionTime, Speed, RPM, nGear, Throttle, Brake,
    DRS, Source."""
    t = _times(rng, 0.24, start, stop)
    speed = np.round(speed_at(t))
    return pd.DataFrame(
        {
            "Date": T0 + _td(t),
            "SessionTime": _td(t),
            "Time": _td(t - t[0]),
            "RPM": np.round(8000 + speed * 20),
            "Speed": speed,
            "nGear": np.clip((speed // 40).astype(int), 1, 8),
            "Throttle": np.where(speed > 200, 100.0, 35.0),
            "Brake": speed < 150,
            "DRS": np.where(speed > 260, 12, 0),
            "Source": "car",
        }
    )


def pos_frame(rng: np.random.Generator, start: float, stop: float, lap: float) -> pd.DataFrame:
    """Position data as fastf1 has it: Date, SessionTime, X, Y, Z (1/10 m), Status."""
    t = _times(rng, 0.22, start, stop)
    angle = 2 * math.pi * (t - START) / lap
    return pd.DataFrame(
        {
            "Date": T0 + _td(t),
            "SessionTime": _td(t),
            "Time": _td(t - t[0]),
            "X": np.round(5000 * np.cos(angle)),
            "Y": np.round(5000 * np.sin(angle)),
            "Z": 120.0,
            "Status": "OnTrack",
            "Source": "pos",
        }
    )


def laps_frame() -> pd.DataFrame:
    """The Laps table (one row per driver and lap) with fastf1's columns and dtypes."""
    rows = []
    for number, (abbr, _, team, _, slower) in DRIVERS.items():
        lap_time = LAP + slower
        for n in range(1, LAPS + 1):
            start = START + (n - 1) * lap_time
            pit_in = abbr == "HAM" and n == 2
            pit_out = abbr == "HAM" and n == 3
            s1 = None if n == 1 else lap_time * 0.3
            rows.append(
                {
                    "Time": _td(start + lap_time),
                    "Driver": abbr,
                    "DriverNumber": number,
                    "LapTime": _td(lap_time),
                    "LapNumber": float(n),
                    "Stint": 2.0 if pit_out else 1.0,
                    "PitOutTime": _td(start) if pit_out else pd.NaT,
                    "PitInTime": _td(start + lap_time - 1) if pit_in else pd.NaT,
                    "Sector1Time": pd.NaT if s1 is None else _td(s1),
                    "Sector2Time": _td(lap_time * 0.4),
                    "Sector3Time": _td(lap_time * 0.3),
                    "Compound": "HARD" if pit_out else "MEDIUM",
                    "TyreLife": 1.0 if pit_out else float(n + 2),
                    "Team": team,
                    "LapStartTime": _td(start),
                    "LapStartDate": T0 + _td(start),
                }
            )
    return pd.DataFrame(rows)


def track_status_frame() -> pd.DataFrame:
    """Track status changes: Time (session time), Status (code as str), Message."""
    return pd.DataFrame(
        {
            "Time": _td([0.0, START + 10, START + 15]),
            "Status": ["1", "2", "1"],
            "Message": ["AllClear", "Yellow", "AllClear"],
        }
    )


class FakeSession:
    """The attributes of a loaded ``fastf1.core.Session`` that pitwire reads."""

    def __init__(self, seed: int = 7, missing: tuple[str, ...] = ()) -> None:
        rng = np.random.default_rng(seed)
        self.name = "Race"
        self.date = pd.Timestamp("2024-09-01 13:00:00")
        self.t0_date = T0
        self.event = pd.Series(
            {
                "RoundNumber": 16,
                "Country": "Italy",
                "Location": "Monza",
                "EventName": "Italian Grand Prix",
                "EventDate": pd.Timestamp("2024-09-01"),
            }
        )
        self.drivers = list(DRIVERS)
        self._results = {
            number: pd.Series(
                {
                    "DriverNumber": number,
                    "Abbreviation": abbr,
                    "FullName": full,
                    "TeamName": team,
                    "TeamColor": colour,
                }
            )
            for number, (abbr, full, team, colour, _) in DRIVERS.items()
        }
        stop = START + LAPS * (LAP + 1) + 2
        self.car_data: dict[str, pd.DataFrame] = {}
        self.pos_data: dict[str, pd.DataFrame] = {}
        for number, (_, _, _, _, slower) in DRIVERS.items():
            if number in missing:
                continue
            car = car_frame(rng, START - 5, stop)
            if number == "16":
                t = car["SessionTime"].dt.total_seconds()
                car = car[(t < HOLE[0]) | (t > HOLE[1])].reset_index(drop=True)
            self.car_data[number] = car
            self.pos_data[number] = pos_frame(rng, START - 5, stop, LAP + slower)
        self.laps = laps_frame()
        self.track_status = track_status_frame()

    def get_driver(self, identifier: str) -> pd.Series:
        return self._results[identifier]
