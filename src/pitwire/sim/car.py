"""Simulated cars: parameters, a seeded field of entries, and their state stepped at a fixed dt.

:class:`CarState` holds every car of a field as numpy columns (one row per car) and steps them
all at once, so 20 cars cost about as much as one. Each car follows its own speed profile (the
lap-time-sim profile of :mod:`pitwire.sim.track` computed with the grip and braking its driver
uses); pedals, gear, rpm, steering, fuel and tyres are derived from what the car does.

Units are SI inside (m, s, m/s, kg, W, rad, L, °C, kPa gauge); the source converts to the
dashboard units of the standard channel set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from pitwire.sim.track import RHO_AIR, CarArrays, G, Track, drive_accel, speed_profiles

F64 = npt.NDArray[np.float64]

DRIVERS = (
    "Alex Moreau", "Kenji Tanaka", "Lena Brandt", "Marco Ricci", "Sofia Lindqvist",
    "Tom Hartley", "Inès Duval", "Rafael Costa", "Nina Kowalski", "Oscar Baptiste",
    "Hana Sato", "Pieter de Vries", "Chloé Martin", "Luca Bianchi", "Emma Novak",
    "Jonas Berg", "Aiko Mori", "Daniel Reyes", "Freya Olsen", "Mateo Silva",
    "Zoe Carter", "Yusuf Demir", "Clara Weiss", "Ben Okafor",
)  # fmt: skip
"""Fictional driver names for simulated entries."""

T_AIR = 25.0
"""Ambient temperature [°C] (tyre model)."""
_WHEEL_LAT = np.array([-1.0, 1.0, -1.0, 1.0])  # fl fr rl rr: + = loaded by a left turn
_WHEEL_LON = np.array([-1.0, -1.0, 1.0, 1.0])  # + = loaded by forward acceleration


@dataclass(frozen=True, slots=True)
class CarParams:
    """One entry: a GT3-like car and how hard its driver pushes (SI units).

    mass [kg], power [W] at the wheels, mu: tyre friction coefficient, max_brake_decel
    [m/s²]: what the brakes can do, vmax [m/s]: limiter, drag_area: Cd x A [m²],
    traction_share: weight share on the driven (rear) wheels, corner_drag: tyre drag per
    lateral force, engine_brake [N]: drag of the closed throttle, wheelbase [m],
    steering_ratio: steering-wheel angle per road-wheel angle, gear_ratios, final_drive,
    wheel_radius [m], idle/launch/upshift/downshift/redline rpm [1/min], fuel_capacity,
    fuel_start, fuel_reserve [L] (refilled at the line below the reserve), fuel_full/fuel_idle
    [L/s] at full and closed throttle, tyre_cold_pressure [kPa gauge at 20 °C],
    tyre_start_temp [°C], skill: share of the grip the driver uses in corners, brake_skill:
    share of the brakes the driver uses (below 1, so the car can always brake as planned),
    pace_spread: how much slower than ``skill`` the driver's slowest laps are (a fraction).
    """

    driver: str = "Sim Driver"
    number: int = 1
    mass: float = 1350.0
    power: float = 370e3
    mu: float = 1.6
    max_brake_decel: float = 15.0
    vmax: float = 80.5
    drag_area: float = 1.0
    traction_share: float = 0.56
    corner_drag: float = 0.08
    engine_brake: float = 1200.0
    wheelbase: float = 2.65
    steering_ratio: float = 13.0
    gear_ratios: tuple[float, ...] = (3.05, 2.25, 1.80, 1.50, 1.28, 1.12)
    final_drive: float = 3.1
    wheel_radius: float = 0.34
    idle_rpm: float = 1500.0
    launch_rpm: float = 4000.0
    upshift_rpm: float = 8000.0
    downshift_rpm: float = 5000.0
    redline_rpm: float = 8500.0
    fuel_capacity: float = 120.0
    fuel_start: float = 90.0
    fuel_reserve: float = 2.0
    fuel_full: float = 0.04
    fuel_idle: float = 0.0005
    tyre_cold_pressure: float = 138.0
    tyre_start_temp: float = 60.0
    skill: float = 0.97
    brake_skill: float = 0.95
    pace_spread: float = 0.003

    def __post_init__(self) -> None:
        if not 0.5 <= self.skill <= 1.0:
            raise ValueError(f"skill must be in [0.5, 1], not {self.skill}")
        if not 0.5 <= self.brake_skill <= 0.99:
            raise ValueError(f"brake_skill must be in [0.5, 0.99], not {self.brake_skill}")
        if not 1 <= len(self.gear_ratios) <= 10 or any(
            b >= a for a, b in zip(self.gear_ratios, self.gear_ratios[1:], strict=False)
        ):
            raise ValueError("gear_ratios must be 1-10 strictly decreasing ratios")
        if not self.idle_rpm < self.launch_rpm < self.downshift_rpm < self.upshift_rpm:
            raise ValueError("rpm points must rise: idle < launch < downshift < upshift")
        if not self.upshift_rpm <= self.redline_rpm:
            raise ValueError("upshift_rpm must not exceed redline_rpm")
        if not 0 <= self.pace_spread <= 0.05:
            raise ValueError(f"pace_spread must be in [0, 0.05], not {self.pace_spread}")
        if not 0 < self.fuel_start <= self.fuel_capacity:
            raise ValueError("fuel_start must be in (0, fuel_capacity]")

    def rpm_per_speed(self) -> F64:
        """Engine rpm per m/s of road speed in each gear [1/min per m/s]."""
        ratios = np.asarray(self.gear_ratios) * self.final_drive
        return ratios / self.wheel_radius * 60.0 / (2 * math.pi)

    def driven(self, pace: float = 1.0) -> CarParams:
        """The limits the driver drives to: grip x ``skill``, brakes x ``brake_skill``, both
        x ``pace`` (<= 1, a slightly slower lap)."""
        return replace(
            self,
            mu=self.mu * self.skill * pace,
            max_brake_decel=self.max_brake_decel * self.brake_skill * pace,
        )


def make_cars(n: int, seed: int) -> list[CarParams]:
    """A field of ``n`` entries, deterministic for ``seed``: drivers, race numbers, skills
    (the grid is in skill order, so cars spread out rather than overtake), fuel loads."""
    if not 1 <= n <= 100:
        raise ValueError(f"a field has 1 to 100 cars, not {n}")
    rng = np.random.default_rng(seed)
    # Skills fall strictly down the grid, each step wider than a driver's lap-to-lap pace
    # spread, so every car's profile is everywhere slower than the one ahead: no passing.
    spacing = min(0.01, 0.06 / n)
    skills = 0.99 - spacing * (np.arange(n) + 0.5 * rng.uniform(0.0, 1.0, n))
    brake_skills = np.clip(0.90 + (skills - 0.93), 0.85, 0.97)
    order = rng.permutation(len(DRIVERS))
    names = [DRIVERS[order[i % len(DRIVERS)]] for i in range(n)]
    numbers = rng.choice(np.arange(2, 100 if n <= 98 else 1000), size=n, replace=False)
    fuel = rng.uniform(70.0, 100.0, n)
    pressure = rng.uniform(134.0, 142.0, n)
    return [
        CarParams(
            driver=names[i] if i < len(DRIVERS) else f"{names[i]} {i // len(DRIVERS) + 1}",
            number=int(numbers[i]),
            skill=float(skills[i]),
            brake_skill=float(brake_skills[i]),
            pace_spread=0.45 * spacing,
            fuel_start=float(fuel[i]),
            tyre_cold_pressure=float(pressure[i]),
        )
        for i in range(n)
    ]


def _clip(x: F64, lo: F64 | float, hi: F64 | float) -> F64:
    """np.clip without its Python-level overhead (this runs a dozen times per tick)."""
    return np.minimum(np.maximum(x, lo), hi)


class CarState:
    """``n`` cars on ``track``, stepped together every ``dt`` [s]; one row per car.

    Cars start at rest on a staggered grid behind the start line (``lap_distance`` < 0 on the
    out lap), car 0 in front. Each lap a car drives one of ``paces`` profile variants (its
    grip and braking x 1 down to x (1 - pace_spread); blended over the lap so the target
    speed never jumps), chosen by a generator seeded with ``seed``, so laps differ a little.

    State columns (read them after :meth:`step`): t [s], distance [m] since the start,
    lap_distance [m], lap, lap_time [s], last_lap_time [s] (nan before the first lap), v
    [m/s], a [m/s²], x, y [m], heading [rad], curvature [1/m], gear, rpm [1/min], throttle,
    brake, clutch [0-1], steer [rad at the wheel], g_lat, g_lon [g], fuel [L], tyre_temp [°C]
    and tyre_press [kPa gauge] of shape (n, 4) in fl fr rl rr order, position (1 = leader).
    """

    def __init__(
        self,
        track: Track,
        params: Sequence[CarParams],
        dt: float,
        *,
        seed: int = 0,
        paces: int = 4,
        grid_front: float = 10.0,
        grid_gap: float = 8.0,
    ) -> None:
        if not params:
            raise ValueError("CarState needs at least one car")
        if paces < 1:
            raise ValueError(f"paces must be >= 1, not {paces}")
        if not dt > 0:
            raise ValueError(f"dt must be > 0, not {dt}")
        if len({len(p.gear_ratios) for p in params}) != 1:
            raise ValueError("all cars need the same number of gears")
        n, m = len(params), paces
        self.track, self.params, self.dt, self.n = track, tuple(params), float(dt), n
        self._rng = np.random.default_rng(seed)
        self._hw = CarArrays.of(self.params)
        self._brake_cap = self._hw.max_brake_decel
        self._k_rpm = np.stack([p.rpm_per_speed() for p in self.params])
        self._ngears = self._k_rpm.shape[1]
        col = self._col
        self._engine_brake, self._wheelbase = col("engine_brake"), col("wheelbase")
        self._steering_ratio, self._idle_rpm = col("steering_ratio"), col("idle_rpm")
        self._launch_rpm, self._redline_rpm = col("launch_rpm"), col("redline_rpm")
        self._upshift_rpm, self._downshift_rpm = col("upshift_rpm"), col("downshift_rpm")
        self._fuel_full, self._fuel_idle = col("fuel_full"), col("fuel_idle")
        self._fuel_start, self._fuel_reserve = col("fuel_start"), col("fuel_reserve")
        self._p_abs_cold = (col("tyre_cold_pressure") + 101.325)[:, None]
        driven = [
            p.driven(1.0 - p.pace_spread * j / max(m - 1, 1)) for p in self.params for j in range(m)
        ]
        self._profiles = speed_profiles(track, driven).reshape(n, m, -1)
        self._rows = np.arange(n)
        self._pace_now = np.zeros(n, dtype=np.intp)
        self._pace_next = self._rng.integers(m, size=n)
        self.tick = 0
        self.t = 0.0
        self.distance = -(grid_front + grid_gap * np.arange(n, dtype=np.float64))
        self.lap = np.zeros(n, dtype=np.int64)
        self.lap_distance = self.distance.copy()
        self.lap_time = np.zeros(n)
        self.last_lap_time = np.full(n, np.nan)
        self.v = np.zeros(n)
        self.a = np.zeros(n)
        self.x, self.y, self.heading, self.curvature = track.at(self.distance)
        self.gear = np.ones(n, dtype=np.int64)
        self.rpm = self._idle_rpm.copy()
        self.throttle = np.zeros(n)
        self.brake = np.zeros(n)
        self.clutch = np.ones(n)
        self._launching = np.ones(n, dtype=bool)
        self.steer = np.arctan(self._wheelbase * self.curvature) * self._steering_ratio
        self.g_lat = np.zeros(n)
        self.g_lon = np.zeros(n)
        self.fuel = self._fuel_start.copy()
        self.tyre_temp = np.repeat(col("tyre_start_temp")[:, None], 4, axis=1)
        self.tyre_press = self._pressure(self.tyre_temp)
        self.position = np.arange(1, n + 1, dtype=np.int64)

    def _col(self, name: str) -> F64:
        return np.array([getattr(p, name) for p in self.params], dtype=np.float64)

    def target_speed(self, lap_distance: F64) -> F64:
        """The speed [m/s] each car aims for at ``lap_distance`` [m] this lap."""
        prof = self._profiles
        pos = np.mod(lap_distance, self.track.length) / self.track.ds
        i0 = pos.astype(np.intp)
        f = pos - i0
        i0 %= prof.shape[2]
        i1 = (i0 + 1) % prof.shape[2]
        r, now, nxt = self._rows, self._pace_now, self._pace_next
        v_now = prof[r, now, i0] * (1 - f) + prof[r, now, i1] * f
        v_next = prof[r, nxt, i0] * (1 - f) + prof[r, nxt, i1] * f
        w = _clip(lap_distance / self.track.length, 0.0, 1.0)
        return v_now + w * (v_next - v_now)

    def _pressure(self, temp: F64) -> F64:
        """Gauge pressure [kPa] at ``temp`` [°C]: the gas law from the cold (20 °C) setting."""
        return self._p_abs_cold * (temp + 273.15) / 293.15 - 101.325

    def step(self) -> None:
        """Advance every car by ``dt``."""
        dt, hw, length = self.dt, self._hw, self.track.length
        v = self.v
        # Move with the speed held over the step, then pick the speed for the new place: the
        # profile there, within what the engine and the brakes can do in dt.
        distance = self.distance + v * dt
        lap = np.maximum(np.floor(distance / length), 0).astype(np.int64)
        lap_distance = distance - lap * length
        crossed = lap > self.lap
        self.lap_time += dt
        if crossed.any():
            since = lap_distance[crossed] / np.maximum(v[crossed], 1e-9)
            self.last_lap_time[crossed] = self.lap_time[crossed] - since
            self.lap_time[crossed] = since
            self._pace_now[crossed] = self._pace_next[crossed]
            self._pace_next[crossed] = self._rng.integers(
                self._profiles.shape[1], size=crossed.sum()
            )
            refuel = crossed & (self.fuel < self._fuel_reserve)
            self.fuel[refuel] = self._fuel_start[refuel]
        x, y, heading, k = self.track.at(lap_distance)
        v_new = _clip(
            self.target_speed(lap_distance),
            v - self._brake_cap * dt,
            v + drive_accel(v, self.curvature, hw) * dt,
        )
        v_new = np.maximum(v_new, 0.0)
        a = (v_new - v) / dt

        # Pedals explain the acceleration: throttle = the drive force needed over the most the
        # engine (or traction) gives; brake = the deceleration beyond coasting.
        v2 = v_new * v_new
        resist = 0.5 * RHO_AIR * hw.drag_area * v2 + hw.corner_drag * hw.mass * v2 * np.abs(k)
        drive_max = np.minimum(
            hw.power / np.maximum(v_new, 1.0), hw.mass * hw.mu * G * hw.traction_share
        )
        throttle = _clip((hw.mass * a + resist) / drive_max, 0.0, 1.0)
        coast = (resist + self._engine_brake) / hw.mass
        brake = _clip((-a - coast) / (self._brake_cap - coast), 0.0, 1.0)

        # Gearbox: one shift per step at the shift points; the clutch slips only at the launch.
        k_rpm = self._k_rpm
        rows = self._rows
        gear = self.gear
        in_gear = v_new * k_rpm[rows, gear - 1]
        gear = gear + ((in_gear > self._upshift_rpm) & (gear < self._ngears))
        gear = gear - ((in_gear < self._downshift_rpm) & (gear > 1))
        gear = np.where(self._launching, 1, gear)
        engine = v_new * k_rpm[rows, gear - 1]
        self._launching &= engine < self._launch_rpm
        clutch = np.where(self._launching, 1.0 - engine / self._launch_rpm, 0.0)
        rpm = _clip(engine, self._idle_rpm, self._redline_rpm)
        launch_rpm = self._idle_rpm + (self._launch_rpm - self._idle_rpm) * throttle
        rpm = np.where(self._launching, np.maximum(rpm, launch_rpm), rpm)

        # Tyres: each heads for a temperature set by the work it does (speed x its share of
        # the load x the g it carries) with a 20 s time constant; pressure follows the gas law.
        g_lat = v2 * k / G
        g_lon = a / G
        load = 1.0 + 0.35 * _WHEEL_LAT * g_lat[:, None] + 0.25 * _WHEEL_LON * g_lon[:, None]
        work = (
            v_new[:, None] * np.maximum(load, 0.1) * (np.abs(g_lat) + 0.6 * np.abs(g_lon))[:, None]
        )
        temp_eq = T_AIR + 20.0 + 70.0 * (1.0 - np.exp(-work / 40.0))
        self.tyre_temp += (temp_eq - self.tyre_temp) * (1.0 - math.exp(-dt / 20.0))
        self.tyre_press = self._pressure(self.tyre_temp)

        self.fuel = np.maximum(self.fuel - (self._fuel_idle + self._fuel_full * throttle) * dt, 0.0)
        self.tick += 1
        self.t = self.tick * dt
        self.distance, self.lap, self.lap_distance = distance, lap, lap_distance
        self.v, self.a = v_new, a
        self.x, self.y, self.heading, self.curvature = x, y, heading, k
        self.gear, self.rpm, self.clutch = gear, rpm, clutch
        self.throttle, self.brake = throttle, brake
        self.steer = np.arctan(self._wheelbase * k) * self._steering_ratio
        self.g_lat, self.g_lon = g_lat, g_lon
        self.position[np.argsort(-distance, kind="stable")] = np.arange(1, self.n + 1)
