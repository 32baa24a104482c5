"""JSON Lines export, read back with the json module."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pitwire.export import ExportError, MemorySession, export_session
from pitwire.model.channels import Channel
from pitwire.model.frames import FrameBatch
from pitwire.model.records import SessionInfo, StreamInfo


def no_constants(name: str) -> None:
    raise AssertionError(f"non-standard JSON constant {name}")


def read(path: Path) -> list[dict[str, Any]]:
    """Each line as an object; NaN/Infinity tokens (not JSON) fail the test."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line, parse_constant=no_constants) for line in lines]


def test_one_file_per_session_grouped_by_stream(tmp_path: Path, session: MemorySession) -> None:
    """One `<session>.jsonl` holds every frame, stream by stream, each in time order."""
    [path] = export_session(session, "jsonl", tmp_path)
    assert path == tmp_path / "race-1.jsonl"
    objects = read(path)
    b1, b2 = session.frames("car-1"), session.frames("car-2")
    assert [o["stream"] for o in objects] == ["car-1"] * b1.n + ["car-2"] * b2.n
    assert [o["t_ns"] for o in objects] == b1.t_ns.tolist() + b2.t_ns.tolist()


def test_values_at_resolution_nan_null(tmp_path: Path, session: MemorySession) -> None:
    """Values equal the frames at each channel's resolution (exact without one); NaN and
    infinities are null."""
    [path] = export_session(session, "jsonl", tmp_path)
    objects = read(path)
    for stream in session.streams:
        batch = session.frames(stream.stream_id)
        mine = [o for o in objects if o["stream"] == stream.stream_id]
        assert len(mine) == batch.n
        for i, obj in enumerate(mine):
            assert list(obj) == ["stream", "t_ns", *(c.name for c in stream.channels)]
            for c in stream.channels:
                value = float(batch.columns[c.name][i])
                got = obj[c.name]
                if not math.isfinite(value):
                    assert got is None, (c.name, i)
                elif c.resolution is None:
                    assert np.array(got, c.dtype) == np.array(value, c.dtype), (c.name, i)
                else:
                    assert round(got / c.resolution) == round(value / c.resolution), (c.name, i)


def test_selection(tmp_path: Path, session: MemorySession) -> None:
    """Only the chosen streams and channels appear, channels in the order given."""
    [path] = export_session(
        session, "jsonl", tmp_path / "sel.jsonl", streams=["car-2"], channels=["gear", "rpm"]
    )
    objects = read(path)
    assert len(objects) == session.frames("car-2").n
    assert {tuple(o) for o in objects} == {("stream", "t_ns", "gear", "rpm")}


def test_empty_selection_writes_empty_file(tmp_path: Path, session: MemorySession) -> None:
    """A stream without frames writes no line."""
    [path] = export_session(session, "jsonl", tmp_path, streams=["car-3"])
    assert path.read_text(encoding="utf-8") == ""


def test_unknown_stream_raises(tmp_path: Path, session: MemorySession) -> None:
    """An unknown stream is an ExportError that lists the known ones."""
    with pytest.raises(ExportError, match=r"car-9.*known: car-1, car-2, car-3"):
        export_session(session, "jsonl", tmp_path, streams=["car-9"])


def test_stream_id_is_json_escaped(tmp_path: Path) -> None:
    """A stream id with quotes or % is written as a proper JSON string."""
    channel = Channel(name="rpm", resolution=1)
    session = MemorySession(
        info=SessionInfo(session_id="s"),
        streams=[StreamInfo(stream_id='a"%d', channels=[channel])],
        batches={'a"%d': FrameBatch(np.array([5], np.int64), {"rpm": np.ones(1, np.float32)})},
    )
    [path] = export_session(session, "jsonl", tmp_path)
    assert read(path) == [{"stream": 'a"%d', "t_ns": 5, "rpm": 1}]
