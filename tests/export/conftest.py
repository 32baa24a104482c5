"""Fixtures for the exporter tests: a small session with several streams, NaN, infinities,
channels with and without a resolution, laps and an empty stream."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pitwire.export import MemorySession
from pitwire.model.channels import Channel
from pitwire.model.frames import FrameBatch
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo

SEED = 20240604
T0 = 1_700_000_000_000_000_000
"""Session start [ns since epoch]; car-1 starts 1 s later."""

CAR1_CHANNELS = [
    Channel(name="speed", unit="km/h", resolution=0.01, lo=0, hi=600),
    Channel(name="rpm", unit="1/min", resolution=1),
    Channel(name="gear", resolution=1),
    Channel(name="throttle", resolution=0.001),
    Channel(name="tyre_temp_fl", unit="°C", resolution=0.1),
    Channel(name="steer", unit="rad", resolution=0.0001),
    Channel(name="x", unit="m", dtype="f8", resolution=0.001),
    Channel(name="ride", unit="mm", resolution=0.5),
    Channel(name="third", unit="", resolution=1 / 3),
    Channel(name="raw32", unit="V"),
    Channel(name="raw64", unit="V", dtype="f8"),
]
CAR2_CHANNELS = [CAR1_CHANNELS[0], CAR1_CHANNELS[1], CAR1_CHANNELS[2]]


def car1_batch(rng: np.random.Generator, n: int = 250) -> FrameBatch:
    """100 Hz with ±1 ms jitter; NaN and infinities in a few places."""
    jitter = rng.integers(-1_000_000, 1_000_000, n)
    t = T0 + 1_000_000_000 + np.arange(n, dtype=np.int64) * 10_000_000 + jitter
    t[0] = T0 + 1_000_000_000
    cols: dict[str, np.ndarray] = {
        "speed": rng.uniform(0, 320, n).astype(np.float32),
        "rpm": rng.uniform(0, 15000, n).astype(np.float32),
        "gear": rng.integers(-1, 8, n).astype(np.float32),
        "throttle": rng.uniform(0, 1, n).astype(np.float32),
        "tyre_temp_fl": rng.uniform(20, 120, n).astype(np.float32),
        "steer": rng.uniform(-3, 3, n).astype(np.float32),
        "x": rng.uniform(-5000, 5000, n),
        "ride": rng.uniform(-40, 40, n).astype(np.float32),
        "third": rng.uniform(0, 10, n).astype(np.float32),
        "raw32": rng.normal(0, 1e3, n).astype(np.float32),
        "raw64": rng.normal(0, 1e-3, n),
    }
    cols["speed"][[3, 4, 17]] = np.nan
    cols["raw32"][5] = np.nan
    cols["raw64"][6] = math.inf
    cols["rpm"][7] = -math.inf
    cols["speed"][8] = 0.3  # float32 0.3 is 0.30000001192...: must print as 0.30
    cols["steer"][9] = -0.00001  # rounds to -0.0: must print as 0.0000
    cols["raw32"][10] = 0.1  # no resolution: must print as 0.1, the shortest float32 text
    return FrameBatch(t, cols)


def car2_batch(rng: np.random.Generator, n: int = 90) -> FrameBatch:
    """60 Hz, no gaps."""
    t = T0 + 500_000_000 + np.arange(n, dtype=np.int64) * 16_666_667
    return FrameBatch(
        t,
        {
            "speed": rng.uniform(0, 300, n).astype(np.float32),
            "rpm": rng.uniform(0, 12000, n).astype(np.float32),
            "gear": rng.integers(0, 7, n).astype(np.float32),
        },
    )


def build_session() -> MemorySession:
    """car-1 (11 channels, laps), car-2 (3 channels), car-3 (no frames)."""
    print(f"export test data seed {SEED}")
    rng = np.random.default_rng(SEED)
    b1, b2 = car1_batch(rng), car2_batch(rng)
    t1 = b1.t_ns
    laps = [
        LapInfo(stream_id="car-1", lap=0, t0_ns=int(t1[0]), t1_ns=int(t1[49]), frames=50),
        LapInfo(
            stream_id="car-1",
            lap=1,
            t0_ns=int(t1[50]),
            t1_ns=int(t1[149]),
            frames=100,
            lap_time=1.0,
        ),
        LapInfo(
            stream_id="car-1",
            lap=2,
            t0_ns=int(t1[150]),
            t1_ns=int(t1[229]),
            frames=80,
            lap_time=0.8125,
        ),
        LapInfo(stream_id="car-1", lap=3, t0_ns=int(t1[230]), t1_ns=int(t1[-1]), frames=20),
        LapInfo(stream_id="car-2", lap=1, t0_ns=int(b2.t_ns[0]), t1_ns=int(b2.t_ns[-1]), frames=90),
    ]
    return MemorySession(
        info=SessionInfo(session_id="race-1", track="Spa", source="sim", started_ns=T0),
        streams=[
            StreamInfo(stream_id="car-1", driver="Ana", car="GT3 #1", channels=CAR1_CHANNELS),
            StreamInfo(stream_id="car-2", driver="Bo", car="GT4", channels=CAR2_CHANNELS),
            StreamInfo(stream_id="car-3", driver="Cy", car="GT4", channels=CAR2_CHANNELS),
        ],
        laps=laps,
        batches={"car-1": b1, "car-2": b2},
    )


@pytest.fixture
def session() -> MemorySession:
    """The test session (fresh per test)."""
    return build_session()
