"""STATE frames: golden vectors both ways, round trips, epochs and malformed input."""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitwire.protocol.frames import FrameError
from pitwire.protocol.state import StateDecoder, StateEncoder, describe

VECTORS = json.loads(
    (pathlib.Path(__file__).parents[2] / "spec" / "vectors" / "state_frames.json").read_text()
)
GROUPS = {int(g): r for g, r in VECTORS["groups"].items()}


def _expected(row: list[float | str | None]) -> list[float]:
    return [math.nan if x is None else float(x) for x in row]


def test_golden_vectors_decode_to_their_state():
    """Applying the vector frames in order gives each listed state and header."""
    dec = StateDecoder(GROUPS)
    for case in VECTORS["frames"]:
        frame = dec.apply(bytes.fromhex(case["hex"]))
        assert frame is not None
        assert (frame.keyframe, frame.epoch, frame.t_ns) == (
            case["keyframe"],
            case["epoch"],
            int(case["t_ns"]),
        )
        for g, row in case["state"].items():
            np.testing.assert_array_equal(dec.state[int(g)], _expected(row), err_msg=case["name"])


def test_the_encoder_reproduces_the_golden_bytes():
    """Encoding the vectors' states in order gives exactly the vector bytes."""
    enc = StateEncoder(GROUPS)
    for case in VECTORS["frames"]:
        values = {int(g): np.array(_expected(row)) for g, row in case["state"].items()}
        if case["name"] == "keyframe":
            values[9] = None  # type: ignore[assignment]  # no frame yet, rather than NaNs
        data = enc.encode(
            epoch=case["epoch"], t_ns=int(case["t_ns"]), values=values, keyframe=case["keyframe"]
        )
        assert data.hex() == case["hex"], case["name"]


def test_unchanged_state_costs_only_the_header_and_small_changes_a_byte_or_two():
    """A delta with nothing changed is 16 bytes; one channel moving by a step adds 4."""
    enc = StateEncoder({1: [0.01] * 10})
    row = np.linspace(0, 100, 10)
    enc.encode(epoch=1, t_ns=0, values={1: row}, keyframe=True)
    assert len(enc.encode(epoch=1, t_ns=1, values={1: row}, keyframe=False)) == 16
    row2 = row.copy()
    row2[3] += 0.01
    assert len(enc.encode(epoch=1, t_ns=2, values={1: row2}, keyframe=False)) == 16 + 1 + 3 + 1


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-(10**6), 10**6).map(lambda i: i * 0.01),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(values, min_size=5, max_size=5), min_size=1, max_size=8))
def test_round_trip_keeps_every_value_at_its_resolution(rows: list[list[float]]):
    """Any sequence of states (a keyframe, then deltas) decodes to the encoded values: exact
    for exact channels, within half a step for stepped ones, NaN as no value."""
    res = [0.01, 1.0, None, 0.001, None]
    enc, dec = StateEncoder({3: res}), StateDecoder({3: res})
    for i, row in enumerate(rows):
        data = enc.encode(epoch=1, t_ns=i, values={3: np.array(row)}, keyframe=i == 0)
        dec.apply(data)
        for j, (want, got) in enumerate(zip(row, dec.state[3], strict=True)):
            if math.isnan(want):
                assert math.isnan(got)
            elif res[j] is None or not math.isfinite(want) or abs(want / res[j]) >= 2**53:  # type: ignore[operator]
                assert got == want
            else:
                assert abs(got - want) <= res[j] / 2 * (1 + 1e-9) + abs(want) * 1e-15  # type: ignore[operator]


def test_frames_of_an_older_epoch_are_dropped_and_a_delta_needs_its_keyframe():
    """After epoch 2's keyframe a frame of epoch 1 is ignored; a delta of epoch 3 before
    any keyframe of epoch 3 is an error."""
    enc = StateEncoder({1: [1.0]})
    old = enc.encode(epoch=1, t_ns=0, values={1: np.array([5.0])}, keyframe=True)
    new = enc.encode(epoch=2, t_ns=9, values={1: np.array([7.0])}, keyframe=True)
    ahead = enc.encode(epoch=3, t_ns=10, values={1: np.array([8.0])}, keyframe=False)
    dec = StateDecoder({1: [1.0]})
    dec.apply(new)
    assert dec.apply(old) is None
    assert dec.state[1][0] == 7.0
    with pytest.raises(FrameError, match="before its keyframe"):
        dec.apply(ahead)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:10], "shorter than its 16-byte header"),
        (lambda b: b"\x07" + b[1:], "unknown opcode"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "after its last entry"),
        (lambda b: b[:16] + b"\x05" + b[17:], "unknown group"),
    ],
)
def test_malformed_frames_raise_frame_error(mutate, message):  # type: ignore[no-untyped-def]
    """Truncation, a wrong opcode, trailing bytes and unknown groups raise FrameError."""
    enc = StateEncoder({1: [0.01, None]})
    good = enc.encode(epoch=1, t_ns=0, values={1: np.array([1.0, 2.0])}, keyframe=True)
    with pytest.raises(FrameError, match=message):
        StateDecoder({1: [0.01, None]}).apply(mutate(good))


def test_describe_reads_the_header():
    """describe() gives the header fields of a frame."""
    data = bytes.fromhex(VECTORS["frames"][1]["hex"])
    assert describe(data) == {
        "keyframe": False,
        "entries": 2,
        "epoch": 1,
        "t_ns": int(VECTORS["frames"][1]["t_ns"]),
    }
