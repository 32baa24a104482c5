"""Frame ranges for ``GET /api/sessions/{id}/frames``: the checked query, its limits, and
its three formats (JSON, CSV, binary DATA frames of spec/protocol.md; docs/rest.md)."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Any

import msgspec
import numpy as np
from fastapi.responses import JSONResponse

from pitwire.analysis.completeness import ChunkSpan
from pitwire.model.frames import Column, FrameBatch
from pitwire.model.ids import StreamId
from pitwire.protocol import frames as wire
from pitwire.store.base import SessionSummary

MAX_TIME_S = 1e9
"""Largest from/to accepted [s from the session's first frame] (about 31 years)."""
MAX_SPAN_S = 600.0
"""Most session time one ``/frames`` request may cover [s]."""
MAX_VALUES = 5_000_000
"""Most values (frames x channels, the time column not counted) one ``/frames`` answer holds."""
BIN_MAX_FRAMES = wire.MAX_FRAMES
"""Most frames in one binary record; a stream with more in range is split over several."""
CSV_ROWS = 20_000
"""CSV rows formatted and sent at a time."""
FORMATS = ("json", "bin", "csv")
BIN_MEDIA_TYPE = "application/octet-stream"
_LENGTH = struct.Struct("<I")
_POW10 = 10.0 ** np.arange(64)  # float32 needs 10^-38 .. 10^53


class QueryError(ValueError):
    """A ``/frames`` request the server cannot answer: ``status`` and the message for its
    JSON body (``limit`` names the bound when one was passed)."""

    def __init__(self, message: str, status: int = 400, limit: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.limit = limit

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": str(self)}
        if self.limit is not None:
            body["limit"] = self.limit
        return JSONResponse(body, status_code=self.status)


def channel_table(s: SessionSummary) -> dict[str, dict[str, Any]]:
    """The session's channels by name, in order of first appearance over its streams: the
    table whose indices the binary ``/frames`` answer uses as channel ids."""
    channels: dict[str, dict[str, Any]] = {}
    for st in s.streams:
        for ch in st.info.channels:
            channels.setdefault(
                ch.name,
                {
                    "name": ch.name,
                    "unit": ch.unit,
                    "dtype": ch.dtype,
                    "resolution": ch.resolution,
                    "description": ch.description,
                },
            )
    return channels


def session_range(s: SessionSummary) -> tuple[int, int]:
    """First and last stored frame of the whole session [ns since epoch]; (0, 0) without
    frames."""
    stored = [st for st in s.streams if st.frames]
    return (
        min((st.t0_ns for st in stored), default=0),
        max((st.t1_ns for st in stored), default=0),
    )


# --- GET /api/sessions/{id}/frames ---------------------------------------------------------


class FrameQuery:
    """A checked ``/frames`` request: the range [from_ns, to_ns) [ns from the session's first
    frame t0_ns], the streams in answer order, the channels asked for and the format."""

    def __init__(
        self,
        *,
        t0_ns: int,
        from_ns: int,
        to_ns: int,
        streams: list[StreamId],
        channels: list[str],
        table: list[str],
        fmt: str,
    ) -> None:
        self.t0_ns, self.from_ns, self.to_ns = t0_ns, from_ns, to_ns
        self.streams, self.channels, self.table, self.fmt = streams, channels, table, fmt
        self.schemas: dict[StreamId, dict[str, str]] = {}
        """Each stream's channels: name -> dtype."""
        self.read_ns: tuple[int, int] | None = None
        """What to read [ns since epoch], both included: the range cut to the session's
        stored frames (as the session summary saw them); None when nothing is there."""

    @property
    def from_s(self) -> float:
        return self.from_ns / 1e9

    @property
    def to_s(self) -> float:
        return self.to_ns / 1e9

    @classmethod
    def parse(
        cls,
        s: SessionSummary,
        index: dict[str, list[ChunkSpan]],
        *,
        start: float,
        end: float | None,
        streams: str | None,
        channels: str | None,
        fmt: str,
    ) -> FrameQuery:
        """Check every parameter against the session and the limits; raise QueryError naming
        the first problem."""
        if fmt not in FORMATS:
            raise QueryError(f"unknown format {fmt!r}: use json, csv or bin")
        if not math.isfinite(start) or start < 0:
            raise QueryError(f"from must be a number of seconds >= 0, not {start}")
        if end is not None and not math.isfinite(end):
            raise QueryError(f"to must be a number of seconds, not {end}")
        for name, value in (("from", start), ("to", end or 0.0)):
            if value > MAX_TIME_S:
                raise QueryError(
                    f"{name} ({value:g} s) is beyond any session: at most {MAX_TIME_S:g} s",
                    limit=MAX_TIME_S,
                )
        t0, t1 = session_range(s)
        from_ns = round(start * 1e9)
        if end is None:
            to_ns = min(from_ns + round(MAX_SPAN_S * 1e9), max(t1 - t0 + 1, from_ns + 1))
        else:
            to_ns = round(end * 1e9)
            if to_ns <= from_ns:
                raise QueryError(f"to ({end:g}) must be after from ({start:g})")
            if to_ns - from_ns > round(MAX_SPAN_S * 1e9):
                raise QueryError(
                    f"the range {start:g}-{end:g} s spans {end - start:g} s; at most "
                    f"{MAX_SPAN_S:g} s per request",
                    limit=MAX_SPAN_S,
                )
        known = {st.info.stream_id: st for st in s.streams}
        wanted = _names(streams) or list(known)
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise QueryError(f"unknown stream {unknown[0]!r} in session {s.info.session_id!r}")
        table = list(channel_table(s))
        have = {name for w in wanted for name in (c.name for c in known[w].info.channels)}
        names = _names(channels) or [n for n in table if n in have]
        missing = [n for n in names if n not in have]
        if missing:
            raise QueryError(
                f"unknown channel {missing[0]!r}: none of the streams asked for has it"
            )
        q = cls(
            t0_ns=t0,
            from_ns=from_ns,
            to_ns=to_ns,
            streams=[StreamId(w) for w in wanted],
            channels=names,
            table=table,
            fmt=fmt,
        )
        q.schemas = {StreamId(w): {c.name: c.dtype for c in known[w].info.channels} for w in wanted}
        lo, hi = t0 + from_ns, min(t0 + to_ns - 1, t1)
        if lo <= hi and s.frames:
            q.read_ns = (lo, hi)
        # Before reading: the frames of chunks wholly inside the range are there for sure.
        surely = 0
        for w in wanted:
            per = len(set(names) & {c.name for c in known[w].info.channels})
            surely += per * sum(c.n for c in index.get(w, ()) if c.t0_ns >= lo and c.t1_ns <= hi)
        q.check_values(surely)
        return q

    def check_values(self, values: int) -> None:
        if values > MAX_VALUES:
            raise QueryError(
                f"the range holds {values:,} values (frames x channels); at most "
                f"{MAX_VALUES:,} per request: ask for a shorter range, fewer streams or fewer "
                "channels",
                limit=MAX_VALUES,
            )

    def nothing(self) -> dict[StreamId, FrameBatch]:
        """What read_window answers for a range without frames: empty batches."""
        empty = np.empty(0, np.int64)
        return {
            w: FrameBatch(empty, {n: np.empty(0, dt) for n, dt in self.schemas[w].items()})
            for w in self.streams
        }

    def select(self, batches: dict[StreamId, FrameBatch]) -> list[tuple[StreamId, FrameBatch]]:
        """Each stream's batch with the channels asked for that it has, in answer order;
        raises QueryError past MAX_VALUES."""
        out = []
        for w in self.streams:
            batch = batches[w]
            out.append((w, batch.select([n for n in self.channels if n in batch.columns])))
        self.check_values(sum(b.n * len(b.columns) for _, b in out))
        return out

    def seconds(self, t_ns: np.ndarray) -> np.ndarray:
        """Frame times [s from the session's first frame]."""
        result: np.ndarray = (t_ns - self.t0_ns) / 1e9
        return result


def _names(text: str | None) -> list[str]:
    """Comma-separated names, blanks dropped, each once, in order."""
    if not text:
        return []
    return list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))


