"""Tests of the storage chunk codec (pitwire.codec.chunk)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitwire.codec import chunk
from pitwire.model.channels import STANDARD
from pitwire.model.frames import FrameBatch

T0 = 1_700_000_000_000_000_000


def bits(col: np.ndarray) -> np.ndarray:
    return col.view(np.uint32 if col.dtype.itemsize == 4 else np.uint64)


def assert_identical(a: FrameBatch, b: FrameBatch) -> None:
    assert list(a.columns) == list(b.columns)
    assert b.t_ns.dtype == np.int64
    assert np.array_equal(a.t_ns, b.t_ns)
    for name, col in a.columns.items():
        assert b.columns[name].dtype == col.dtype.newbyteorder("=")
        assert np.array_equal(bits(col.astype(col.dtype.newbyteorder("="))), bits(b.columns[name]))


def car_batch(n: int, *, seed: int, t0_ns: int = T0, hz: float = 60.0) -> FrameBatch:
    """``n`` frames of a smooth, car-like signal on the standard channels, float32."""
    rng = np.random.default_rng(seed)
    dt = 1 / hz
    t = np.arange(n) * dt + rng.uniform(0, 1000)
    jitter = rng.integers(-200_000, 200_000, n)  # ±0.2 ms of timestamp jitter
    t_ns = t0_ns + (np.arange(n) * dt * 1e9).astype(np.int64) + jitter
    speed = 180 + 90 * np.sin(2 * np.pi * t / 23) + 20 * np.sin(2 * np.pi * t / 7.1)
    phase = np.cos(2 * np.pi * t / 23)
    dist = np.cumsum(speed / 3.6 * dt)
    values = {
        "speed": speed,
        "rpm": 4000 + (speed % 45) / 45 * 7000,
        "gear": np.clip(np.floor(speed / 45) + 1, 1, 8),
        "throttle": np.clip(0.5 + 0.6 * phase, 0, 1),
        "brake": np.clip(-0.6 * phase - 0.2, 0, 1),
        "clutch": np.zeros(n),
        "steer": 0.4 * np.sin(2 * np.pi * t / 9.3),
        "fuel": 60 - t * 0.02,
        "lap": np.floor(dist / 5000),
        "lap_distance": dist % 5000,
        "lap_time": t % 90,
        "position": np.full(n, 3.0),
        "x": 500 * np.cos(dist / 800),
        "y": 300 * np.sin(dist / 800),
        "z": 5 * np.sin(dist / 200),
        "g_lat": 2 * np.sin(2 * np.pi * t / 9.3),
        "g_lon": np.gradient(speed) / 3.6 * hz / 9.81 if n > 1 else np.zeros(n),
        "g_vert": 0.1 * np.sin(3 * t),
    }
    for i, wheel in enumerate(("fl", "fr", "rl", "rr")):
        values[f"tyre_temp_{wheel}"] = 80 + 5 * np.sin(t / 30 + i)
        values[f"tyre_press_{wheel}"] = 180 + 2 * np.sin(t / 40 + i)
    return FrameBatch(t_ns, {name: values[name].astype(np.float32) for name in STANDARD})


@st.composite
def batches(draw: st.DrawFn) -> FrameBatch:
    n = draw(st.sampled_from([0, 1, 2, 3]) | st.integers(0, 300))
    times = st.integers(-(2**63), 2**63 - 1)
    if draw(st.booleans()):
        t_ns = np.array(draw(st.lists(times, min_size=n, max_size=n)), dtype=np.int64)
    else:  # regular-ish: increasing with irregular gaps
        t0 = draw(st.integers(0, 2**62))
        steps = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n))
        t_ns = t0 + np.cumsum(np.array(steps, dtype=np.int64))
    columns = {}
    for i in range(draw(st.integers(0, 4))):
        dtype = np.dtype(draw(st.sampled_from(["<f4", "<f8"])))
        raw = draw(st.binary(min_size=n * dtype.itemsize, max_size=n * dtype.itemsize))
        columns[f"ch{i}"] = np.frombuffer(raw, dtype=dtype).copy()
    return FrameBatch(t_ns, columns)


@settings(max_examples=300, deadline=None, print_blob=True)
@given(batch=batches(), level=st.sampled_from([1, 3, 9]))
def test_round_trip_is_bit_exact(batch: FrameBatch, level: int) -> None:
    """Any times and any float bit patterns (NaN payloads too) decode to identical arrays."""
    assert_identical(batch, chunk.decode(chunk.encode(batch, level=level)))


def test_special_values_round_trip() -> None:
    """NaN, ±inf, -0.0 and subnormals survive exactly in float32 and float64 columns."""
    special = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e-45, 5e-324, 3.4e38, -1.0]
    batch = FrameBatch(
        np.array([5, 3, 3, -7, 0, 2**63 - 1, -(2**63), 1, 1], dtype=np.int64),
        {"a": np.array(special, dtype=np.float32), "b": np.array(special, dtype=np.float64)},
    )
    out = chunk.decode(chunk.encode(batch))
    assert_identical(batch, out)
    assert math.copysign(1.0, out.columns["a"][3]) == -1.0


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_batches_round_trip(n: int) -> None:
    """Empty and single-frame batches round-trip with their channel names and dtypes."""
    batch = car_batch(n, seed=1)
    out = chunk.decode(chunk.encode(batch))
    assert_identical(batch, out)
    assert out.n == n


def test_batch_without_columns_round_trips() -> None:
    """A batch of times only is a valid chunk."""
    batch = FrameBatch(np.array([1, 2, 3], dtype=np.int64), {})
    assert_identical(batch, chunk.decode(chunk.encode(batch)))


def test_byte_order_and_strides_are_normalised() -> None:
    """Big-endian and strided columns encode; they decode to native contiguous arrays."""
    base = np.arange(20, dtype=">f8") / 3
    batch = FrameBatch(np.arange(10, dtype=">i8"), {"be": base[:10], "strided": base[::2]})
    out = chunk.decode(chunk.encode(batch))
    assert out.columns["be"].dtype == np.float64
    assert np.array_equal(out.columns["strided"], base[::2])
    assert np.array_equal(out.t_ns, np.arange(10))


def test_version_byte_comes_first() -> None:
    """The blob starts with the codec version, which version_of reads."""
    blob = chunk.encode(car_batch(10, seed=2))
    assert blob[0] == chunk.VERSION == 1
    assert chunk.version_of(blob) == 1


def test_unknown_version_is_a_codec_error() -> None:
    """A blob of a version this build does not read raises CodecError naming the version."""
    blob = chunk.encode(car_batch(10, seed=3))
    with pytest.raises(chunk.CodecError, match="version 9"):
        chunk.decode(bytes([9]) + blob[1:])


def test_codec_error_is_a_value_error() -> None:
    """CodecError is a ValueError, so generic input-validation handlers catch it."""
    assert issubclass(chunk.CodecError, ValueError)


def test_every_truncation_is_a_codec_error() -> None:
    """Cutting a blob anywhere raises CodecError, never another exception."""
    blob = chunk.encode(car_batch(50, seed=4))
    for size in range(len(blob)):
        with pytest.raises(chunk.CodecError):
            chunk.decode(blob[:size])


@settings(max_examples=300, deadline=None, print_blob=True)
@given(data=st.data())
def test_corruption_is_detected(data: st.DataObject) -> None:
    """Flipping bits anywhere raises CodecError or (if the change is inert) decodes exactly."""
    batch = car_batch(data.draw(st.integers(0, 40)), seed=5)
    blob = bytearray(chunk.encode(batch))
    pos = data.draw(st.integers(0, len(blob) - 1))
    blob[pos] ^= data.draw(st.integers(1, 255))
    try:
        out = chunk.decode(bytes(blob))
    except chunk.CodecError:
        return
    assert_identical(batch, out)


@pytest.mark.parametrize(
    "column", [np.arange(3, dtype=np.int32), np.arange(3, dtype=np.float16)], ids=str
)
def test_non_float_columns_are_refused(column: np.ndarray) -> None:
    """encode accepts only float32/float64 columns and says which column is wrong."""
    batch = FrameBatch(np.arange(3, dtype=np.int64), {"bad": column})
    with pytest.raises(chunk.CodecError, match="'bad'"):
        chunk.encode(batch)


def test_stats_ignore_nan_and_use_min_max_time() -> None:
    """stats give the NaN-ignoring range per column and the time range of unordered frames."""
    batch = FrameBatch(
        np.array([30, 10, 20], dtype=np.int64),
        {
            "a": np.array([2.5, math.nan, -1.0], dtype=np.float32),
            "b": np.array([math.nan] * 3, dtype=np.float64),
            "c": np.array([1.0, math.inf, -math.inf], dtype=np.float64),
        },
    )
    s = chunk.stats(batch)
    assert (s.n, s.t0_ns, s.t1_ns) == (3, 10, 30)
    assert s.columns["a"] == chunk.ColumnStats(lo=-1.0, hi=2.5, nan=1)
    assert math.isnan(s.columns["b"].lo)
    assert math.isnan(s.columns["b"].hi)
    assert s.columns["b"].nan == 3
    assert (s.columns["c"].lo, s.columns["c"].hi) == (-math.inf, math.inf)


def test_stats_of_empty_batch() -> None:
    """An empty batch has zero frames, time range 0..0 and NaN ranges."""
    s = chunk.stats(car_batch(0, seed=6))
    assert (s.n, s.t0_ns, s.t1_ns) == (0, 0, 0)
    assert all(math.isnan(c.lo) and c.nan == 0 for c in s.columns.values())


def test_stats_match_numpy_on_random_data() -> None:
    """stats agree with numpy's nanmin/nanmax on random data with NaNs sprinkled in."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    batch = car_batch(500, seed=seed)
    for col in batch.columns.values():
        col[rng.random(500) < 0.1] = np.nan
    s = chunk.stats(batch)
    for name, col in batch.columns.items():
        assert s.columns[name].lo == float(np.nanmin(col))
        assert s.columns[name].hi == float(np.nanmax(col))
        assert s.columns[name].nan == int(np.isnan(col).sum())


def test_smooth_car_signal_compresses_well_below_raw() -> None:
    """A smooth 60 Hz car signal in 1000-frame chunks costs well under 4 bytes per sample."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    total = samples = 0
    for i in range(36):  # 10 minutes at 60 Hz
        batch = car_batch(1000, seed=seed + i, t0_ns=T0 + i * 10**12)
        total += len(chunk.encode(batch))
        samples += batch.n * len(batch.columns)
    per_sample = total / samples
    print(f"v1 codec: {per_sample:.3f} bytes/sample ({len(STANDARD)} channels + time, f4)")
    assert per_sample < 1.5
