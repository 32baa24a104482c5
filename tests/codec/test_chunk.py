"""Tests of the storage chunk codec (pitwire.codec.chunk)."""

from __future__ import annotations

import math
import random
import threading

import msgspec
import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from pitwire.codec import chunk
from pitwire.model.channels import STANDARD, Channel, ChannelSet
from pitwire.model.frames import FrameBatch
from support import fixture

T0 = 1_700_000_000_000_000_000
RESOLUTIONS = [1.0, 0.1, 0.01, 0.001, 1e-4, 1 / 255, 1 / 127, 0.25, 0.3, 2.5, 1e-9]


def bits(col: np.ndarray) -> np.ndarray:
    return col.view(np.uint32 if col.dtype.itemsize == 4 else np.uint64)


def assert_identical(a: FrameBatch, b: FrameBatch) -> None:
    assert list(a.columns) == list(b.columns)
    assert b.t_ns.dtype == np.int64
    assert np.array_equal(a.t_ns, b.t_ns)
    for name, col in a.columns.items():
        assert b.columns[name].dtype == col.dtype.newbyteorder("=")
        assert np.array_equal(bits(col.astype(col.dtype.newbyteorder("="))), bits(b.columns[name]))


def assert_at_resolution(want: FrameBatch, got: FrameBatch, channels: list[Channel]) -> None:
    """Times exact; quantized values within half a step (plus float rounding), values that
    cannot be quantized and columns without a resolution bit for bit."""
    steps = {c.name: c.resolution for c in channels}
    assert list(want.columns) == list(got.columns)
    assert np.array_equal(want.t_ns, got.t_ns)
    for name, col in want.columns.items():
        native = col.astype(col.dtype.newbyteorder("="))
        out = got.columns[name]
        assert out.dtype == native.dtype, name
        r = steps.get(name)
        if r is None:
            assert np.array_equal(bits(native), bits(out)), name
            continue
        with np.errstate(all="ignore"):  # a signalling NaN raises "invalid" when widened
            v = native.astype(np.float64)
            quantized = np.isfinite(v) & (np.abs(np.rint(v / r)) < 2.0**53)
        assert np.array_equal(bits(native)[~quantized], bits(out)[~quantized]), name
        rounding = 2.0**-23 if native.dtype == np.float32 else 2.0**-50
        error = np.abs(v[quantized] - out[quantized].astype(np.float64))
        assert (error <= r / 2 * (1 + 1e-9) + np.abs(v[quantized]) * rounding).all(), name


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
def times(draw: st.DrawFn, n: int) -> np.ndarray:
    kind = draw(st.sampled_from(["any", "gaps", "regular", "jitter"]))
    if kind == "any":  # anything, non-monotonic, wrapping
        return np.array(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)))
    t0 = draw(st.integers(-(2**62), 2**62))
    period = draw(st.integers(0, 10**9))
    t = t0 + np.arange(n, dtype=np.int64) * period
    if kind == "gaps" and n:  # a few frames missing or late
        for i in draw(st.lists(st.integers(0, n - 1), max_size=3)):
            t[i:] += draw(st.integers(-(10**12), 10**12))
    elif kind == "jitter":
        t += np.array(draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n)), np.int64)
    return t.astype(np.int64)


@st.composite
def batches(draw: st.DrawFn) -> FrameBatch:
    n = draw(st.sampled_from([0, 1, 2, 3]) | st.integers(0, 300))
    columns = {}
    for i in range(draw(st.integers(0, 4))):
        dtype = np.dtype(draw(st.sampled_from(["<f4", "<f8"])))
        raw = draw(st.binary(min_size=n * dtype.itemsize, max_size=n * dtype.itemsize))
        columns[f"ch{i}"] = np.frombuffer(raw, dtype=dtype).copy()
    return FrameBatch(draw(times(n)), columns)


