"""Parquet export, read back with pyarrow and with read_parquet."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pitwire.export import ExportError, MemorySession, MissingDependency, export_session
from pitwire.export.parquet import read_parquet
from pitwire.model.channels import Channel
from pitwire.model.frames import FrameBatch
from pitwire.model.records import StreamInfo


def same_frames(a: FrameBatch, b: FrameBatch) -> bool:
    """Same channels in the same order, dtypes, times and values (NaN equal to NaN)."""
    return (
        list(a.columns) == list(b.columns)
        and np.array_equal(a.t_ns, b.t_ns)
        and a.t_ns.dtype == b.t_ns.dtype
        and all(
            a.columns[n].dtype == b.columns[n].dtype
            and np.array_equal(a.columns[n], b.columns[n], equal_nan=True)
            for n in a.columns
        )
    )


def test_round_trip_exact(tmp_path: Path, session: MemorySession) -> None:
    """read_parquet gives back the session, streams, channels, laps and frames exactly."""
    [path] = export_session(session, "parquet", tmp_path)
    assert path == tmp_path / "race-1.parquet"
    back = read_parquet(path)
    assert back.info == session.info
    assert back.streams == session.streams
    assert back.laps == session.laps
    for stream in session.streams:
        assert same_frames(back.frames(stream.stream_id), session.frames(stream.stream_id))


def test_layout_read_with_pyarrow(tmp_path: Path, session: MemorySession) -> None:
    """One table: stream (dictionary), time (timestamp ns UTC), one float column per channel
    in its dtype; values exact, NaN kept, null where a stream lacks the channel."""
    [path] = export_session(session, "parquet", tmp_path)
    table = pq.read_table(path)
    schema = table.schema
    assert schema.field("stream").type == pa.dictionary(pa.int32(), pa.string())
    assert schema.field("time").type == pa.timestamp("ns", tz="UTC")
    assert schema.field("speed").type == pa.float32()
    assert schema.field("x").type == pa.float64()
    b1, b2 = session.frames("car-1"), session.frames("car-2")
    assert table.num_rows == b1.n + b2.n
    assert table.column("stream").to_pylist() == ["car-1"] * b1.n + ["car-2"] * b2.n
    times = table.column("time").cast(pa.int64()).to_numpy()
    assert np.array_equal(times, np.concatenate([b1.t_ns, b2.t_ns]))
    speed = table.column("speed").to_numpy()
    assert np.array_equal(speed[: b1.n], b1.columns["speed"], equal_nan=True)
    assert np.isnan(speed[3]) and table.column("speed").null_count == 0
    raw64 = table.column("raw64")
    assert raw64.null_count == b2.n  # car-2 has no raw64
    assert raw64.to_pylist()[6] == math.inf


def test_units_and_metadata(tmp_path: Path, session: MemorySession) -> None:
    """Units sit in each field's metadata, session/streams/laps in the schema's."""
    [path] = export_session(session, "parquet", tmp_path)
    schema = pq.read_schema(path)
    assert schema.field("speed").metadata[b"unit"] == b"km/h"
    assert schema.field("tyre_temp_fl").metadata[b"unit"] == "°C".encode()
    assert schema.field("gear").metadata[b"unit"] == b""
    channel = json.loads(schema.field("steer").metadata[b"pitwire.channel"])
    assert channel["resolution"] == 0.0001 and channel["unit"] == "rad"
    assert (channel["lo"], channel["hi"]) == ("-inf", "inf")  # JSON has no infinities
    meta = schema.metadata
    assert meta[b"pitwire.version"] == b"1"
    assert json.loads(meta[b"pitwire.session"])["track"] == "Spa"
    streams = json.loads(meta[b"pitwire.streams"])
    assert [s["stream_id"] for s in streams] == ["car-1", "car-2", "car-3"]
    assert streams[0]["driver"] == "Ana" and streams[1]["car"] == "GT4"
    assert len(json.loads(meta[b"pitwire.laps"])) == len(session.laps)


def test_selection(tmp_path: Path, session: MemorySession) -> None:
    """Chosen streams and channels only; the laps and streams kept are the chosen ones."""
    [path] = export_session(
        session, "parquet", tmp_path / "sel.parquet", streams=["car-1"], channels=["rpm", "x"]
    )
    table = pq.read_table(path)
    assert table.column_names == ["stream", "time", "rpm", "x"]
    back = read_parquet(path)
    assert [s.stream_id for s in back.streams] == ["car-1"]
    assert [c.name for c in back.streams[0].channels] == ["rpm", "x"]
    assert {lap.stream_id for lap in back.laps} == {"car-1"}
    assert same_frames(back.frames("car-1"), session.frames("car-1").select(["rpm", "x"]))


def test_empty_stream_round_trip(tmp_path: Path, session: MemorySession) -> None:
    """A stream without frames writes no row and reads back empty with its channels."""
    [path] = export_session(session, "parquet", tmp_path, streams=["car-3"])
    assert pq.read_table(path).num_rows == 0
    back = read_parquet(path)
    assert back.frames("car-3").n == 0
    assert list(back.frames("car-3").columns) == ["speed", "rpm", "gear"]


def test_conflicting_channel_definitions_raise(tmp_path: Path, session: MemorySession) -> None:
    """One column cannot carry two definitions of a channel: ExportError names both streams."""
    session.streams[1].channels = [Channel(name="speed", unit="mph", resolution=0.01)]
    with pytest.raises(ExportError, match=r"'speed'.*'car-1' and 'car-2'"):
        export_session(session, "parquet", tmp_path)


def test_reserved_channel_name_raises(tmp_path: Path, session: MemorySession) -> None:
    """A channel named like the time column is refused with a clear error."""
    session.streams.append(StreamInfo(stream_id="car-4", channels=[Channel(name="time")]))
    with pytest.raises(ExportError, match="'time' clashes"):
        export_session(session, "parquet", tmp_path)


def test_missing_pyarrow(
    tmp_path: Path, session: MemorySession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pyarrow, export and import raise an ExportError telling how to install it."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependency, match=r"pip install 'pitwire\[parquet\]'"):
        export_session(session, "parquet", tmp_path)
    with pytest.raises(ExportError, match="needs pyarrow"):
        read_parquet(tmp_path / "x.parquet")


def test_not_parquet_raises(tmp_path: Path) -> None:
    """A file that is not Parquet is an ExportError."""
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(ExportError, match="not a readable Parquet file"):
        read_parquet(path)


def test_newer_version_raises(tmp_path: Path, session: MemorySession) -> None:
    """A file from a newer pitwire is refused rather than misread."""
    [path] = export_session(session, "parquet", tmp_path)
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[b"pitwire.version"] = b"2"
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(ExportError, match="newer pitwire"):
        read_parquet(path)


def test_foreign_file(tmp_path: Path) -> None:
    """A Parquet file from elsewhere with a t_ns column reads as one stream per file."""
    path = tmp_path / "lap7.parquet"
    table = pa.table(
        {
            "t_ns": pa.array([10, 20, 30], pa.int64()),
            "speed": pa.array([1.5, None, 3.0], pa.float32()),
            "gear": pa.array([1, 2, None], pa.int8()),
            "note": pa.array(["a", "b", "c"]),
        }
    )
    table = table.replace_schema_metadata(None).cast(
        pa.schema(
            [
                pa.field("t_ns", pa.int64()),
                pa.field("speed", pa.float32(), metadata={"unit": "km/h"}),
                pa.field("gear", pa.int8()),
                pa.field("note", pa.string()),
            ]
        )
    )
    pq.write_table(table, path)
    back = read_parquet(path)
    assert back.info.session_id == "lap7"
    [stream] = back.streams
    assert stream.stream_id == "lap7"
    assert stream.channels == [
        Channel(name="speed", unit="km/h", dtype="f4"),
        Channel(name="gear", dtype="f8"),
    ]
    batch = back.frames("lap7")
    assert batch.t_ns.tolist() == [10, 20, 30]
    assert np.array_equal(batch.columns["speed"], [1.5, np.nan, 3.0], equal_nan=True)
    assert np.array_equal(batch.columns["gear"], [1, 2, np.nan], equal_nan=True)


def test_damaged_metadata_raises(tmp_path: Path, session: MemorySession) -> None:
    """Metadata that does not decode is an ExportError, not a crash deeper down."""
    [path] = export_session(session, "parquet", tmp_path)
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[b"pitwire.streams"] = msgspec.json.encode([{"driver": "no id"}])
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(ExportError, match="damaged pitwire metadata"):
        read_parquet(path)
