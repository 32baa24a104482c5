"""Closed race tracks built from straights and arcs, and the lap-time-sim speed profile.

A track is a list of segments laid end to end from the start line (at the origin, heading
+x): a :class:`Straight` of ``length`` [m] or an :class:`Arc` of ``radius`` [m] turning
``angle`` [rad] to the ``left`` or ``right``. Positions are evaluated in closed form (an arc
is a chord of its circle), so :meth:`Track.at` is exact at any distance; the centreline is also
sampled every ~1 m by arc length (``s``, ``x``, ``y``, ``heading``, ``curvature``) for maps
and the speed profile.

Conventions (SI): x/y [m] in a flat world frame, heading [rad] counter-clockwise from +x and
wrapped to [-pi, pi), curvature [1/m] positive to the left.

Closure is checked, not hoped for: a track whose end misses its start by more than ``tol`` [m]
or whose end heading differs raises ``ValueError``. :func:`close_loop` makes a layout close
exactly by solving for the lengths of two non-parallel straights (a 2x2 linear system).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

G = 9.80665
"""Standard gravity [m/s²]."""
RHO_AIR = 1.2
"""Air density [kg/m³]."""


@dataclass(frozen=True, slots=True)
class Straight:
    """A straight of ``length`` [m]."""

    length: float

    def __post_init__(self) -> None:
        if not self.length > 0:
            raise ValueError(f"straight length must be > 0, not {self.length}")

    @property
    def curvature(self) -> float:
        return 0.0

    @property
    def turn(self) -> float:
        return 0.0


@dataclass(frozen=True, slots=True)
class Arc:
    """An arc of ``radius`` [m] turning ``angle`` [rad] (> 0) to the ``side``."""

    radius: float
    angle: float
    side: Literal["left", "right"]

    def __post_init__(self) -> None:
        if not (self.radius > 0 and self.angle > 0):
            raise ValueError(f"arc radius and angle must be > 0, not {self.radius}, {self.angle}")
        if self.side not in ("left", "right"):
            raise ValueError(f"arc side must be 'left' or 'right', not {self.side!r}")

    @property
    def length(self) -> float:
        return self.radius * self.angle

    @property
    def curvature(self) -> float:
        return (1.0 if self.side == "left" else -1.0) / self.radius

    @property
    def turn(self) -> float:
        """Signed heading change [rad], positive to the left."""
        return self.angle if self.side == "left" else -self.angle


Segment = Straight | Arc


def left(radius: float, degrees: float) -> Arc:
    """A left-hand arc of ``radius`` [m] through ``degrees``."""
    return Arc(radius, math.radians(degrees), "left")


def right(radius: float, degrees: float) -> Arc:
    """A right-hand arc of ``radius`` [m] through ``degrees``."""
    return Arc(radius, math.radians(degrees), "right")


def _wrap(angle: F64) -> F64:
    return np.mod(angle + math.pi, 2 * math.pi) - math.pi


def _layout(segments: Sequence[Segment]) -> tuple[F64, F64, F64, F64, F64, tuple[float, ...]]:
    """Start distance, x, y, heading (unwrapped) and curvature of each segment, and the end
    point ``(s, x, y, heading)`` of the last one."""
    n = len(segments)
    s0, x0, y0, h0, k = (np.zeros(n) for _ in range(5))
    s = x = y = h = 0.0
    for i, seg in enumerate(segments):
        s0[i], x0[i], y0[i], h0[i], k[i] = s, x, y, h, seg.curvature
        half = 0.5 * seg.turn
        chord = seg.length * (math.sin(half) / half if half else 1.0)
        x += chord * math.cos(h + half)
        y += chord * math.sin(h + half)
        h += seg.turn
        s += seg.length
    return s0, x0, y0, h0, k, (s, x, y, h)


def close_loop(segments: Sequence[Segment], stretch: tuple[int, int]) -> list[Segment]:
    """``segments`` with the two straights at indices ``stretch`` lengthened or shortened so
    the layout ends exactly at its start (the headings must already add up to a full turn).

    Changing a straight's length moves everything after it along that straight's direction, so
    the gap is closed by solving ``d_i u_i + d_j u_j = -gap`` for the two length changes.
    """
    i, j = stretch
    if not (isinstance(segments[i], Straight) and isinstance(segments[j], Straight)):
        raise ValueError("close_loop stretches straights only")
    _, _, _, h0, _, (_, x_end, y_end, _) = _layout(segments)
    a = np.array([[math.cos(h0[i]), math.cos(h0[j])], [math.sin(h0[i]), math.sin(h0[j])]])
    if abs(np.linalg.det(a)) < 1e-6:
        raise ValueError("close_loop needs two non-parallel straights")
    di, dj = np.linalg.solve(a, [-x_end, -y_end])
    out = list(segments)
    out[i] = Straight(segments[i].length + float(di))
    out[j] = Straight(segments[j].length + float(dj))
    return out


class Track:
    """A closed track: ``name``, ``segments`` and the centreline sampled every ~``step`` [m].

    length: lap length [m]; ds: sample spacing [m] (``length / n``, so samples tile the lap)
    s, x, y, heading, curvature: centreline samples [m, m, m, rad, 1/m]
    """

    def __init__(
        self, name: str, segments: Sequence[Segment], *, step: float = 1.0, tol: float = 1.0
    ) -> None:
        if not segments:
            raise ValueError("a track needs segments")
        if any(seg.length < 2 * step for seg in segments):
            raise ValueError(f"every segment must be at least {2 * step} m long")
        self.name = name
        self.segments: tuple[Segment, ...] = tuple(segments)
        self._s0, self._x0, self._y0, self._h0, self._k, end = _layout(self.segments)
        length, x_end, y_end, h_end = end
        self.closure_error = math.hypot(x_end, y_end)
        """Distance between the end of the last segment and the start line [m]."""
        heading_error = abs(math.remainder(h_end, 2 * math.pi))
        if self.closure_error > tol or heading_error > 1e-6:
            raise ValueError(
                f"track {name!r} does not close: end is {self.closure_error:.3f} m from the start"
                f" with heading off by {heading_error:.2e} rad"
            )
        self.length = length
        n = max(3, round(length / step))
        self.ds = length / n
        self.s: F64 = np.arange(n, dtype=np.float64) * self.ds
        self.x, self.y, self.heading, self.curvature = self.at(self.s)

    def __repr__(self) -> str:
        return f"Track({self.name!r}, length={self.length:.1f} m, segments={len(self.segments)})"

    def at(self, distance: npt.ArrayLike) -> tuple[F64, F64, F64, F64]:
        """``(x, y, heading, curvature)`` at ``distance`` [m] from the start line (vectorized;
        wraps around, so negative distances and later laps are fine)."""
        d = np.mod(np.asarray(distance, dtype=np.float64), self.length)
        i = np.searchsorted(self._s0, d, side="right") - 1
        u = d - self._s0[i]
        k = self._k[i]
        h0 = self._h0[i]
        half = 0.5 * k * u
        chord = u * np.sinc(half / math.pi)  # the chord of the arc walked so far
        x = self._x0[i] + chord * np.cos(h0 + half)
        y = self._y0[i] + chord * np.sin(h0 + half)
        return x, y, _wrap(h0 + 2 * half), k

    def segment_starts(self) -> F64:
        """Distance of each segment's start from the start line [m]."""
        return self._s0.copy()