@st.composite
def quantized_batches(draw: st.DrawFn) -> tuple[FrameBatch, list[Channel]]:
    """Smooth, noisy or arbitrary columns with NaN, infinities and huge values sprinkled in,
    and channels declaring resolutions for some of them."""
    n = draw(st.sampled_from([0, 1, 2, 3]) | st.integers(0, 400))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    columns, channels = {}, []
    for i in range(draw(st.integers(0, 6))):
        dtype = draw(st.sampled_from(["f4", "f8"]))
        scale = 10.0 ** draw(st.integers(-6, 8))
        shape = draw(st.sampled_from(["walk", "noise", "ramp", "constant", "bits"]))
        if shape == "walk":
            values = np.cumsum(rng.normal(0, scale, n))
        elif shape == "noise":
            values = rng.normal(0, scale, n)
        elif shape == "ramp":
            values = np.arange(n) * scale + rng.normal(0, 1)
        elif shape == "constant":
            values = np.full(n, scale)
        else:
            width = 4 if dtype == "f4" else 8
            values = np.frombuffer(rng.bytes(n * width), f"<{dtype}")
        col = values.astype(dtype)
        specials = [np.nan, np.inf, -np.inf, 1e300 if dtype == "f8" else 3e38, -0.0]
        for _ in range(draw(st.integers(0, 3))):
            if n:
                col[rng.integers(0, n)] = specials[rng.integers(0, len(specials))]
        if n and draw(st.booleans()):
            col[: rng.integers(0, n + 1)] = np.nan  # a run of NaN, maybe the whole column
        name = f"ch{i}"
        columns[name] = col
        resolution = draw(st.sampled_from([None, *RESOLUTIONS]))
        channels.append(Channel(name=name, dtype=dtype, resolution=resolution))
    return FrameBatch(draw(times(n)), columns), channels


@settings(max_examples=300, deadline=None, print_blob=True)
@given(batch=batches(), level=st.sampled_from([1, 3, 9]), version=st.sampled_from([1, 2]))
def test_round_trip_without_resolutions_is_bit_exact(
    batch: FrameBatch, level: int, version: int
) -> None:
    """Any times and any float bit patterns (NaN payloads too) decode to identical arrays."""
    assert_identical(batch, chunk.decode(chunk.encode(batch, level=level, version=version)))


@settings(max_examples=300, deadline=None, print_blob=True)
@given(case=quantized_batches())
def test_round_trip_is_exact_at_resolution(case: tuple[FrameBatch, list[Channel]]) -> None:
    """Quantized values come back within half a step; NaN, infinities, huge values and
    channels without a resolution come back bit for bit; times exactly."""
    batch, channels = case
    assert_at_resolution(batch, chunk.decode(chunk.encode(batch, channels=channels)), channels)


@pytest.mark.parametrize("dtype", ["f4", "f8"])
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_values_on_a_step_round_trip_bit_for_bit(dtype: str, resolution: float) -> None:
    """A value already on a step (the correctly rounded k/(1/r), or k*r) decodes to the same
    bits."""
    k = np.arange(-5000, 5000, 7, dtype=np.int64)
    inverse = round(1 / resolution)
    if abs(1 / resolution - inverse) <= 1e-9 / resolution and inverse >= 1:
        values = (k / inverse).astype(dtype)
    else:
        values = (k * resolution).astype(dtype)
    batch = FrameBatch(T0 + np.arange(len(k)), {"v": values})
    channels = [Channel(name="v", dtype=dtype, resolution=resolution)]  # type: ignore[arg-type]
    out = chunk.decode(chunk.encode(batch, channels=channels))
    assert np.array_equal(bits(values), bits(out.columns["v"]))


def test_standard_channels_on_their_steps_round_trip_bit_for_bit() -> None:
    """Standard-channel values already on their steps (0.01 km/h, 1 rpm, ...) come back bit
    for bit, in float32 and in float64."""
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        columns = {
            c.name: (rng.integers(-(10**6), 10**6, 500) / round(1 / c.resolution)).astype(dtype)
            for c in STANDARD.values()
            if c.resolution is not None
        }
        batch = FrameBatch(T0 + np.arange(500) * 16_666_667, columns)
        name = "f4" if dtype is np.float32 else "f8"
        channels = [msgspec.structs.replace(c, dtype=name) for c in STANDARD.values()]
        assert_identical(batch, chunk.decode(chunk.encode(batch, channels=channels)))


def test_special_values_round_trip() -> None:
    """NaN (payloads and signalling ones too), ±inf, -0.0 and subnormals survive exactly in
    exact columns, and all but -0.0 (which becomes 0.0) in quantized ones."""
    special = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e-45, 5e-324, 3.4e38, -1.0]
    a = np.array(special, dtype=np.float32)
    a.view(np.uint32)[0] = 0x7F800001  # a signalling NaN with a payload
    b = np.array(special, dtype=np.float64)
    b.view(np.uint64)[0] = 0xFFF0000000000123
    batch = FrameBatch(
        np.array([5, 3, 3, -7, 0, 2**63 - 1, -(2**63), 1, 1], dtype=np.int64), {"a": a, "b": b}
    )
    for version in (1, 2):
        out = chunk.decode(chunk.encode(batch, version=version))
        assert_identical(batch, out)
        assert math.copysign(1.0, out.columns["a"][3]) == -1.0
    channels = [Channel(name="a", resolution=1e-3), Channel(name="b", dtype="f8", resolution=1)]
    out = chunk.decode(chunk.encode(batch, channels=channels))
    assert_at_resolution(batch, out, channels)
    assert out.columns["a"].view(np.uint32)[0] == 0x7F800001
    assert out.columns["b"].view(np.uint64)[0] == 0xFFF0000000000123
    assert out.columns["a"][3] == 0.0


