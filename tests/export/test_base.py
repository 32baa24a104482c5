"""The writer registry, selection rules, file naming, progress and MemorySession."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pitwire.export import (
    WRITERS,
    ExportError,
    MemorySession,
    export_session,
    get_writer,
)
from pitwire.export.base import file_part, select, session_path, stream_paths
from pitwire.model.channels import Channel
from pitwire.model.frames import FrameBatch
from pitwire.model.records import SessionInfo, StreamInfo


def test_unknown_format_lists_known() -> None:
    """An unknown format is an ExportError (a ValueError) naming every known format."""
    with pytest.raises(ExportError, match=r"'xlsx'.*known: csv, jsonl, ld, parquet"):
        get_writer("xlsx")
    assert issubclass(ExportError, ValueError)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_registry_writers(name: str) -> None:
    """Every registered factory builds a writer of that name with a dotted suffix."""
    writer = get_writer(name)
    assert writer.name == name
    assert writer.suffix.startswith(".") and len(writer.suffix) > 1


def test_export_session_unknown_format(tmp_path: Path, session: MemorySession) -> None:
    """export_session rejects an unknown format before writing anything."""
    with pytest.raises(ExportError, match="unknown export format"):
        export_session(session, "xml", tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_progress_counts_every_frame(tmp_path: Path, session: MemorySession, name: str) -> None:
    """Progress increments add up to the number of frames exported."""
    seen: list[int] = []
    export_session(session, name, tmp_path, progress=seen.append)
    total = sum(session.frames(s.stream_id).n for s in session.streams)
    assert sum(seen) == total and all(n >= 0 for n in seen)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_unknown_stream_and_channel(tmp_path: Path, session: MemorySession, name: str) -> None:
    """Every writer refuses unknown streams and channels with an ExportError."""
    with pytest.raises(ExportError, match="unknown streams: car-9"):
        export_session(session, name, tmp_path, streams=["car-9"])
    with pytest.raises(ExportError, match="unknown channels: boost"):
        export_session(session, name, tmp_path, channels=["boost"])


def test_select_order_and_partial_channels(session: MemorySession) -> None:
    """Streams keep the session's order, channels the order given, duplicates once; a stream
    lacking a channel keeps the rest."""
    chosen = select(session, ["car-2", "car-1"], ["x", "gear", "speed", "gear"])
    assert [s.stream_id for s in chosen] == ["car-1", "car-2"]
    assert [c.name for c in chosen[0].channels] == ["x", "gear", "speed"]
    assert [c.name for c in chosen[1].channels] == ["gear", "speed"]


def test_stream_paths_naming(tmp_path: Path) -> None:
    """Directories get `<session>_<stream><suffix>`; unsafe characters become `_`."""
    paths = stream_paths("s:1", ["car/1", "car 2"], tmp_path / "new", ".csv")
    assert [p.name for p in paths] == ["s_1_car_1.csv", "s_1_car_2.csv"]
    assert (tmp_path / "new").is_dir()
    assert file_part("") == "_"
    assert session_path("s:1", tmp_path, ".jsonl") == tmp_path / "s_1.jsonl"
    assert session_path("s", tmp_path / "a" / "b.jsonl", ".jsonl") == tmp_path / "a" / "b.jsonl"


def test_existing_directory_with_dot_is_a_directory(tmp_path: Path) -> None:
    """An existing directory whose name has a dot is still a directory destination."""
    folder = tmp_path / "runs.2024"
    folder.mkdir()
    assert stream_paths("s", ["a"], folder, ".csv") == [folder / "s_a.csv"]


def test_memory_session_frames() -> None:
    """A stream without a batch has an empty batch of its channels; unknown ids raise."""
    channel = Channel(name="speed", dtype="f8")
    session = MemorySession(
        info=SessionInfo(session_id="s"),
        streams=[StreamInfo(stream_id="a", channels=[channel])],
    )
    empty = session.frames("a")
    assert empty.n == 0 and empty.columns["speed"].dtype == np.float64
    with pytest.raises(KeyError):
        session.frames("b")


def test_memory_session_rejects_frames_of_unknown_stream() -> None:
    """Frames for a stream the session does not list are a ValueError."""
    batch = FrameBatch(np.zeros(1, np.int64), {})
    with pytest.raises(ValueError, match="unknown streams: z"):
        MemorySession(info=SessionInfo(session_id="s"), batches={"z": batch})


def test_missing_column_exports_nan(tmp_path: Path) -> None:
    """A channel the frames lack exports as not known (empty in CSV) instead of failing."""
    session = MemorySession(
        info=SessionInfo(session_id="s"),
        streams=[StreamInfo(stream_id="a", channels=[Channel(name="gear", resolution=1)])],
        batches={"a": FrameBatch(np.array([1, 2], np.int64), {})},
    )
    [path] = export_session(session, "csv", tmp_path)
    assert path.read_text(encoding="utf-8").splitlines()[1:] == [
        "0.000000,1,",
        "0.000000,2,",
    ]
