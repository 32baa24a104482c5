"""Tests of binary data frames (pitwire.protocol.frames): golden vectors in both directions,
round trips, alignment and every rejection."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitwire.protocol import frames
from pitwire.protocol.frames import FrameError

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "spec" / "vectors" / "data_frames.json").read_text()
)
T0 = 1_763_000_000_123_456_789


def bits(col: np.ndarray) -> np.ndarray:
    """The raw bit patterns of a float column (NaN payloads and -0.0 compare exactly)."""
    return col.view(np.uint32 if col.dtype.itemsize == 4 else np.uint64)


def vector_columns(case: dict) -> list[tuple[int, np.ndarray]]:
    return [(c["channel"], np.asarray(c["values"], c["dtype"])) for c in case["columns"]]


def vector_times(case: dict) -> np.ndarray:
    t0 = int(case["t0_ns"])
    return t0 + np.rint(np.asarray(case["t_offsets"], np.float64) * 1e9).astype(np.int64)


def one_frame(**overrides: object) -> bytes:
    """A valid frame: 3 frames, an f4 column that needs padding and an f8 column."""
    args: dict = {
        "group": 3,
        "seq": 10,
        "t_ns": np.array([T0, T0 + 1000, T0 + 2000], np.int64),
        "columns": [(2, np.array([1, 2, 3], "f4")), (7, np.array([4, 5, 6], "f8"))],
    }
    args.update(overrides)
    return frames.serialize(**args)


# --- golden vectors -----------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_parse_golden_vector(case):
    """Each golden frame parses to exactly the header fields, times and columns listed."""
    df = frames.parse(bytes.fromhex(case["hex"]))
    assert df.group == case["group"]
    assert df.seq == case["seq"]
    assert df.t0_ns == int(case["t0_ns"])
    assert df.epoch == case["epoch"]
    assert df.n == len(case["t_offsets"])
    assert df.t_offsets.tolist() == case["t_offsets"]
    assert list(df.columns) == [c["channel"] for c in case["columns"]]
    for c in case["columns"]:
        col = df.columns[c["channel"]]
        assert col.dtype == np.dtype(c["dtype"])
        np.testing.assert_array_equal(bits(col), bits(np.asarray(c["values"], c["dtype"])))


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_serialize_golden_vector(case):
    """Serializing each golden vector's fields reproduces its bytes exactly."""
    data = frames.serialize(
        group=case["group"],
        seq=case["seq"],
        t_ns=vector_times(case),
        columns=vector_columns(case),
        epoch=case["epoch"],
    )
    assert data.hex() == case["hex"]


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_parse_then_serialize_golden_vector_is_identity(case):
    """parse followed by serialize gives back the golden bytes."""
    df = frames.parse(bytes.fromhex(case["hex"]))
    again = frames.serialize(
        group=df.group, seq=df.seq, t_ns=df.t_ns(), columns=list(df.columns.items()), epoch=df.epoch
    )
    assert again.hex() == case["hex"]


def test_golden_vectors_cover_the_edge_cases():
    """The vectors include an empty frame, f4 padding, f8, a non-zero epoch and u32/2^53 ids."""
    names = {c["name"] for c in VECTORS}
    assert {"empty", "one_frame", "three_frames_mixed", "large_ids"} <= names
    assert any(c["epoch"] for c in VECTORS)
    assert any(c["group"] == 2**32 - 1 for c in VECTORS)


# --- round trips --------------------------------------------------------------------------

f4 = st.floats(width=32, allow_nan=True, allow_infinity=True)
f8 = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def frame_args(draw: st.DrawFn) -> dict:
    n = draw(st.integers(0, 40))
    t0 = draw(st.integers(-(2**62), 2**62))
    offsets = draw(st.lists(st.integers(-(10**12), 10**12), min_size=n, max_size=n))
    if n:
        offsets[0] = 0
    ids = draw(st.lists(st.integers(0, 65535), unique=True, max_size=8))
    columns = []
    for cid in ids:
        dtype = draw(st.sampled_from(["f4", "f8"]))
        values = draw(st.lists(f4 if dtype == "f4" else f8, min_size=n, max_size=n))
        columns.append((cid, np.array(values, dtype)))
    return {
        "group": draw(st.integers(0, 2**32 - 1)),
        "seq": draw(st.integers(0, 2**64 - 1)),
        "epoch": draw(st.integers(0, 2**32 - 1)),
        "t_ns": t0 + np.array(offsets, np.int64),
        "columns": columns,
    }


@settings(max_examples=200, deadline=None)
@given(frame_args())
def test_round_trip_is_exact(args):
    """Any frame (0..n frames, f4/f8 columns with NaN/inf, any ids and times) parses back to
    exactly what was serialized."""
    df = frames.parse(frames.serialize(**args))
    assert (df.group, df.seq, df.epoch, df.n) == (
        args["group"],
        args["seq"],
        args["epoch"],
        len(args["t_ns"]),
    )
    np.testing.assert_array_equal(df.t_ns(), args["t_ns"])
    if df.n:
        assert df.t0_ns == args["t_ns"][0]
    assert list(df.columns) == [cid for cid, _ in args["columns"]]
    for cid, values in args["columns"]:
        assert df.columns[cid].dtype == values.dtype
        np.testing.assert_array_equal(bits(df.columns[cid]), bits(values))