def test_mostly_nan_channel_is_coded_exactly_and_cheaply() -> None:
    """A quantized channel that is all NaN (a field another game variant sends) round-trips
    bit for bit and costs next to nothing."""
    n = 1000
    nan = np.full(n, np.nan, np.float32)
    nan.view(np.uint32)[::7] = 0x7FC00001
    batch = FrameBatch(T0 + np.arange(n) * 16_666_667, {"wear": nan, "mostly": nan.copy()})
    batch.columns["mostly"][:100] = np.arange(100)
    channels = [Channel(name="wear", resolution=1e-4), Channel(name="mostly", resolution=0.5)]
    blob = chunk.encode(batch, channels=channels)
    assert_identical(batch, chunk.decode(blob))
    assert len(blob) < 0.1 * 2 * n


@pytest.mark.parametrize(
    "t_ns",
    [
        T0 + np.arange(1000) * 16_666_667,  # regular
        T0 + np.round(np.arange(1000) * 1e9 / 60).astype(np.int64),  # 60 Hz, rounded
        T0 + np.arange(1000) * 10**7 + np.where(np.arange(1000) == 500, 10**9, 0),  # a gap
        T0 + np.cumsum(np.random.default_rng(2).integers(9 * 10**6, 11 * 10**6, 1000)),
        np.array([T0, T0 - 5, T0 + 10**12, T0, 0, -(2**63), 2**63 - 1, 2**63 - 1, 7]),
        np.array([2**63 - 1, -(2**63), 2**63 - 1, -(2**63)]),
        np.array([T0]),
        np.zeros(0, np.int64),
    ],
    ids=["regular", "rounded", "gap", "irregular", "unordered", "wrapping", "one", "none"],
)
def test_times_round_trip_exactly(t_ns: np.ndarray) -> None:
    """Regular, rounded, gapped, irregular, unordered and wrapping times come back exactly."""
    batch = FrameBatch(t_ns.astype(np.int64), {"v": np.zeros(len(t_ns), np.float32)})
    out = chunk.decode(chunk.encode(batch, channels=[Channel(name="v", resolution=1)]))
    assert np.array_equal(out.t_ns, batch.t_ns)
    assert out.t_ns.dtype == np.int64


def test_regular_times_cost_almost_nothing() -> None:
    """A regular time column adds a few bytes, whatever the number of frames."""
    one = FrameBatch(np.array([T0]), {})
    many = FrameBatch(T0 + np.arange(1000) * 16_666_667, {})
    assert len(chunk.encode(many)) - len(chunk.encode(one)) < 16


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_batches_round_trip(n: int) -> None:
    """Empty, single- and two-frame batches round-trip with their channel names and dtypes."""
    batch = car_batch(n, seed=1)
    for channels in (None, list(STANDARD.values())):
        out = chunk.decode(chunk.encode(batch, channels=channels))
        assert_at_resolution(batch, out, list(STANDARD.values()) if channels else [])
        assert out.n == n


def test_batch_without_columns_round_trips() -> None:
    """A batch of times only is a valid chunk."""
    batch = FrameBatch(np.array([1, 2, 3], dtype=np.int64), {})
    for version in (1, 2):
        assert_identical(batch, chunk.decode(chunk.encode(batch, version=version)))


def test_byte_order_and_strides_are_normalised() -> None:
    """Big-endian and strided columns encode; they decode to native contiguous arrays."""
    base = np.arange(20, dtype=">f8") / 3
    batch = FrameBatch(np.arange(10, dtype=">i8"), {"be": base[:10], "strided": base[::2]})
    for channels in (None, [Channel(name="be", dtype="f8", resolution=1e-3)]):
        out = chunk.decode(chunk.encode(batch, channels=channels))
        assert out.columns["be"].dtype == np.float64
        assert out.columns["strided"].flags.c_contiguous
        assert np.array_equal(out.columns["strided"], base[::2])
        assert np.allclose(out.columns["be"], base[:10], rtol=0, atol=5e-4)
        assert np.array_equal(out.t_ns, np.arange(10))


