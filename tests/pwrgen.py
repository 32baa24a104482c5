"""A deterministic session for session-file tests: what to write and what must be read back.

Run as a script (``python pwrgen.py PATH``) it writes the session to PATH, printing
``flushed <frames>`` after every flush the writer reports, for the SIGKILL test.
"""

from __future__ import annotations

import sys

import numpy as np

from pitwire.model.channels import STANDARD, Channel
from pitwire.model.frames import FrameBatch
from pitwire.model.records import SessionInfo, StreamInfo

T0 = 1_700_000_000_000_000_000
CHANNELS = [
    *STANDARD.select(["speed", "rpm", "gear", "lap"]).values(),
    Channel(name="packet_id", dtype="f8"),
]
INFO = SessionInfo(session_id="test-session", track="sim-ring", source="test", started_ns=T0)


def streams(cars: int) -> list[StreamInfo]:
    return [
        StreamInfo(stream_id=f"car-{i}", driver=f"Driver {i}", car="GT3", channels=CHANNELS)
        for i in range(cars)
    ]


def batch(car: int, start: int, n: int) -> FrameBatch:
    """Frames start .. start+n-1 of car ``car`` at 100 Hz (values derived from the index)."""
    i = np.arange(start, start + n)
    return FrameBatch(
        T0 + i * 10_000_000 + car,
        {
            "speed": (100 + 50 * np.sin(i / 50 + car)).astype(np.float32),
            "rpm": (6000 + 2000 * np.cos(i / 30)).astype(np.float32),
            "gear": (1 + (i // 100) % 6).astype(np.float32),
            "lap": (i // 1000).astype(np.float32),
            "packet_id": i.astype(np.float64),
        },
    )


if __name__ == "__main__":
    import time

    from pitwire.sessionfile import create

    path, cars = sys.argv[1], 3
    w = create(path, INFO, streams=streams(cars), flush_interval=0.01, segment_s=0.5)
    k = 0
    while True:
        for car in range(cars):
            w.write(f"car-{car}", batch(car, k, 1))
        k += 1
        if k % 5 == 0:
            w.flush()
            print(f"flushed {k}", flush=True)
        time.sleep(0.001)


def same_at_resolution(got: FrameBatch, want: FrameBatch, channels=CHANNELS) -> bool:  # type: ignore[no-untyped-def]
    """True when ``got`` is ``want`` at each channel's resolution: times equal, quantized
    channels within half a step (plus float32 rounding), others bit for bit; NaN and
    infinities where they were."""
    if got.n != want.n or not np.array_equal(got.t_ns, want.t_ns):
        return False
    for c in channels:
        a = want.columns[c.name].astype(np.float64)
        b = got.columns[c.name].astype(np.float64)
        if got.columns[c.name].dtype != want.columns[c.name].dtype:
            return False
        if c.resolution is None:
            if want.columns[c.name].tobytes() != got.columns[c.name].tobytes():
                return False
            continue
        finite = np.isfinite(a)
        if not np.array_equal(np.isnan(a), np.isnan(b)) or not np.array_equal(
            a[~finite & ~np.isnan(a)], b[~finite & ~np.isnan(a)]
        ):
            return False
        tolerance = c.resolution / 2 + np.abs(a[finite]) * 2**-23
        if not (np.abs(a[finite] - b[finite]) <= tolerance).all():
            return False
    return True
