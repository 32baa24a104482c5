"""Exporters: a session to CSV, JSON Lines, Parquet or MoTeC i2 ``.ld``, and Parquet back.

``export_session(session, "csv", Path("out"))`` writes the files and returns their paths;
``read_parquet(path)`` reads a Parquet export back into a :class:`MemorySession`. Formats,
file naming and selection rules: :mod:`pitwire.export.base` and each format's module.
Parquet needs the optional ``pyarrow`` (``pip install 'pitwire[parquet]'``).
"""

from __future__ import annotations

from pathlib import Path

from pitwire.export.base import (
    WRITERS,
    ExportError,
    MemorySession,
    MissingDependency,
    Progress,
    SessionData,
    Writer,
    get_writer,
)
from pitwire.export.parquet import read_parquet

__all__ = [
    "WRITERS",
    "ExportError",
    "MemorySession",
    "MissingDependency",
    "Progress",
    "SessionData",
    "Writer",
    "export_session",
    "get_writer",
    "read_parquet",
]


def export_session(
    session: SessionData,
    fmt: str,
    dest: Path,
    *,
    streams: list[str] | None = None,
    channels: list[str] | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Write ``session`` in format ``fmt`` (``csv``, ``jsonl``, ``parquet``, ``ld``) to
    ``dest`` and return the files written.

    streams, channels: what to export (None = everything); unknown names raise ExportError
    progress: called with the number of frames just written
    """
    return get_writer(fmt).write(
        session, Path(dest), streams=streams, channels=channels, progress=progress
    )
