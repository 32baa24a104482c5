"""JSON Lines export: one file per session, one object per frame.

File: ``<dest>/<session>.jsonl`` (``dest`` rules in :mod:`pitwire.export.base`), UTF-8, one
JSON object per line::

    {"stream":"car-3","t_ns":1700000000000000000,"speed":123.45,"rpm":8000,"gear":3}

- ``stream``: the stream id; ``t_ns``: the frame's time [ns since the Unix epoch], exact.
- one key per channel, in the stream's channel order (or the order of ``channels=``), its
  value at the channel's resolution (exact when it has none), in the channel's unit (units
  are in the session's records, not repeated per line); NaN and infinities are ``null``.
- frames are grouped by stream in the session's stream order, each stream in time order
  (sort by ``t_ns`` to interleave). A stream without frames writes no line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pitwire.export._text import column_text, has_non_finite
from pitwire.export.base import (
    Progress,
    SessionData,
    SessionFiles,
    columns_of,
    select,
    session_path,
)

CHUNK = 10_000
"""Frames formatted and written at a time (and reported to ``progress``)."""

_NON_FINITE = re.compile(r"(?<=:)-?(?:nan|inf)(?=[,}])")


class JsonlWriter(SessionFiles):
    """One JSON Lines file per session."""

    name = "jsonl"
    suffix = ".jsonl"

    def write(
        self,
        session: SessionData,
        dest: Path,
        *,
        streams: list[str] | None = None,
        channels: list[str] | None = None,
        progress: Progress | None = None,
    ) -> list[Path]:
        """Write every selected stream's frames to one file; return ``[file]``."""
        selected = select(session, streams, channels)
        path = session_path(session.info.session_id, dest, self.suffix)
        with path.open("w", encoding="utf-8", newline="\n") as f:
            for sel in selected:
                batch = session.frames(sel.stream_id)
                columns = columns_of(batch, sel.channels)
                stream = json.dumps(sel.stream_id, ensure_ascii=False).replace("%", "%%")
                head = '{"stream":' + stream + ',"t_ns":%d'
                for start in range(0, batch.n, CHUNK):
                    stop = min(start + CHUNK, batch.n)
                    chunk = [columns[c.name][start:stop] for c in sel.channels]
                    parts = [column_text(c, v) for c, v in zip(sel.channels, chunk, strict=True)]
                    line = (
                        head
                        + "".join(
                            f',"{c.name}":{code}'
                            for c, (code, _) in zip(sel.channels, parts, strict=True)
                        )
                        + "}\n"
                    )
                    rows = zip(batch.t_ns[start:stop].tolist(), *(v for _, v in parts), strict=True)
                    text = "".join([line % row for row in rows])
                    if has_non_finite(chunk):
                        text = _NON_FINITE.sub("null", text)
                    f.write(text)
                    if progress is not None:
                        progress(stop - start)
        return [path]
