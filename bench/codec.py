"""Chunk codec figures: bytes per sample, encode and decode throughput, v1 against v2.

- bytes per sample: total blob size / (frames x channels), time column included in the bytes
  but not in the channels, in chunks of 1000 frames:
  - the real Forza Laguna Seca drive (the fixture's 687 rows, 91 channels through the Forza
    manifest, its rows ~110 ms apart: one chunk), v2 at the manifest's resolutions;
  - a simulated 20-car session at 60 Hz (60 s, 27 channels), v2 at the standard resolutions;
  - the same session in 60-frame chunks (one second at 60 Hz, the store's ``max_age``).
- throughput: frames per second through ``encode`` and ``decode`` of those chunks, one thread,
  the best of 5 rounds (the machine is shared); and the time to decode one 1000-frame,
  91-channel chunk (the Forza rows, the first 313 twice).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from common import emit, machine

from pitwire.codec import chunk
from pitwire.model.channels import Channel
from pitwire.model.frames import FrameBatch
from pitwire.sources.sim import SimField

T0 = 1_700_000_000_000_000_000
ROUNDS = 5


def forza() -> tuple[FrameBatch, list[Channel]] | None:
    """The Forza fixture as one batch (rows 110 ms apart) and its channels; None if missing."""
    folder = os.environ.get("PITWIRE_FIXTURES")
    root = Path(folder) if folder else Path(__file__).resolve().parents[2] / "shared" / "fixtures"
    path = root / "forza" / "laguna-seca.csv"
    if not path.is_file():
        return None
    from pitwire.sources.base import StreamUpdate
    from pitwire.sources.forza import ForzaDecoder, encode_dash, rows_from_csv
    from pitwire.sources.framer import Framer

    decoder = ForzaDecoder()
    framer = Framer(decoder.manifest)
    for k, row in enumerate(rows_from_csv(path)):
        framer.add(decoder.feed(encode_dash(row), T0 + k * 110_000_000))
    items = framer.drain()
    channels = next(i.info.channels for i in items if isinstance(i, StreamUpdate))
    return FrameBatch.concat([i[1] for i in items if isinstance(i, tuple)]), list(channels)


def sim(cars: int, seconds: float, frames: int) -> tuple[list[FrameBatch], list[Channel]]:
    """A simulated session at 60 Hz in chunks of ``frames`` frames per car."""
    field = SimField(cars=cars, seed=1, rate_hz=60.0, start_ns=T0)
    per_car: dict[str, list[FrameBatch]] = {}
    for _ in range(int(60 * seconds)):
        for stream, batch in field.step():
            per_car.setdefault(stream, []).append(batch)
    chunks = [
        FrameBatch.concat(batches[k : k + frames])
        for batches in per_car.values()
        for k in range(0, len(batches), frames)
    ]
    return chunks, list(field.streams[0].channels)


def best(work: Callable[..., object], *args: object, **kwargs: object) -> float:
    """The shortest of ``ROUNDS`` runs of ``work(*args, **kwargs)`` [s]."""
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        work(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times)


def encode_all(chunks: Sequence[FrameBatch], channels: list[Channel], version: int) -> None:
    for b in chunks:
        chunk.encode(b, channels=channels, version=version)


def decode_all(blobs: Sequence[bytes], times: int = 1) -> None:
    for _ in range(times):
        for blob in blobs:
            chunk.decode(blob)


def figures(label: str, chunks: Sequence[FrameBatch], channels: list[Channel]) -> None:
    frames = sum(b.n for b in chunks)
    samples = sum(b.n * len(b.columns) for b in chunks)
    for version in (1, 2):
        blobs = [chunk.encode(b, channels=channels, version=version) for b in chunks]
        extra = {"chunks": len(chunks), "channels": len(chunks[0].columns), "machine": machine()}
        emit(
            f"codec_v{version}_bytes_per_sample_{label}",
            sum(map(len, blobs)) / samples,
            "B",
            target="<= 0.75" if version == 2 else "",
            **extra,
        )
        seconds = best(encode_all, chunks, channels, version)
        emit(f"codec_v{version}_encode_frames_per_s_{label}", frames / seconds, "frames/s", **extra)
        seconds = best(decode_all, blobs)
        emit(f"codec_v{version}_decode_frames_per_s_{label}", frames / seconds, "frames/s", **extra)


def main() -> None:
    got = forza()
    if got is not None:
        batch, channels = got
        figures("forza_fixture", [batch], channels)
        wide = FrameBatch.concat([batch, batch.slice(0, 1000 - batch.n)])
        wide = FrameBatch(T0 + np.arange(1000) * 16_666_667, wide.columns)
        for version in (1, 2):
            blob = chunk.encode(wide, channels=channels, version=version)
            seconds = best(decode_all, [blob], 20) / 20
            emit(
                f"codec_v{version}_decode_ms_1000x91",
                seconds * 1e3,
                "ms",
                target="< 1" if version == 2 else "",
                machine=machine(),
            )
    chunks, channels = sim(20, 60, 1000)
    figures("sim_20cars_60hz", chunks, channels)
    chunks, channels = sim(20, 60, 60)
    figures("sim_20cars_60hz_60frame_chunks", chunks, channels)


if __name__ == "__main__":
    main()
