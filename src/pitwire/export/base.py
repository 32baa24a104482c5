"""What an exporter is: a :class:`Writer` that turns :class:`SessionData` into files.

``SessionData`` is the read side every writer consumes (a ``.pwr`` reader, a store, or
:class:`MemorySession` built by hand); ``Writer`` is one file format. Writers are pluggable:
:data:`WRITERS` maps a format name to a factory and :func:`get_writer` picks one.

Selection and naming are shared by every writer:

- ``streams``: stream ids to export, in the session's order; ``None`` = all. An unknown id
  raises :class:`ExportError`.
- ``channels``: channel names to export, in the order given; ``None`` = every channel of
  each stream. A name that no selected stream has raises; a stream lacking one of the names
  exports the ones it has.
- ``dest``: a directory (existing, or a path without a suffix: created) receives
  ``<session>_<stream><suffix>`` per stream, or ``<session><suffix>`` for one-file formats.
  A path with a suffix is the file itself; a per-stream format exporting several streams
  turns it into ``<stem>_<stream><suffix>`` beside it. Characters other than letters,
  digits and ``._-`` in ids become ``_`` in file names.
- ``progress``: called with the number of frames just written (an increment), so a rich
  progress bar can ``advance`` by it.

A writer may also have ``paths(session, dest, *, streams=None, channels=None)``: the files
``write`` would write, computed without creating anything (:func:`planned_paths`), so that
a caller can refuse to overwrite existing files before writing; the built-in writers do.

Error policy: export input (format, stream or channel names, a missing optional
dependency, a file the importer cannot read) raises a clear error; data is never dropped
silently.

Exceptions::

    ValueError
     └── ExportError             bad export input: unknown format, stream or channel,
          │                      conflicting channel definitions, an unreadable import file
          └── MissingDependency  the format needs an optional package (also an ImportError)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from pitwire.model.channels import Channel
from pitwire.model.frames import Column, FrameBatch
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo

Progress = Callable[[int], None]
"""Called with the number of frames just written."""


class ExportError(ValueError):
    """Export input the exporters cannot honour; the message says what and what would work."""


class MissingDependency(ExportError, ImportError):
    """A format needs an optional package that is not installed (the message names the extra)."""


class SessionData(Protocol):
    """A session to export: its records and, per stream, all frames in time order."""

    @property
    def info(self) -> SessionInfo: ...

    @property
    def streams(self) -> list[StreamInfo]: ...

    @property
    def laps(self) -> list[LapInfo]: ...

    def frames(self, stream_id: str) -> FrameBatch:
        """Every frame of ``stream_id`` in time order (``t_ns`` [ns since epoch])."""
        ...


class Writer(Protocol):
    """One export format."""

    @property
    def name(self) -> str:
        """Format name as the CLI spells it, e.g. ``csv``."""
        ...

    @property
    def suffix(self) -> str:
        """File suffix including the dot, e.g. ``.csv``."""
        ...

    def write(
        self,
        session: SessionData,
        dest: Path,
        *,
        streams: list[str] | None = None,
        channels: list[str] | None = None,
        progress: Progress | None = None,
    ) -> list[Path]:
        """Write ``session`` to ``dest`` (see the module docstring); return the files written."""
        ...


@dataclass
class MemorySession:
    """A session held in memory: what :func:`read_parquet` returns, and a way to export data
    built by hand.

    batches: all frames of each stream by stream id; a stream without an entry has no frames
    """

    info: SessionInfo
    streams: list[StreamInfo] = field(default_factory=list)
    laps: list[LapInfo] = field(default_factory=list)
    batches: dict[str, FrameBatch] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = {s.stream_id for s in self.streams}
        unknown = sorted(set(self.batches) - known)
        if unknown:
            raise ValueError(f"frames for unknown streams: {', '.join(unknown)}")

    def frames(self, stream_id: str) -> FrameBatch:
        """All frames of ``stream_id`` (an empty batch when none were given)."""
        if stream_id in self.batches:
            return self.batches[stream_id]
        for stream in self.streams:
            if stream.stream_id == stream_id:
                return FrameBatch(
                    np.empty(0, np.int64), {c.name: np.empty(0, c.dtype) for c in stream.channels}
                )
        raise KeyError(stream_id)


WriterFactory = Callable[[], Writer]


def _csv() -> Writer:
    from pitwire.export.csv import CsvWriter

    return CsvWriter()


def _jsonl() -> Writer:
    from pitwire.export.jsonl import JsonlWriter

    return JsonlWriter()


def _parquet() -> Writer:
    from pitwire.export.parquet import ParquetWriter

    return ParquetWriter()


def _ld() -> Writer:
    from pitwire.export.motec import MotecWriter

    return MotecWriter()


WRITERS: dict[str, WriterFactory] = {
    "csv": _csv,
    "jsonl": _jsonl,
    "parquet": _parquet,
    "ld": _ld,
}
"""Export formats by name; add an entry to plug in another writer."""


def get_writer(name: str) -> Writer:
    """The writer of format ``name``; an unknown name raises ExportError listing the known."""
    factory = WRITERS.get(name.lower())
    if factory is None:
        known = ", ".join(sorted(WRITERS))
        raise ExportError(f"unknown export format {name!r} (known: {known})")
    return factory()


# -- helpers shared by the writers ----------------------------------------------------------


@dataclass(frozen=True)
class Selected:
    """One stream to export and the channels it exports, in output order."""

    stream: StreamInfo
    channels: list[Channel]

    @property
    def stream_id(self) -> str:
        return self.stream.stream_id


def select(
    session: SessionData, streams: Sequence[str] | None, channels: Sequence[str] | None
) -> list[Selected]:
    """The streams and channels to export (see the module docstring for the rules)."""
    by_id = {s.stream_id: s for s in session.streams}
    if streams is not None:
        unknown = [s for s in streams if s not in by_id]
        if unknown:
            known = ", ".join(by_id) or "none"
            raise ExportError(f"unknown streams: {', '.join(unknown)} (known: {known})")
        wanted = set(streams)
        chosen = [s for s in session.streams if s.stream_id in wanted]
    else:
        chosen = list(session.streams)
    if channels is None:
        return [Selected(s, list(s.channels)) for s in chosen]
    names = list(dict.fromkeys(channels))
    present = {c.name for s in chosen for c in s.channels}
    missing = [n for n in names if n not in present]
    if missing:
        known = ", ".join(sorted(present)) or "none"
        raise ExportError(f"unknown channels: {', '.join(missing)} (known: {known})")
    result = []
    for s in chosen:
        own = {c.name: c for c in s.channels}
        result.append(Selected(s, [own[n] for n in names if n in own]))
    return result


def columns_of(batch: FrameBatch, channels: Sequence[Channel]) -> dict[str, Column]:
    """``batch``'s columns for ``channels``, each in the channel's dtype; a column the batch
    lacks is all NaN (the channel was never known)."""
    out: dict[str, Column] = {}
    for c in channels:
        col = batch.columns.get(c.name)
        if col is None:
            out[c.name] = np.full(batch.n, np.nan, c.dtype)
        else:
            out[c.name] = col if col.dtype == np.dtype(c.dtype) else col.astype(c.dtype)
    return out


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def file_part(text: str) -> str:
    """``text`` made safe as part of a file name on every OS."""
    return _UNSAFE.sub("_", text) or "_"


def is_dir_target(dest: Path) -> bool:
    """True when ``dest`` names a directory (existing, or without a file suffix)."""
    return dest.is_dir() or not dest.suffix


def stream_paths(
    session_id: str, stream_ids: Sequence[str], dest: Path, suffix: str, *, create: bool = True
) -> list[Path]:
    """File per stream for per-stream formats (creates the directory when needed, unless
    not ``create``)."""
    if is_dir_target(dest):
        if create:
            dest.mkdir(parents=True, exist_ok=True)
        return [dest / f"{file_part(session_id)}_{file_part(s)}{suffix}" for s in stream_ids]
    if create:
        dest.parent.mkdir(parents=True, exist_ok=True)
    if len(stream_ids) == 1:
        return [dest]
    return [dest.with_name(f"{dest.stem}_{file_part(s)}{dest.suffix}") for s in stream_ids]


def session_path(session_id: str, dest: Path, suffix: str, *, create: bool = True) -> Path:
    """The one file of a one-file format (creates the directory when needed, unless not
    ``create``)."""
    if is_dir_target(dest):
        if create:
            dest.mkdir(parents=True, exist_ok=True)
        return dest / f"{file_part(session_id)}{suffix}"
    if create:
        dest.parent.mkdir(parents=True, exist_ok=True)
    return dest


def planned_paths(
    writer: Writer,
    session: SessionData,
    dest: Path,
    *,
    streams: list[str] | None = None,
    channels: list[str] | None = None,
) -> list[Path] | None:
    """The files ``writer.write`` would write, without writing or creating anything: what
    the writer's optional ``paths`` method (same arguments as ``write``, no ``progress``)
    says; None for a writer without one. The built-in writers all have it."""
    paths = getattr(writer, "paths", None)
    if paths is None:
        return None
    planned: list[Path] = paths(session, dest, streams=streams, channels=channels)
    return planned


class SessionFiles:
    """Writers of one file per session: ``paths`` names it."""

    suffix: str

    def paths(
        self,
        session: SessionData,
        dest: Path,
        *,
        streams: list[str] | None = None,
        channels: list[str] | None = None,
    ) -> list[Path]:
        """The file ``write`` would write (nothing is created)."""
        select(session, streams, channels)
        return [session_path(session.info.session_id, dest, self.suffix, create=False)]


class StreamFiles:
    """Writers of one file per stream: ``paths`` names them."""

    suffix: str

    def paths(
        self,
        session: SessionData,
        dest: Path,
        *,
        streams: list[str] | None = None,
        channels: list[str] | None = None,
    ) -> list[Path]:
        """The files ``write`` would write (nothing is created)."""
        ids = [s.stream_id for s in select(session, streams, channels)]
        return stream_paths(session.info.session_id, ids, dest, self.suffix, create=False)
