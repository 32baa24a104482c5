"""Session file figures: writer CPU per frame, bytes per sample, read throughput.

- writer CPU: 20 simulated cars at 100 Hz, one single-frame batch per car per tick (as live
  capture delivers them), flushed every 100 ms of data; CPU time of the writing thread
  (``time.thread_time``) per frame.
- bytes per sample: file size / (frames x channels), with the same 100 ms flushes, for a
  20-car simulated session at 60 Hz (5 minutes) and for the real Forza Laguna Seca drive
  (the fixture's 687 rows, 91 channels, re-encoded and decoded through the Forza manifest,
  flushed every 100 ms of its own time stamps: the rows are ~110 ms apart, so every block
  holds one frame).
- read throughput: every frame of the 20-car file decoded with ``batches()``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import emit, machine

from pitwire import sessionfile
from pitwire.model.frames import FrameBatch
from pitwire.model.records import SessionInfo, StreamInfo
from pitwire.sources.sim import SimField

FLUSH_NS = 100_000_000


def _write(
    path: Path, ticks: list[list[tuple[str, FrameBatch]]], streams: list[StreamInfo]
) -> float:
    """Write ``ticks`` flushing every 100 ms of data time; the writer's CPU seconds."""
    w = sessionfile.create(
        path, SessionInfo(session_id="bench"), streams=streams, flush_interval=3600
    )
    cpu = 0.0
    next_flush = None
    for tick in ticks:
        start = time.thread_time()
        for sid, b in tick:
            w.write(sid, b)
        t = tick[0][1].t0_ns
        next_flush = t + FLUSH_NS if next_flush is None else next_flush
        if t >= next_flush:
            w.flush()
            next_flush += FLUSH_NS
        cpu += time.thread_time() - start
    start = time.thread_time()
    w.close()
    return cpu + time.thread_time() - start


def sim(
    cars: int, rate: float, seconds: float
) -> tuple[list[list[tuple[str, FrameBatch]]], list[StreamInfo]]:
    field = SimField(cars=cars, seed=1, rate_hz=rate, start_ns=1_700_000_000_000_000_000)
    return [
        [(str(s), b) for s, b in field.step()] for _ in range(int(rate * seconds))
    ], field.streams


def forza() -> tuple[list[list[tuple[str, FrameBatch]]], list[StreamInfo]] | None:
    fixture = (
        Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "forza" / "laguna-seca.csv"
    )
    if not fixture.is_file():
        return None
    from pitwire.sources.base import StreamUpdate
    from pitwire.sources.forza import ForzaDecoder, encode_dash, rows_from_csv
    from pitwire.sources.framer import Framer

    decoder = ForzaDecoder()
    framer = Framer(decoder.manifest)
    ticks, streams = [], []
    for k, row in enumerate(rows_from_csv(fixture)):
        framer.add(decoder.feed(encode_dash(row), 1_700_000_000_000_000_000 + k * 110_000_000))
        for item in framer.drain():
            if isinstance(item, StreamUpdate):
                streams = [item.info]
            elif isinstance(item, tuple):
                ticks.append([(str(item[0]), item[1])])
    return ticks, streams


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ticks, streams = sim(20, 100, 60)
        frames = sum(len(t) for t in ticks)
        cpu = _write(Path(tmp) / "w.pwr", ticks, streams)
        emit("pwr_writer_cpu_per_frame_20cars_100hz", cpu / frames * 1e6, "us", machine=machine())

        ticks, streams = sim(20, 60, 300)
        path = Path(tmp) / "sim.pwr"
        _write(path, ticks, streams)
        frames = sum(len(t) for t in ticks)
        samples = frames * len(streams[0].channels)
        emit(
            "pwr_bytes_per_sample_sim_20cars_60hz",
            os.path.getsize(path) / samples,
            "B",
            machine=machine(),
        )

        start = time.perf_counter()
        with sessionfile.open(path) as r:
            read = sum(b.n for _, b in r.batches())
        emit(
            "pwr_read_frames_per_s",
            read / (time.perf_counter() - start),
            "frames/s",
            machine=machine(),
        )
        start = time.perf_counter()
        with sessionfile.open(path) as r:
            pass
        emit(
            "pwr_open_ms_20cars_5min", (time.perf_counter() - start) * 1e3, "ms", machine=machine()
        )

        got = forza()
        if got is not None:
            ticks, streams = got
            path = Path(tmp) / "forza.pwr"
            _write(path, ticks, streams)
            samples = len(ticks) * len(streams[0].channels)
            emit(
                "pwr_bytes_per_sample_forza_fixture",
                os.path.getsize(path) / samples,
                "B",
                machine=machine(),
            )


if __name__ == "__main__":
    main()