def plain_floats(values: Column) -> list[float]:
    """Values as Python floats: float64 as they are; float32 as the shortest decimal (of at
    most 9 significant digits) that reads back to the same float32 (``100.25``, not
    ``100.25000762939453``), found for all values at once by rounding to 6, 7, 8, 9 digits."""
    if values.dtype != np.float32:
        exact: list[float] = values.astype(np.float64).tolist()
        return exact
    x = values.astype(np.float64)
    done = ~(np.isfinite(x) & (x != 0))
    if not done.all():
        exponent = np.floor(np.log10(np.abs(np.where(done, 1.0, x)))).astype(np.int64)
        for digits in (6, 7, 8, 9):
            d = digits - 1 - exponent
            up, down = _POW10[np.maximum(d, 0)], _POW10[np.maximum(-d, 0)]
            r = np.rint(x * up / down) * down / up
            ok = ~done & (r.astype(np.float32) == values)
            x[ok] = r[ok]
            done |= ok
            if done.all():
                break
    result: list[float] = x.tolist()  # a value no rounding fits keeps its exact float64
    return result


def json_body(session_id: str, q: FrameQuery, selected: Sequence[tuple[str, FrameBatch]]) -> bytes:
    """The JSON answer: times [s from the session's first frame]; NaN and infinities as null."""
    return msgspec.json.encode(
        {
            "session_id": session_id,
            "t0_ns": q.t0_ns,
            "from": q.from_s,
            "to": q.to_s,
            "streams": [
                {
                    "stream_id": w,
                    "t": q.seconds(b.t_ns).tolist(),
                    "channels": {n: plain_floats(c) for n, c in b.columns.items()},
                }
                for w, b in selected
            ],
        }
    )