@settings(max_examples=100, deadline=None)
@given(frame_args())
def test_every_column_starts_on_an_8_byte_boundary(args):
    """The time column and every value column start at a multiple of 8 from the frame start,
    and the frame length is a multiple of 8."""
    data = frames.serialize(**args)
    base = np.frombuffer(data, np.uint8).ctypes.data
    df = frames.parse(data)
    assert len(data) % 8 == 0
    views = [df.t_offsets, *df.columns.values()]
    for view in views:
        if len(view):
            assert (view.ctypes.data - base) % 8 == 0


def test_parse_columns_are_read_only_views_into_the_buffer():
    """Parsed columns share the buffer's memory instead of copying it."""
    data = bytearray(one_frame())
    df = frames.parse(data)
    df_copy = frames.parse(bytes(data))
    col = df.columns[7]
    assert np.shares_memory(col, np.frombuffer(data, np.uint8))
    np.testing.assert_array_equal(col, df_copy.columns[7])


def test_t_ns_are_the_absolute_times():
    """DataFrame.t_ns() adds the offsets back to t0 [ns]."""
    df = frames.parse(one_frame())
    assert df.t_ns().tolist() == [T0, T0 + 1000, T0 + 2000]
    assert "n=3" in repr(df)


def test_serialize_converts_big_endian_floats_to_little_endian():
    """A big-endian float column is written little-endian and reads back with the same
    values."""
    values = np.array([1.5, -2.25, np.inf], ">f8")
    data = one_frame(columns=[(1, values)])
    assert data == one_frame(columns=[(1, values.astype("<f8"))])
    np.testing.assert_array_equal(frames.parse(data).columns[1], values)


# --- rejection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mangle", "needle"),
    [
        (lambda d: d[:10], "shorter than the 32-byte header"),
        (lambda d: b"", "shorter than the 32-byte header"),
        (lambda d: d[:-1], "header says"),
        (lambda d: d[:-8], "header says"),
        (lambda d: d + bytes(8), "header says"),
        (lambda d: d + b"\x00", "header says"),
        (lambda d: d[:36], "truncated column table"),
        (lambda d: b"\x02" + d[1:], "unknown opcode 0x02"),
        (lambda d: b"\x00" + d[1:], "unknown opcode 0x00"),
        (lambda d: d[:34] + b"\x03" + d[35:], "channel 2: unknown dtype code 3"),
        (lambda d: d[:38] + b"\x00" + d[39:], "channel 7: unknown dtype code 0"),
        (lambda d: d[:24] + struct.pack("<I", 4) + d[28:], "header says"),
        (lambda d: d[:24] + struct.pack("<I", frames.MAX_FRAMES + 1) + d[28:], "exceeds"),
        (lambda d: d[:2] + struct.pack("<H", 100) + d[4:], "truncated column table"),
        (lambda d: d[:36] + struct.pack("<H", 2) + d[38:], "channel 2 appears twice"),
    ],
    ids=[
        "truncated_header",
        "empty_buffer",
        "one_byte_short",
        "one_word_short",
        "extended_by_a_word",
        "extended_by_a_byte",
        "truncated_column_table",
        "opcode_2",
        "opcode_0",
        "unknown_dtype_f4_column",
        "unknown_dtype_f8_column",
        "frame_count_too_big_for_buffer",
        "frame_count_over_limit",
        "column_count_too_big_for_buffer",
        "duplicate_channel",
    ],
)
def test_parse_rejects_malformed_frames(mangle, needle):
    """A malformed frame raises FrameError whose message names the problem."""
    with pytest.raises(FrameError, match=needle):
        frames.parse(mangle(one_frame()))


@pytest.mark.parametrize("dtype", ["i4", "i8", "u2", "f2", "bool", "c8"])
def test_serialize_rejects_non_float_columns(dtype):
    """Columns that are not float32/float64 raise FrameError naming the channel and dtype."""
    with pytest.raises(FrameError, match=r"channel 2: dtype .* is not float32/float64"):
        one_frame(columns=[(2, np.zeros(3, dtype))])


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"group": -1}, "group -1 out of u32 range"),
        ({"group": 2**32}, "out of u32 range"),
        ({"seq": -1}, "seq -1 out of u64 range"),
        ({"seq": 2**64}, "out of u64 range"),
        ({"epoch": -1}, "epoch -1 out of u32 range"),
        ({"epoch": 2**32}, "out of u32 range"),
        ({"columns": [(2**16, np.zeros(3, "f4"))]}, "channel id 65536 out of u16 range"),
        ({"columns": [(-1, np.zeros(3, "f4"))]}, "channel id -1 out of u16 range"),
        ({"columns": [(2, np.zeros(2, "f4"))]}, "channel 2: 2 values for 3 frames"),
        (
            {"columns": [(2, np.zeros(3, "f4")), (2, np.zeros(3, "f8"))]},
            "channel 2 appears twice",
        ),
    ],
)
def test_serialize_rejects_bad_arguments(overrides, needle):
    """Out-of-range header fields, channel ids, wrong column lengths and repeated channels
    raise FrameError instead of writing a frame parse would reject."""
    with pytest.raises(FrameError, match=needle):
        one_frame(**overrides)


def test_frame_error_is_a_value_error():
    """FrameError is a ValueError, so callers validating input can catch either."""
    assert issubclass(FrameError, ValueError)
