"""Tests of the original design's JSON shapes (pitwire.protocol.compat)."""

from __future__ import annotations

import json

import msgspec
import numpy as np

from pitwire.model.frames import FrameBatch
from pitwire.protocol.compat import compat_message

FRAME_KEYS = {"packetId", "gas", "brake", "fuel", "gear", "rpms", "steerAngle", "speedKmh"}
T0 = 1_700_000_000_000_000_000


def batch(n: int = 2, **columns: np.ndarray) -> FrameBatch:
    return FrameBatch(T0 + np.arange(n, dtype=np.int64) * 16_666_667, columns)


def full_batch() -> FrameBatch:
    return batch(
        2,
        packet_id=np.array([17, 18], np.float64),
        throttle=np.array([0.1, 1.0], np.float32),
        brake=np.array([0.0, 0.3], np.float32),
        fuel=np.array([40.7, 40.6], np.float32),
        gear=np.array([3, -1], np.float32),
        rpm=np.array([7123, 800], np.float32),
        steer=np.array([-0.1, 0.05], np.float32),
        speed=np.array([150.3, 12.0], np.float32),
        lap=np.array([4, 5], np.float32),
    )


def test_message_has_exactly_session_lap_and_data():
    """A compat message has exactly the keys sessionID, lap and data."""
    msg = compat_message("s1", 0, full_batch())
    assert set(msg) == {"sessionID", "lap", "data"}
    assert msg["sessionID"] == "s1"


def test_frames_have_exactly_the_original_keys():
    """Every frame in data has exactly the original eight keys."""
    msg = compat_message("s1", 0, full_batch())
    assert len(msg["data"]) == 2
    assert all(set(f) == FRAME_KEYS for f in msg["data"])


def test_float32_values_print_as_their_shortest_decimal():
    """float32 values come out as the shortest decimal of that float32 (0.1, not
    0.10000000149011612), also after JSON encoding."""
    msg = compat_message("s1", 0, full_batch())
    first, second = msg["data"]
    assert (first["gas"], first["fuel"], first["steerAngle"], first["speedKmh"]) == (
        0.1,
        40.7,
        -0.1,
        150.3,
    )
    assert second["brake"] == 0.3
    text = msgspec.json.encode(msg).decode()
    assert '"gas":0.1,' in text and "0.10000000149011612" not in text
    assert json.loads(text) == msg


def test_float64_columns_keep_their_full_value():
    """float64 channels are passed through unchanged."""
    msg = compat_message("s", 0, batch(1, speed=np.array([0.1 + 0.2], np.float64)))
    assert msg["data"][0]["speedKmh"] == 0.1 + 0.2


def test_gear_rpms_and_packet_id_are_ints():
    """gear, rpms and packetId are JSON integers, not floats."""
    msg = compat_message("s1", 0, full_batch())
    first, second = msg["data"]
    assert (first["packetId"], first["gear"], first["rpms"]) == (17, 3, 7123)
    assert (second["packetId"], second["gear"], second["rpms"]) == (18, -1, 800)
    for frame in msg["data"]:
        assert all(type(frame[k]) is int for k in ("packetId", "gear", "rpms"))
    assert '"rpms":7123,' in msgspec.json.encode(msg).decode()


def test_lap_is_the_last_frames_lap():
    """lap is the lap of the batch's last frame, as an int."""
    msg = compat_message("s1", 0, full_batch())
    assert msg["lap"] == 5 and type(msg["lap"]) is int


def test_missing_channels_get_defaults_and_packet_ids_follow_seq():
    """Without packet_id the packet ids are the frames' seqs; missing channels are 0 and a
    missing lap is 0."""
    msg = compat_message("s2", 40, batch(3, speed=np.array([1.5, 2.5, 3.5], np.float32)))
    assert msg["lap"] == 0
    assert [f["packetId"] for f in msg["data"]] == [40, 41, 42]
    assert [f["speedKmh"] for f in msg["data"]] == [1.5, 2.5, 3.5]
    assert all(f["gear"] == 0 and f["rpms"] == 0 and f["gas"] == 0.0 for f in msg["data"])


def test_empty_batch_gives_no_frames():
    """An empty batch gives an empty data list."""
    msg = compat_message("s", 0, batch(0, lap=np.empty(0, np.float32)))
    assert msg["data"] == []


def test_values_not_known_yet_are_zero():
    """NaN (a game that has not sent a value yet) becomes 0 in the original shape."""
    import math

    import numpy as np

    from pitwire.model.frames import FrameBatch

    nan = math.nan
    batch = FrameBatch(
        np.array([1, 2], np.int64),
        {
            "lap": np.array([2, nan], np.float32),
            "gear": np.array([nan, 3], np.float32),
            "speed": np.array([nan, 100], np.float32),
        },
    )
    msg = compat_message("s", 0, batch)
    assert msg["lap"] == 0
    assert [(f["gear"], f["speedKmh"]) for f in msg["data"]] == [(0, 0.0), (3, 100.0)]
