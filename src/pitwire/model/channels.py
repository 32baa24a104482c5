"""Channel definitions and the standard car channel set.

A channel is one named signal: ``speed [km/h]``, ``rpm [1/min]``, ``throttle [0-1]``. Its
``resolution`` is the sensor's step (what a lossless-at-resolution codec may quantize to);
``None`` means the value is kept bit-exact. ``lo``/``hi`` bound the physically valid range; the
ingest path rejects values outside it.

Units follow the motorsport convention users read on a dashboard (km/h, L, °C, kPa); every
channel states its unit, so a consumer never guesses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Literal

import msgspec

DType = Literal["f4", "f8"]


class Channel(msgspec.Struct, frozen=True, kw_only=True):
    """One signal of a stream.

    name: identifier, ``[a-z][a-z0-9_]*``
    unit: display unit, e.g. ``km/h``; empty for counts and ratios
    dtype: ``f4`` (float32) or ``f8`` (float64) on the wire and in memory
    resolution: the sensor's step in ``unit``; ``None`` keeps exact float bits
    lo, hi: valid range [unit], inclusive
    """

    name: str
    unit: str = ""
    dtype: DType = "f4"
    resolution: float | None = None
    lo: float = -math.inf
    hi: float = math.inf
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not (self.name[0].isalpha() and self.name.replace("_", "").isalnum()):
            raise ValueError(f"channel name {self.name!r} must be letters, digits and '_'")
        if self.dtype not in ("f4", "f8"):
            raise ValueError(
                f"channel {self.name!r}: dtype must be 'f4' or 'f8', not {self.dtype!r}"
            )
        if self.resolution is not None and not self.resolution > 0:
            raise ValueError(f"channel {self.name!r}: resolution must be > 0")
        if self.lo > self.hi:
            raise ValueError(f"channel {self.name!r}: lo {self.lo} > hi {self.hi}")

    def contains(self, value: float) -> bool:
        """True when ``value`` is finite and inside [lo, hi]."""
        return math.isfinite(value) and self.lo <= value <= self.hi


class ChannelSet(Mapping[str, Channel]):
    """An ordered, name-indexed set of channels (the schema of a stream)."""

    __slots__ = ("_by_name",)

    def __init__(self, channels: Iterable[Channel]) -> None:
        by_name: dict[str, Channel] = {}
        for channel in channels:
            if channel.name in by_name:
                raise ValueError(f"duplicate channel {channel.name!r}")
            by_name[channel.name] = channel
        self._by_name = by_name

    def __getitem__(self, name: str) -> Channel:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"ChannelSet({list(self._by_name)})"

    def select(self, names: Iterable[str]) -> ChannelSet:
        """The subset named by ``names``, in this set's order; unknown names raise KeyError."""
        wanted = set(names)
        unknown = wanted - self._by_name.keys()
        if unknown:
            raise KeyError(f"unknown channels: {', '.join(sorted(unknown))}")
        return ChannelSet(c for n, c in self._by_name.items() if n in wanted)

    def merged(self, extra: Iterable[Channel]) -> ChannelSet:
        """This set followed by ``extra`` (a name already present is an error)."""
        return ChannelSet([*self._by_name.values(), *extra])


def _c(name: str, unit: str, lo: float, hi: float, res: float | None, desc: str) -> Channel:
    return Channel(name=name, unit=unit, lo=lo, hi=hi, resolution=res, description=desc)


_WHEELS = ("fl", "fr", "rl", "rr")

STANDARD: ChannelSet = ChannelSet(
    [
        _c("speed", "km/h", 0, 600, 0.01, "ground speed"),
        _c("rpm", "1/min", 0, 30000, 1, "engine speed"),
        _c("gear", "", -1, 12, 1, "selected gear: -1 reverse, 0 neutral"),
        _c("throttle", "", 0, 1, 0.001, "throttle pedal, 0-1"),
        _c("brake", "", 0, 1, 0.001, "brake pedal, 0-1"),
        _c("clutch", "", 0, 1, 0.001, "clutch pedal, 0-1 (1 = disengaged)"),
        _c("steer", "rad", -20, 20, 0.0001, "steering wheel angle, positive = left"),
        _c("fuel", "L", 0, 1000, 0.001, "fuel in the tank"),
        _c("lap", "", 0, 100000, 1, "completed laps (0 on the out lap)"),
        _c("lap_distance", "m", -1000, 100000, 0.01, "distance from the start line this lap"),
        _c("lap_time", "s", 0, 100000, 0.001, "time since the start of this lap"),
        _c("position", "", 0, 200, 1, "race position, 0 = unknown"),
        _c("x", "m", -1e6, 1e6, 0.001, "world position x"),
        _c("y", "m", -1e6, 1e6, 0.001, "world position y"),
        _c("z", "m", -1e6, 1e6, 0.001, "world position z (up)"),
        _c("g_lat", "g", -30, 30, 0.001, "lateral acceleration, positive = left"),
        _c("g_lon", "g", -30, 30, 0.001, "longitudinal acceleration, positive = forward"),
        _c("g_vert", "g", -30, 30, 0.001, "vertical acceleration, +1 at rest (gravity included)"),
        *[_c(f"tyre_temp_{w}", "°C", -50, 400, 0.1, f"tyre temperature {w}") for w in _WHEELS],
        *[_c(f"tyre_press_{w}", "kPa", 0, 1000, 0.01, f"tyre pressure {w}") for w in _WHEELS],
    ]
)
"""The standard car channel set every source maps into (sources may add their own)."""
