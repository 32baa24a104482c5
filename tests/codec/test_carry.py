"""Tests of carried-delta column coding (pitwire.codec.carry)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pitwire.codec.carry import CarryDecoder, CarryEncoder
from pitwire.codec.chunk import CodecError
from pitwire.model.channels import Channel
from pitwire.model.frames import FrameBatch

CHANNELS = [
    Channel(name="speed", unit="km/h", resolution=0.01),
    Channel(name="gear", resolution=1),
    Channel(name="raw32"),
    Channel(name="raw64", dtype="f8"),
    Channel(name="fine64", dtype="f8", resolution=1e-6),
]


def _batch(rng: np.random.Generator, t0: int, n: int) -> FrameBatch:
    t = t0 + np.cumsum(rng.integers(1, 30_000_000, n))
    speed = rng.uniform(0, 300, n).astype(np.float32)
    speed[rng.random(n) < 0.05] = np.nan
    raw = rng.normal(0, 1e3, n).astype(np.float32)
    raw[rng.random(n) < 0.05] = -0.0
    return FrameBatch(
        t.astype(np.int64),
        {
            "speed": speed,
            "gear": rng.integers(-1, 8, n).astype(np.float32),
            "raw32": raw,
            "raw64": rng.normal(0, 1, n),
            "fine64": rng.uniform(-1e3, 1e3, n),
        },
    )


def test_batches_in_sequence_round_trip_at_resolution_and_exact_otherwise() -> None:
    """Random batches of random sizes decode to the values at each channel's resolution;
    channels without one come back bit for bit."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    enc, dec = CarryEncoder(CHANNELS), CarryDecoder(CHANNELS)
    t0 = 1_700_000_000_000_000_000
    for _ in range(50):
        b = _batch(rng, t0, int(rng.integers(1, 40)))
        t0 = int(b.t_ns[-1])
        data = enc.encode(b)
        got, end = dec.decode(data, 0, b.n)
        assert end == len(data)
        assert np.array_equal(got.t_ns, b.t_ns)
        assert got.columns["raw32"].tobytes() == b.columns["raw32"].tobytes()
        assert got.columns["raw64"].tobytes() == b.columns["raw64"].tobytes()
        assert got.columns["gear"].tobytes() == b.columns["gear"].tobytes()
        s, g = b.columns["speed"], got.columns["speed"]
        assert np.array_equal(np.isnan(s), np.isnan(g))
        ok = ~np.isnan(s)
        assert (np.abs(s[ok].astype(np.float64) - g[ok]) <= 0.005 + 1e-4).all()
        assert (np.abs(b.columns["fine64"] - got.columns["fine64"]) <= 0.5e-6 + 1e-12).all()
        assert [got.columns[c.name].dtype for c in CHANNELS] == [np.float32] * 3 + [np.float64] * 2


def test_smooth_quantized_signals_code_small() -> None:
    """A smooth 100 Hz signal at 0.01 resolution codes to far less than its raw float32."""
    t = 1_700_000_000_000_000_000 + np.arange(600, dtype=np.int64) * 10_000_000
    b = FrameBatch(t, {"speed": (150 + 50 * np.sin(np.arange(600) / 100)).astype(np.float32)})
    data = CarryEncoder([CHANNELS[0]]).encode(b)
    import zstandard

    assert len(zstandard.ZstdCompressor(level=3).compress(data)) < 600 * 4 / 4


def test_missing_columns_and_short_data_are_codec_errors() -> None:
    """A batch without a channel, or an entry cut short, raises CodecError."""
    enc = CarryEncoder(CHANNELS)
    with pytest.raises(CodecError, match="no column"):
        enc.encode(FrameBatch(np.zeros(1, np.int64), {"speed": np.zeros(1, np.float32)}))
    b = _batch(np.random.default_rng(1), 0, 5)
    data = enc.encode(b)
    with pytest.raises(CodecError, match=r"needs|do not fit"):
        CarryDecoder(CHANNELS).decode(data[:-10], 0, 5)
    with pytest.raises(CodecError, match="needs"):
        CarryDecoder(CHANNELS).decode(data[:20], 0, 5)


def test_values_on_a_step_come_back_bit_for_bit_in_float64_too() -> None:
    """A float64 value already on its step (0.3 at 0.1, 12.34 at 0.01) is decoded as the
    same double, not as q * resolution's rounding."""
    channels = [
        Channel(name="a", dtype="f8", resolution=0.01),
        Channel(name="b", dtype="f8", resolution=0.1),
        Channel(name="c", dtype="f8", resolution=0.3),
    ]
    rng = np.random.default_rng(7)
    q = rng.integers(-(10**7), 10**7, 20_000)
    b = FrameBatch(
        np.arange(len(q), dtype=np.int64),
        {"a": q / 100, "b": q / 10, "c": q * 0.3},
    )
    got, _ = CarryDecoder(channels).decode(CarryEncoder(channels).encode(b), 0, b.n)
    for name in "abc":
        assert got.columns[name].tobytes() == b.columns[name].tobytes(), name