def _cells(values: list[float]) -> list[str]:
    """Floats as CSV cells (shortest text; NaN and infinities empty), formatted in C."""
    text = msgspec.json.encode(values).decode()[1:-1]
    return text.replace("null", "").split(",") if text else []


def csv_pieces(q: FrameQuery, selected: Sequence[tuple[str, FrameBatch]]) -> Iterator[bytes]:
    """The CSV answer in pieces of CSV_ROWS rows: a header ``stream_id,t,<channels>``, then
    each stream's frames in time order, streams one after the other."""
    names = [n for n in q.channels if any(n in b.columns for _, b in selected)]
    yield ("stream_id,t," + ",".join(names) + "\n").encode() if names else b"stream_id,t\n"
    for w, b in selected:
        for a in range(0, b.n, CSV_ROWS):
            piece = b.slice(a, a + CSV_ROWS)
            cols = [
                _cells(plain_floats(piece.columns[n])) if n in piece.columns else repeat("")
                for n in names
            ]
            t = _cells(q.seconds(piece.t_ns).tolist())
            rows = map(",".join, zip(repeat(w), t, *cols))
            yield ("\n".join(rows) + "\n").encode()


def bin_body(q: FrameQuery, selected: Sequence[tuple[str, FrameBatch]]) -> bytes:
    """The binary answer: records of u32 LE length + one DATA frame (spec/protocol.md); group =
    the stream's index in X-Pitwire-Streams, channel id = index in X-Pitwire-Channels, seq =
    the record's first frame's index among the stream's frames in this answer."""
    ids = {name: i for i, name in enumerate(q.table)}
    parts: list[bytes] = []
    for group, (_, b) in enumerate(selected):
        for a in range(0, b.n, BIN_MAX_FRAMES):
            piece = b.slice(a, a + BIN_MAX_FRAMES)
            frame = wire.serialize(
                group=group,
                seq=a,
                t_ns=piece.t_ns,
                columns=[(ids[n], c) for n, c in piece.columns.items()],
            )
            parts += (_LENGTH.pack(len(frame)), frame)
    return b"".join(parts)
