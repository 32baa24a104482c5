"""The simulator source: a field of simulated GT3 cars on a simulated track.

:class:`SimField` is the pure core (no clock, no asyncio): each :meth:`SimField.step` returns
one single-frame :class:`FrameBatch` per car for the current tick, then advances every car by
one period. :class:`SimSource` is the thin asyncio adapter implementing the Source protocol: it
paces ticks against the event loop's monotonic clock (or runs flat out with
``realtime=False``).

Frame times are ``start_ns + round(k * 1e9 / rate_hz)`` for tick ``k``: integers without drift.
Every batch carries the standard channels (dashboard units: km/h, L, °C, kPa) and a
``packet_id`` column counting ticks per car. A seed fixes everything: the same seed gives the
same batches.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import numpy as np

from pitwire.model.channels import STANDARD, Channel, ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import StreamId
from pitwire.model.records import StreamInfo
from pitwire.sim.car import CarParams, CarState, make_cars
from pitwire.sim.track import SIM_RING, Track
from pitwire.sources.base import SourceError, SourceInfo

PACKET_ID = Channel(name="packet_id", unit="", dtype="f8", resolution=None, lo=0)
"""Ticks emitted for this car before this frame (the agent drops repeats)."""

SIM_CHANNELS: ChannelSet = STANDARD.merged([PACKET_ID])
"""The channels of every simulated car: the full standard set plus ``packet_id``."""

_F4 = [name for name in SIM_CHANNELS if SIM_CHANNELS[name].dtype == "f4"]


def stream_infos(params: list[CarParams]) -> list[StreamInfo]:
    """One ``car-N`` stream per entry, with its driver, car and channels."""
    return [
        StreamInfo(
            stream_id=f"car-{i + 1}",
            driver=p.driver,
            car=f"GT3 #{p.number}",
            channels=list(SIM_CHANNELS.values()),
        )
        for i, p in enumerate(params)
    ]


class SimField:
    """``cars`` simulated cars on ``track`` ticking at ``rate_hz`` [Hz] (pure, no I/O).

    start_ns: time of tick 0 [ns since epoch]
    """

    def __init__(
        self,
        cars: int = 6,
        seed: int = 0,
        rate_hz: float = 60.0,
        track: Track = SIM_RING,
        start_ns: int = 0,
    ) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be > 0, not {rate_hz}")
        self.params = make_cars(cars, seed)
        self.rate_hz = float(rate_hz)
        self.start_ns = int(start_ns)
        self.track = track
        self.state = CarState(track, self.params, 1.0 / rate_hz, seed=seed)
        self.streams = stream_infos(self.params)
        self.stream_ids = [StreamId(s.stream_id) for s in self.streams]
        self.tick = 0

    def t_ns(self, tick: int) -> int:
        """Time of ``tick`` [ns since epoch]."""
        return self.start_ns + round(tick * 1e9 / self.rate_hz)

    def columns(self) -> dict[str, np.ndarray]:
        """The current value of every float32 channel, one entry per car [channel units]."""
        c = self.state
        n = c.n
        zeros = np.zeros(n)
        temp, press = c.tyre_temp, c.tyre_press
        return {
            "speed": c.v * 3.6,
            "rpm": c.rpm,
            "gear": c.gear,
            "throttle": c.throttle,
            "brake": c.brake,
            "clutch": c.clutch,
            "steer": c.steer,
            "fuel": c.fuel,
            "lap": c.lap,
            "lap_distance": c.lap_distance,
            "lap_time": c.lap_time,
            "position": c.position,
            "x": c.x,
            "y": c.y,
            "z": zeros,
            "g_lat": c.g_lat,
            "g_lon": c.g_lon,
            "g_vert": zeros + 1.0,
            "tyre_temp_fl": temp[:, 0],
            "tyre_temp_fr": temp[:, 1],
            "tyre_temp_rl": temp[:, 2],
            "tyre_temp_rr": temp[:, 3],
            "tyre_press_fl": press[:, 0],
            "tyre_press_fr": press[:, 1],
            "tyre_press_rl": press[:, 2],
            "tyre_press_rr": press[:, 3],
        }

    def step(self) -> list[tuple[StreamId, FrameBatch]]:
        """The current frame of every car (one single-frame batch each), then advance a tick."""
        values = self.columns()
        # One (cars, channels, 1) block per tick; each batch's columns are views of its row,
        # so building 20 batches is a few hundred cheap slices, not hundreds of allocations.
        block = np.stack([values[name] for name in _F4], axis=1, dtype=np.float32)[:, :, None]
        packet = np.full((self.state.n, 1), self.tick, dtype=np.float64)
        t = np.full((self.state.n, 1), self.t_ns(self.tick), dtype=np.int64)
        out = []
        for sid, row, pid, ts in zip(self.stream_ids, block, packet, t, strict=True):
            cols = dict(zip(_F4, row, strict=True))
            cols["packet_id"] = pid
            out.append((sid, FrameBatch(ts, cols)))
        self.state.step()
        self.tick += 1
        return out


class SimSource:
    """The Source protocol over a :class:`SimField`.

    realtime: pace ticks at ``rate_hz`` on the loop's monotonic clock; a consumer that falls
    behind gets the missed ticks at once (time is never skipped). ``False`` runs flat out.
    duration: simulated seconds to run (``None`` = forever); start_ns: time of the first tick
    [ns since epoch], the wall clock at the first iteration by default. Each iteration starts
    the simulation afresh.
    """

    def __init__(
        self,
        cars: int = 6,
        seed: int = 0,
        rate_hz: float = 60.0,
        track: Track = SIM_RING,
        realtime: bool = True,
        duration: float | None = None,
        start_ns: int | None = None,
    ) -> None:
        if not 1 <= cars <= 100:
            raise SourceError(f"sim: cars must be 1 to 100, not {cars}")
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise SourceError(f"sim: rate_hz must be > 0, not {rate_hz}")
        if duration is not None and not duration >= 0:
            raise SourceError(f"sim: duration must be >= 0, not {duration}")
        self.cars, self.seed, self.rate_hz, self.track = cars, seed, float(rate_hz), track
        self.realtime, self.duration, self.start_ns = realtime, duration, start_ns
        self._info = SourceInfo(
            source="sim", track=track.name, streams=stream_infos(make_cars(cars, seed))
        )

    @property
    def info(self) -> SourceInfo:
        return self._info

    async def __aiter__(self) -> AsyncIterator[tuple[StreamId, FrameBatch]]:
        field = SimField(self.cars, self.seed, self.rate_hz, self.track, self.start_ns or 0)
        ticks = (
            math.inf if self.duration is None else math.ceil(self.duration * self.rate_hz - 1e-9)
        )
        loop = asyncio.get_running_loop()
        # Read both clocks after building the field (which takes a moment), so that frame
        # times match when the frames are produced.
        t0 = loop.time()
        if self.start_ns is None:
            field.start_ns = time.time_ns()
        while field.tick < ticks:
            delay = t0 + field.tick / self.rate_hz - loop.time() if self.realtime else 0.0
            await asyncio.sleep(max(delay, 0.0))  # 0: still let other tasks run
            for item in field.step():
                yield item
