"""CSV export, read back with the csv module."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from pitwire.export import ExportError, MemorySession, export_session
from pitwire.export.csv import heading
from pitwire.model.channels import Channel


def read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def check_value(channel: Channel, text: str, value: float) -> None:
    """``text`` is ``value`` at ``channel``'s resolution (exactly when it has none)."""
    if math.isnan(value):
        assert text == "", (channel.name, text)
        return
    if math.isinf(value):
        assert float(text) == value, (channel.name, text)
        return
    res = channel.resolution
    if res is None:
        assert np.array(float(text), channel.dtype) == np.array(value, channel.dtype), (
            channel.name,
            text,
            value,
        )
    else:
        assert round(float(text) / res) == round(float(value) / res), (channel.name, text, value)


def test_one_file_per_stream_named_session_stream(tmp_path: Path, session: MemorySession) -> None:
    """A directory destination gets `<session>_<stream>.csv` for every stream."""
    paths = export_session(session, "csv", tmp_path / "out")
    assert [p.name for p in paths] == ["race-1_car-1.csv", "race-1_car-2.csv", "race-1_car-3.csv"]
    assert all(p.parent == tmp_path / "out" and p.is_file() for p in paths)


def test_header_names_units(tmp_path: Path, session: MemorySession) -> None:
    """The header is time_s, t_ns, then `name [unit]` per channel (`name` without a unit)."""
    [path, *_] = export_session(session, "csv", tmp_path)
    header, _ = read(path)
    assert header[:5] == ["time_s", "t_ns", "speed [km/h]", "rpm [1/min]", "gear"]
    assert "tyre_temp_fl [°C]" in header
    assert header[2:] == [heading(c) for c in session.streams[0].channels]


def test_values_at_resolution_and_times_exact(tmp_path: Path, session: MemorySession) -> None:
    """Every value reads back equal at its channel's resolution, t_ns exactly, time_s from
    the session start."""
    [path, *_] = export_session(session, "csv", tmp_path)
    _, rows = read(path)
    batch = session.frames("car-1")
    channels = session.streams[0].channels
    assert len(rows) == batch.n
    for i, row in enumerate(rows):
        t = int(batch.t_ns[i])
        assert int(row[1]) == t
        assert float(row[0]) == pytest.approx((t - session.info.started_ns) / 1e9, abs=1e-6)
        for c, text in zip(channels, row[2:], strict=True):
            check_value(c, text, float(batch.columns[c.name][i]))


def test_decimals_follow_the_resolution(tmp_path: Path, session: MemorySession) -> None:
    """Values print with the decimals the resolution implies: no float32 noise, no -0."""
    [path, *_] = export_session(session, "csv", tmp_path)
    header, rows = read(path)
    col = {name.split(" ")[0]: i for i, name in enumerate(header)}
    assert rows[8][col["speed"]] == "0.30"
    assert rows[9][col["steer"]] == "0.0000"
    assert rows[10][col["raw32"]] == "0.1"
    third = session.streams[0].channels[8]
    assert third.name == "third" and third.resolution is not None
    values = session.frames("car-1").columns["third"]
    for row, value in zip(rows, values.tolist(), strict=True):  # 1/3: no decimal count fits
        assert float(row[col["third"]]) == round(value / third.resolution) * third.resolution
    expected = {"speed": 2, "rpm": 0, "gear": 0, "throttle": 3, "steer": 4, "x": 3, "ride": 1}
    for name, places in expected.items():
        for row in rows:
            text = row[col[name]]
            if text in ("", "inf", "-inf"):
                continue
            assert len(text.partition(".")[2]) == places, (name, text)


def test_nan_is_empty_and_infinity_is_inf(tmp_path: Path, session: MemorySession) -> None:
    """NaN is an empty field; infinities read back as inf/-inf."""
    [path, *_] = export_session(session, "csv", tmp_path)
    header, rows = read(path)
    col = {name.split(" ")[0]: i for i, name in enumerate(header)}
    assert [rows[i][col["speed"]] for i in (3, 4, 17)] == ["", "", ""]
    assert rows[5][col["raw32"]] == ""
    assert float(rows[6][col["raw64"]]) == math.inf
    assert float(rows[7][col["rpm"]]) == -math.inf
    assert "nan" not in path.read_text(encoding="utf-8")


def test_second_stream_and_empty_stream(tmp_path: Path, session: MemorySession) -> None:
    """Each stream's file has its own channels and frames; a stream without frames is a header."""
    _, path2, path3 = export_session(session, "csv", tmp_path)
    header, rows = read(path2)
    batch = session.frames("car-2")
    assert header == ["time_s", "t_ns", "speed [km/h]", "rpm [1/min]", "gear"]
    assert [int(r[1]) for r in rows] == batch.t_ns.tolist()
    for i, row in enumerate(rows):
        for c, text in zip(session.streams[1].channels, row[2:], strict=True):
            check_value(c, text, float(batch.columns[c.name][i]))
    header3, rows3 = read(path3)
    assert header3 == header and rows3 == []


def test_channel_and_stream_selection(tmp_path: Path, session: MemorySession) -> None:
    """Only the chosen streams are written, with the chosen channels in the order given."""
    paths = export_session(
        session, "csv", tmp_path, streams=["car-2", "car-1"], channels=["gear", "speed"]
    )
    assert [p.name for p in paths] == ["race-1_car-1.csv", "race-1_car-2.csv"]
    for path in paths:
        header, _ = read(path)
        assert header == ["time_s", "t_ns", "gear", "speed [km/h]"]


def test_channel_only_some_streams_have(tmp_path: Path, session: MemorySession) -> None:
    """A channel one stream lacks is left out of that stream's file."""
    p1, p2, _ = export_session(session, "csv", tmp_path, channels=["raw64", "rpm"])
    assert read(p1)[0] == ["time_s", "t_ns", "raw64 [V]", "rpm [1/min]"]
    assert read(p2)[0] == ["time_s", "t_ns", "rpm [1/min]"]


def test_file_destination(tmp_path: Path, session: MemorySession) -> None:
    """A file destination is used as is for one stream and as a stem for several."""
    [one] = export_session(session, "csv", tmp_path / "lap.csv", streams=["car-2"])
    assert one == tmp_path / "lap.csv"
    many = export_session(session, "csv", tmp_path / "sub" / "all.csv")
    assert [p.name for p in many] == ["all_car-1.csv", "all_car-2.csv", "all_car-3.csv"]


def test_unknown_channel_raises(tmp_path: Path, session: MemorySession) -> None:
    """A channel no stream has is an ExportError naming it, and nothing is written."""
    with pytest.raises(ExportError, match="nope"):
        export_session(session, "csv", tmp_path / "x", channels=["speed", "nope"])
    assert not (tmp_path / "x").exists()


def test_time_from_first_frame_without_session_start(
    tmp_path: Path, session: MemorySession
) -> None:
    """Without a session start time, time_s counts from the stream's first frame."""
    session.info.started_ns = 0
    [path] = export_session(session, "csv", tmp_path, streams=["car-2"])
    _, rows = read(path)
    assert rows[0][0] == "0.000000"
    assert rows[3][0] == "0.050000"
