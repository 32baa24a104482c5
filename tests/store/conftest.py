"""Fixtures for the store tests: every implementation, opened on a fresh database."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest

from pitwire.model.channels import Channel, ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.store.base import Store
from pitwire.store.memory import MemoryStore
from pitwire.store.postgres import PostgresStore
from pitwire.store.sqlite import SqliteStore

StoreFactory = Callable[[], Store]

CHANNELS = ChannelSet(
    [
        Channel(name="speed", unit="km/h", resolution=0.01, lo=0, hi=600),
        Channel(name="rpm", unit="1/min", dtype="f8"),
        Channel(name="tyre_temp_fl", unit="°C", lo=-50, hi=400, description="tyre fl"),
        Channel(name="steer", unit="rad", lo=-math.inf, hi=math.inf),
    ]
)
"""A small channel set mixing f4/f8, bounded/unbounded and a non-ASCII unit."""


class Frames:
    """Test data: frame ``seq`` is at ``T0 + seq * DT`` and its values are a function of seq,
    so any slice of any write is predictable."""

    T0 = 1_700_000_000_000_000_000
    DT = 16_666_667  # 60 Hz [ns]
    channels = CHANNELS

    def t(self, seq: int) -> int:
        """Time of frame ``seq`` [ns]."""
        return self.T0 + seq * self.DT

    def batch(self, first_seq: int, n: int, channels: ChannelSet = CHANNELS) -> FrameBatch:
        seq = np.arange(first_seq, first_seq + n, dtype=np.int64)
        columns = {}
        for i, (name, channel) in enumerate(channels.items()):
            values = np.sin(seq / 50 + i) * 100 + i
            values[seq % 97 == 13] = np.nan
            columns[name] = values.astype(channel.dtype)
        return FrameBatch(self.T0 + seq * self.DT, columns)


@pytest.fixture
def frames() -> Frames:
    """Deterministic test frames over CHANNELS."""
    return Frames()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Builds unopened stores of one implementation over one database."""
    if request.param == "memory":
        shared = MemoryStore()
        return lambda: shared
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return lambda: PostgresStore.from_url(url)
    return lambda: SqliteStore(tmp_path / "db" / "pitwire.db")


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    """An opened store of each implementation, closed after the test."""
    s = store_factory()
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An opened SqliteStore in tmp_path, closed after the test."""
    s = SqliteStore(tmp_path / "pitwire.db")
    await s.open()
    yield s
    await s.close()