class Vehicle(Protocol):
    """What the speed profile needs to know about a car (SI units)."""

    @property
    def mass(self) -> float: ...  # [kg]
    @property
    def power(self) -> float: ...  # [W] at the wheels
    @property
    def mu(self) -> float: ...  # tyre friction coefficient used
    @property
    def max_brake_decel(self) -> float: ...  # [m/s²] braking used
    @property
    def vmax(self) -> float: ...  # [m/s]
    @property
    def drag_area(self) -> float: ...  # drag coefficient x frontal area [m²]
    @property
    def traction_share(self) -> float: ...  # share of the weight on the driven wheels
    @property
    def corner_drag(self) -> float: ...  # tyre drag per lateral force while cornering


def drive_accel(v: F64, curvature: F64, car: Vehicle | CarArrays) -> F64:
    """Largest forward acceleration [m/s²] at speed ``v`` [m/s] on ``curvature`` [1/m]:
    engine power or traction, less aerodynamic drag and tyre drag from cornering."""
    force = np.minimum(car.power / np.maximum(v, 1.0), car.mass * car.mu * G * car.traction_share)
    drag = 0.5 * RHO_AIR * car.drag_area * v * v
    corner = car.corner_drag * car.mass * v * v * np.abs(curvature)
    return (force - drag - corner) / car.mass


