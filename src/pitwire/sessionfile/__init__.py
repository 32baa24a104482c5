"""``.pwr`` session files (spec/sessionfile.md): ``create`` one to write, ``open`` one to read.

Exceptions::

    ValueError
     └── SessionFileError   not a session file, a newer version, or cannot be created;
                            damage inside a file is never an exception (see reader)
"""

from __future__ import annotations

import os

from pitwire.model.records import SessionInfo, StreamInfo
from pitwire.sessionfile.format import SessionFileError
from pitwire.sessionfile.reader import SessionReader, StreamSummary
from pitwire.sessionfile.writer import SessionWriter

SUFFIX = ".pwr"

__all__ = [
    "SUFFIX",
    "SessionFileError",
    "SessionReader",
    "SessionWriter",
    "StreamSummary",
    "create",
    "open",
]


def open(path: str | os.PathLike[str]) -> SessionReader:
    """Open a session file for reading."""
    return SessionReader(path)


def create(
    path: str | os.PathLike[str],
    info: SessionInfo,
    *,
    streams: list[StreamInfo] | None = None,
    **options: object,
) -> SessionWriter:
    """Create a session file for writing (see SessionWriter for the options)."""
    return SessionWriter(path, info, streams=streams, **options)  # type: ignore[arg-type]