def test_columns_without_a_channel_or_resolution_are_exact() -> None:
    """Only columns whose channel declares a resolution are quantized; channels the batch
    does not have are ignored; a ChannelSet works like a list."""
    batch = car_batch(300, seed=3)
    channels = STANDARD.select(["speed", "rpm", "throttle"]).merged(
        [Channel(name="not_in_batch", resolution=1)]
    )
    for given_as in (channels, list(channels.values())):
        out = chunk.decode(chunk.encode(batch, channels=given_as))
        assert_at_resolution(batch, out, list(channels.values()))
        assert np.array_equal(out.columns["brake"], batch.columns["brake"])
        assert not np.array_equal(out.columns["speed"], batch.columns["speed"])


def test_absurdly_coarse_resolutions_are_coded_exactly() -> None:
    """A resolution too coarse to decode within float range codes the column exactly."""
    batch = FrameBatch(np.arange(3), {"a": np.array([1.0, 3e38, -2.0], np.float32)})
    out = chunk.decode(chunk.encode(batch, channels=[Channel(name="a", resolution=1e30)]))
    assert_identical(batch, out)


def test_decoded_arrays_are_independent_and_inputs_untouched() -> None:
    """Encoding leaves the batch as it was; decoded columns own their memory (a later decode
    does not change them)."""
    batch = car_batch(500, seed=4)
    before = {name: col.copy() for name, col in batch.columns.items()}
    channels = list(STANDARD.values())
    first = chunk.decode(chunk.encode(batch, channels=channels))
    kept = {name: col.copy() for name, col in first.columns.items()}
    chunk.decode(chunk.encode(car_batch(500, seed=5), channels=channels))
    assert all(np.array_equal(batch.columns[name], col) for name, col in before.items())
    assert all(np.array_equal(first.columns[name], col) for name, col in kept.items())


def test_threads_encode_and_decode_concurrently() -> None:
    """Threads sharing the codec (its scratch space is per thread) get correct results."""
    channels = list(STANDARD.values())
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(20):
                batch = car_batch(300 + i, seed=seed + i)
                out = chunk.decode(chunk.encode(batch, channels=channels))
                assert_at_resolution(batch, out, channels)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_version_byte_comes_first() -> None:
    """The blob starts with the codec version, v2 unless v1 is asked for; version_of reads
    it."""
    batch = car_batch(10, seed=2)
    assert chunk.VERSION == 2
    assert chunk.version_of(chunk.encode(batch)) == 2
    assert chunk.version_of(chunk.encode(batch, version=1)) == 1


# A chunk written by the v1 encoder (pitwire 0.1): 4 frames, speed [f4] and packet_id [f8].
V1_GOLDEN = bytes.fromhex(
    "010002000400000028b52ffd24625502004204101cb0a931e09298c380826a0ff8b470246b2ec65e82021e"
    "b85d645192143f430c8a8f11362dfd7b133ff447fffec6eeaacc7ca9756392479b4571033655e708400200"
    "0024c000142fddfef5"
)
V1_BATCH = FrameBatch(
    T0 + np.array([0, 16_666_667, 33_333_333, 50_000_000]),
    {
        "speed": np.array([100.25, 100.5, np.nan, -0.0], np.float32),
        "packet_id": np.array([7.0, 8.0, 9.0, 10.0]),
    },
)


def test_v1_golden_blob_still_decodes() -> None:
    """A blob written by the v1 encoder decodes bit for bit, and v1 still writes it."""
    assert_identical(V1_BATCH, chunk.decode(V1_GOLDEN))
    assert zstandard.ZstdDecompressor().decompress(
        chunk.encode(V1_BATCH, version=1)[8:]
    ) == zstandard.ZstdDecompressor().decompress(V1_GOLDEN[8:])