@dataclass(frozen=True, slots=True)
class CarArrays:
    """The :class:`Vehicle` fields of several cars as columns (shape ``(n, 1)`` or ``(n,)``)."""

    mass: F64
    power: F64
    mu: F64
    max_brake_decel: F64
    vmax: F64
    drag_area: F64
    traction_share: F64
    corner_drag: F64

    @classmethod
    def of(cls, cars: Sequence[Vehicle]) -> CarArrays:
        return cls(
            *(
                np.array([getattr(c, f) for c in cars], dtype=np.float64)
                for f in cls.__dataclass_fields__
            )
        )


def speed_profiles(track: Track, cars: Sequence[Vehicle]) -> F64:
    """The fastest speed [m/s] at each centreline sample for each car: shape ``(cars, n)``.

    Classic quasi-steady lap simulation: the lateral grip limit ``sqrt(mu g / |curvature|)``
    (capped at ``vmax``), then a forward pass limited by :func:`drive_accel` and a backward pass
    limited by ``max_brake_decel``. Both passes start at the tightest sample, where the speed
    is known (it is the global minimum of the limit), and run once around the closed lap.

    Each sample's grip limit uses the largest curvature of it and its neighbours, so the
    profile interpolated linearly between samples never exceeds the exact limit in a corner.
    """
    c = CarArrays.of(cars)
    k = np.abs(track.curvature)
    k_near = np.maximum(k, np.maximum(np.roll(k, 1), np.roll(k, -1)))
    with np.errstate(divide="ignore"):
        v_lat = np.sqrt(c.mu[:, None] * G / k_near[None, :])
    limit = np.minimum(v_lat, c.vmax[:, None])
    start = int(np.argmax(k_near))
    limit = np.roll(limit, -start, axis=1)
    k = np.roll(k, -start)
    n, ds = limit.shape[1], track.ds
    v = np.empty_like(limit)
    v[:, 0] = limit[:, 0]
    for i in range(n - 1):
        a = drive_accel(v[:, i], k[i], c)
        v[:, i + 1] = np.minimum(limit[:, i + 1], np.sqrt(np.maximum(v[:, i] ** 2 + 2 * a * ds, 0)))
    brake = 2 * c.max_brake_decel * ds
    after = v[:, 0]
    for i in range(n - 1, -1, -1):
        after = v[:, i] = np.minimum(v[:, i], np.sqrt(after * after + brake))
    return np.roll(v, start, axis=1)


def speed_profile(track: Track, car: Vehicle) -> F64:
    """The fastest speed [m/s] of ``car`` at each centreline sample (see
    :func:`speed_profiles`)."""
    profile: F64 = speed_profiles(track, [car])[0]
    return profile


SIM_RING = Track(
    "sim-ring",
    close_loop(
        [
            Straight(1270),  # 0: the start line, then the rest of the main straight
            right(20, 165),  # 1: T1 hairpin
            Straight(250),
            left(70, 75),  # 3: T2
            Straight(330),
            right(90, 90),  # 5: T3
            Straight(500),  # 6: back straight
            right(25, 50),  # 7: T4-T5 chicane
            Straight(10),
            left(25, 50),
            Straight(250),
            right(300, 60),  # 11: T6 fast sweeper
            Straight(80),
            left(250, 40),  # 13: T7 fast sweeper
            Straight(100),
            right(60, 95),  # 15: T8
            Straight(50),
            right(150, 65),  # 17: T9, onto the main straight
            Straight(300),  # 18: the main straight before the start line (the grid)
        ],
        stretch=(0, 4),
    ),
)
"""The default simulator track: 19 segments, ~4 km, clockwise."""
