"""CSV export: one file per stream, units in the header.

Files: ``<dest>/<session>_<stream>.csv`` (``dest`` rules in :mod:`pitwire.export.base`).
UTF-8 without a byte-order mark, comma separated, ``\\n`` line ends, one header row::

    time_s,t_ns,speed [km/h],rpm [1/min],gear,throttle,...
    0.000000,1700000000000000000,123.45,8000,3,0.250,...

- ``time_s``: seconds since the session start (``SessionInfo.started_ns``; the stream's first
  frame when the session has no start time), 6 decimals.
- ``t_ns``: the frame's time [ns since the Unix epoch], exact.
- one column per channel headed ``name [unit]`` (``name`` alone when it has no unit), in
  the stream's channel order (or the order of ``channels=``). Values are printed at the
  channel's resolution (0.01 → two decimals); a channel without a resolution is printed
  exactly (shortest text that reads back to the same float). NaN (not known at that frame)
  is an empty field; infinities are ``inf``/``-inf``.

Read back with ``csv.DictReader`` or ``pandas.read_csv(path)``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from pitwire.export._text import column_text, has_non_finite
from pitwire.export.base import Progress, SessionData, StreamFiles, columns_of, select, stream_paths
from pitwire.model.channels import Channel
from pitwire.model.frames import FrameBatch

CHUNK = 10_000
"""Frames formatted and written at a time (and reported to ``progress``)."""

_NAN = re.compile(r"(?<=,)-?nan(?=[,\n])")


def heading(channel: Channel) -> str:
    """The header of ``channel``'s column: ``speed [km/h]``, or ``gear`` without a unit."""
    return f"{channel.name} [{channel.unit}]" if channel.unit else channel.name


class CsvWriter(StreamFiles):
    """One CSV file per stream."""

    name = "csv"
    suffix = ".csv"

    def write(
        self,
        session: SessionData,
        dest: Path,
        *,
        streams: list[str] | None = None,
        channels: list[str] | None = None,
        progress: Progress | None = None,
    ) -> list[Path]:
        """Write each selected stream to its own CSV file; return the files."""
        selected = select(session, streams, channels)
        ids = [s.stream_id for s in selected]
        paths = stream_paths(session.info.session_id, ids, dest, self.suffix)
        for sel, path in zip(selected, paths, strict=True):
            batch = session.frames(sel.stream_id)
            write_stream(path, batch, sel.channels, session.info.started_ns, progress)
        return paths


def write_stream(
    path: Path,
    batch: FrameBatch,
    channels: list[Channel],
    started_ns: int,
    progress: Progress | None = None,
) -> None:
    """Write one stream's ``batch`` (columns ``channels``) to ``path``."""
    origin = started_ns or batch.t0_ns
    columns = columns_of(batch, channels)
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow(
            ["time_s", "t_ns", *(heading(c) for c in channels)]
        )
        for start in range(0, batch.n, CHUNK):
            stop = min(start + CHUNK, batch.n)
            t = batch.t_ns[start:stop]
            parts = [column_text(c, columns[c.name][start:stop]) for c in channels]
            line = ",".join(["%.6f", "%d", *(code for code, _ in parts)]) + "\n"
            rows = zip(
                ((t - origin) / 1e9).tolist(), t.tolist(), *(v for _, v in parts), strict=True
            )
            text = "".join([line % row for row in rows])
            if has_non_finite([columns[c.name][start:stop] for c in channels]):
                text = _NAN.sub("", text)
            f.write(text)
            if progress is not None:
                progress(stop - start)