# The v2 header and payload of V2_BATCH (the zstd frame around it depends on zstd's version):
# speed at 0.01 with a NaN exception, dist at 0.5 (order 2), packet_id exact (order 2), and a
# late frame (irregular time steps, dense).
V2_HEADER = bytes.fromhex("0200030006000000")
V2_PAYLOAD = bytes.fromhex(
    "03000600000028000000"  # C, N, descriptor bytes
    "030573706565647b14ae47e17a843f030464697374000000000000e03f02097061636b65745f6964"
    "00002a36fe9c9717" "8096980000000000" "02" "01" "0000000605"  # t0, period, dense e
    "08" "520000" "4e0000" "000000" "000000" "000000" "000000" "00001c" "000040"  # first
    "010202"  # orders
    "010107" "3200643232" "0400000000"  # deltas: speed, dist, then packet_id's 7 planes
    "00ff000000" "00ff000000" "00ff000000" "00ff000000" "00ff000000" "00ff000000" "0803000000"
    "01000000" "0104" "02" "0000c07f"  # one exception: speed[2] is NaN
)  # fmt: skip
V2_CHANNELS = [
    Channel(name="speed", unit="km/h", resolution=0.01),
    Channel(name="dist", resolution=0.5),
]
V2_BATCH = FrameBatch(
    T0 + np.arange(6) * 10_000_000 + np.array([0, 0, 0, 0, 3, 0]),
    {
        "speed": np.array([100.25, 100.5, np.nan, 101.0, 101.25, 101.5], np.float32),
        "dist": np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], np.float32),
        "packet_id": np.array([7.0, 8.0, 9.0, 10.0, 11.0, 12.0]),
    },
)


def test_v2_serializes_to_the_golden_payload() -> None:
    """encode writes the documented v2 header and payload byte for byte."""
    blob = chunk.encode(V2_BATCH, channels=V2_CHANNELS)
    assert blob[:8] == V2_HEADER
    assert zstandard.ZstdDecompressor().decompress(blob[8:]) == V2_PAYLOAD


def test_v2_golden_payload_parses() -> None:
    """The golden v2 payload decodes to the batch (these values are all on their steps)."""
    blob = V2_HEADER + zstandard.ZstdCompressor(write_checksum=True).compress(V2_PAYLOAD)
    assert_identical(V2_BATCH, chunk.decode(blob))


def test_unknown_versions_are_codec_errors() -> None:
    """Decoding or asking to write a version this build does not know raises CodecError."""
    blob = chunk.encode(car_batch(10, seed=3))
    with pytest.raises(chunk.CodecError, match="version 9"):
        chunk.decode(bytes([9]) + blob[1:])
    with pytest.raises(chunk.CodecError, match="version 3"):
        chunk.encode(car_batch(10, seed=3), version=3)


def test_codec_error_is_a_value_error() -> None:
    """CodecError is a ValueError, so generic input-validation handlers catch it."""
    assert issubclass(chunk.CodecError, ValueError)


@pytest.mark.parametrize("version", [1, 2])
def test_every_truncation_is_a_codec_error(version: int) -> None:
    """Cutting a blob anywhere raises CodecError, never another exception."""
    batch = car_batch(50, seed=4)
    batch.columns["speed"][[3, 9]] = np.nan
    blob = chunk.encode(batch, channels=STANDARD, version=version)
    for size in range(len(blob)):
        with pytest.raises(chunk.CodecError):
            chunk.decode(blob[:size])


@settings(max_examples=300, deadline=None, print_blob=True)
@given(data=st.data())
def test_corruption_is_detected(data: st.DataObject) -> None:
    """Flipping bits anywhere raises CodecError or (if the change is inert) decodes exactly."""
    batch = car_batch(data.draw(st.integers(0, 40)), seed=5)
    version = data.draw(st.sampled_from([1, 2]))
    blob = bytearray(chunk.encode(batch, version=version))
    pos = data.draw(st.integers(0, len(blob) - 1))
    blob[pos] ^= data.draw(st.integers(1, 255))
    try:
        out = chunk.decode(bytes(blob))
    except chunk.CodecError:
        return
    assert_identical(batch, out)


def _mangled(blob: bytes, rng: np.random.Generator) -> bytes:
    """``blob`` cut short, with bits flipped, or with its payload changed behind a valid
    checksum (so the parser, not zstd, has to notice)."""
    how = rng.integers(0, 4)
    if how == 0:
        return blob[: rng.integers(0, len(blob))]
    if how == 1:
        out = bytearray(blob)
        for _ in range(rng.integers(1, 4)):
            out[rng.integers(0, len(out))] ^= int(rng.integers(1, 256))
        return bytes(out)
    payload = bytearray(zstandard.ZstdDecompressor().decompress(blob[8:]))
    header = bytearray(blob[:8])
    if how == 2 and payload:
        for _ in range(rng.integers(1, 4)):
            payload[rng.integers(0, len(payload))] ^= int(rng.integers(1, 256))
    elif how == 2:
        payload += rng.bytes(rng.integers(1, 20))
    else:
        cut = rng.integers(0, len(payload) + 1)
        payload = payload[:cut] + rng.bytes(rng.integers(0, 3)) + payload[cut + 1 :]
        header[rng.integers(0, 8)] ^= int(rng.integers(0, 256))
    return bytes(header) + zstandard.ZstdCompressor(write_checksum=True).compress(bytes(payload))


def test_fuzzed_blobs_raise_codec_error_or_decode() -> None:
    """Random truncations, bit flips and payload changes (also behind a valid checksum) raise
    CodecError or decode to some batch; nothing else escapes."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    channels = [*STANDARD.values(), Channel(name="raw", dtype="f8")]
    for i in range(600):
        n = int(rng.integers(0, 80))
        batch = car_batch(n, seed=seed + i)
        batch.columns["raw"] = rng.normal(size=n)
        if n:
            batch.columns["speed"][rng.integers(0, n, 3)] = np.nan
            batch.columns["brake"][:] = np.nan
            batch.t_ns[rng.integers(0, n)] += int(rng.integers(-(10**9), 10**9))
        blob = chunk.encode(batch, channels=channels, version=int(rng.integers(1, 3)))
        try:
            out = chunk.decode(_mangled(blob, rng))
        except chunk.CodecError:
            continue
        assert isinstance(out, FrameBatch)
        assert all(len(col) == out.n for col in out.columns.values())


@pytest.mark.parametrize(
    "column", [np.arange(3, dtype=np.int32), np.arange(3, dtype=np.float16)], ids=str
)
def test_non_float_columns_are_refused(column: np.ndarray) -> None:
    """encode accepts only float32/float64 columns and says which column is wrong."""
    batch = FrameBatch(np.arange(3, dtype=np.int64), {"bad": column})
    for version in (1, 2):
        with pytest.raises(chunk.CodecError, match="'bad'"):
            chunk.encode(batch, version=version)


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
    """A smooth 60 Hz car signal in 1000-frame chunks costs under 1 byte per sample exact
    (v1) and well under the 0.75 target at the standard resolutions (v2)."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    sizes = {"v1": 0, "v2": 0}
    samples = 0
    for i in range(12):  # 200 s at 60 Hz
        batch = car_batch(1000, seed=seed + i, t0_ns=T0 + i * 10**12)
        sizes["v1"] += len(chunk.encode(batch, version=1))
        sizes["v2"] += len(chunk.encode(batch, channels=STANDARD))
        samples += batch.n * len(batch.columns)
    per_sample = {k: v / samples for k, v in sizes.items()}
    print(f"bytes/sample ({len(STANDARD)} channels + time, f4): {per_sample}")
    assert per_sample["v1"] < 1.2
    assert per_sample["v2"] < 0.4


def test_real_forza_drive_round_trips_at_resolution_in_half_the_bytes() -> None:
    """The Forza Laguna Seca recording (through its manifest) decodes exact at each channel's
    resolution, in at most about half of v1's bytes."""
    from pitwire.sources.base import StreamUpdate
    from pitwire.sources.forza import ForzaDecoder, encode_dash, rows_from_csv
    from pitwire.sources.framer import Framer

    decoder = ForzaDecoder()
    framer = Framer(decoder.manifest)
    for k, row in enumerate(rows_from_csv(fixture("forza/laguna-seca.csv"))):
        framer.add(decoder.feed(encode_dash(row), T0 + k * 110_000_000))
    items = framer.drain()
    channels = next(i.info.channels for i in items if isinstance(i, StreamUpdate))
    batch = FrameBatch.concat([i[1] for i in items if isinstance(i, tuple)])
    v1, v2 = chunk.encode(batch, version=1), chunk.encode(batch, channels=channels)
    assert_at_resolution(batch, chunk.decode(v2), channels)
    samples = batch.n * len(batch.columns)
    print(f"bytes/sample: v1 {len(v1) / samples:.3f}, v2 {len(v2) / samples:.3f}")
    assert len(v2) < 0.55 * len(v1)


def test_channel_sets_and_lists_give_the_same_blob() -> None:
    """channels may be a ChannelSet or a sequence of Channel."""
    batch = car_batch(100, seed=7)
    as_set = ChannelSet(STANDARD.values())
    assert chunk.encode(batch, channels=as_set) == chunk.encode(
        batch, channels=list(STANDARD.values())
    )
