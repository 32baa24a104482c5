"""iRacing ``.ibt`` telemetry files: read every row at once, as columns.

The format mirrors the live map (``pitwire.sources.iracing``): an ``irsdk_header`` (112
bytes), an ``irsdk_diskSubHeader`` (32 bytes: start date, start/end session time, lap and
row counts), the session info YAML at ``sessionInfoOffset``, the variable headers at
``varHeaderOffset``, then ``sessionRecordCount`` rows of ``bufLen`` bytes from
``varBuf[0].bufOffset``. Rows are read through one numpy structured dtype built from the
variable headers over a read-only memory map of the file: no per-row Python work.

Error policy (``sources.base``): a file whose headers cannot be read raises
:class:`IbtError`; a file cut short (or never closed, with no row count) is read up to its
last whole row with an :class:`IbtWarning`.

The writers at the end (:func:`layout_vars`, :func:`var_headers_bytes`, :func:`encode_rows`,
:func:`build_ibt`) lay out spec-shaped bytes for tests and replays.

Exceptions::

    ValueError
     └── DecodeError
          └── IbtError    not an .ibt file, or its headers are truncated or inconsistent
    UserWarning
     └── IbtWarning       rows missing at the end: read up to the last whole one
"""

from __future__ import annotations

import difflib
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pitwire.model.frames import FrameBatch
from pitwire.model.manifest import Manifest
from pitwire.sources.base import DecodeError, Sample, SessionStarted, StreamSeen
from pitwire.sources.iracing import (
    DISK_SUB_HEADER,
    HEADER,
    STREAM,
    VAR_HEADER,
    VAR_TYPES,
    IRacingDecoder,
    Var,
    decode_session_info,
    parse_session_info,
    parse_vars,
    player,
    row_dtype,
    track,
)
from pitwire.sources.layout import build, parse

_HEADS = HEADER.itemsize + DISK_SUB_HEADER.itemsize


class IbtError(DecodeError):
    """Not an .ibt file, or its headers are truncated or inconsistent."""


class IbtWarning(UserWarning):
    """The file ends before its last announced row: read up to the last whole one."""


class IbtFile:
    """An ``.ibt`` file opened for reading (see the module docstring).

    vars: the variables of a row; session_info: the YAML text; start_ns: recording start
    [ns since epoch]; tick_rate [Hz]; ``len()``: rows readable.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            size = os.path.getsize(self.path)
            with open(self.path, "rb") as f:
                heads = f.read(_HEADS)
                if len(heads) < _HEADS:
                    raise IbtError(
                        f"{self.path}: {len(heads)} bytes, an .ibt file starts with {_HEADS}"
                    )
                h, d = parse(HEADER, heads), parse(DISK_SUB_HEADER, heads, HEADER.itemsize)
                n_vars, buf_len = int(h["numVars"]), int(h["bufLen"])
                var_at, info_at, info_len = (
                    int(h["varHeaderOffset"]),
                    int(h["sessionInfoOffset"]),
                    int(h["sessionInfoLen"]),
                )
                if not 1 <= int(h["ver"]) <= 9 or n_vars < 1 or buf_len < 1 or int(h["numBuf"]) < 1:
                    raise IbtError(
                        f"{self.path}: not an .ibt file (ver {h['ver']}, numVars {n_vars}, "
                        f"bufLen {buf_len}, numBuf {h['numBuf']})"
                    )
                block = _read(f, var_at, n_vars * 144, size, self.path, "variable headers")
                info = _read(f, info_at, info_len, size, self.path, "session info")
        except OSError as e:
            raise IbtError(f"{self.path}: cannot read the file: {e}") from e
        try:
            self.vars: list[Var] = parse_vars(block, buf_len)
        except DecodeError as e:
            raise IbtError(f"{self.path}: {e}") from None
        self.session_info = decode_session_info(info)
        self._session: dict[str, Any] | None = None
        self.tick_rate = int(h["tickRate"])
        self.start_ns = int(d["sessionStartDate"]) * 1_000_000_000
        self.start_time = float(d["sessionStartTime"])
        self.end_time = float(d["sessionEndTime"])
        self.lap_count = int(d["sessionLapCount"])
        self.record_count = int(d["sessionRecordCount"])
        start = int(h["varBuf"][0]["bufOffset"])
        whole = max(size - start, 0) // buf_len if start >= _HEADS else 0
        n = self.record_count
        if n > whole or (n <= 0 and whole > 0):
            said = f"{n} rows announced" if n > 0 else "no row count (recording not closed)"
            warnings.warn(
                IbtWarning(f"{self.path}: {said}, {whole} whole rows present; reading those"),
                stacklevel=2,
            )
            n = whole
        self._by_name = {v.name: v for v in self.vars}
        self._dtype = row_dtype(self.vars, buf_len)
        self._rows: np.ndarray[Any, Any] = (
            np.memmap(self.path, dtype=self._dtype, mode="r", offset=start, shape=(n,))
            if n > 0
            else np.zeros(0, dtype=self._dtype)
        )

    def __len__(self) -> int:
        return len(self._rows)

    def __enter__(self) -> IbtFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the memory map (columns already returned stay valid: they are copies)."""
        self._rows = np.zeros(0, dtype=self._dtype)

    @property
    def session(self) -> dict[str, Any]:
        """The session info parsed (nested dicts and lists)."""
        if self._session is None:
            self._session = parse_session_info(self.session_info)
        return self._session

    def var(self, name: str) -> Var:
        """The variable ``name``; KeyError naming close ones when there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._by_name, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise KeyError(f"{self.path}: no variable {name!r}{hint}") from None

    def columns(
        self, names: Iterable[str] | None = None, start: int = 0, stop: int | None = None
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Each variable's values over rows ``start:stop`` (every row by default; ``Name[i]``
        for one array element; arrays by name are (rows, count)); all variables when
        ``names`` is None. Copies."""
        rows = self._rows[start:stop]
        out: dict[str, np.ndarray[Any, Any]] = {}
        for name in self._by_name if names is None else names:
            if name == "LapCompleted" and name not in self._by_name and "Lap" in self._by_name:
                out[name] = np.maximum(np.asarray(rows["Lap"]) - 1, 0)
                continue
            base, _, rest = name.partition("[")
            var = self.var(base)
            if rest:
                index = int(rest.rstrip("]"))
                if not 0 <= index < var.count:
                    raise KeyError(f"{self.path}: {base} has {var.count} elements, not {index + 1}")
                out[name] = np.array(rows[base][:, index])
            else:
                out[name] = np.array(rows[name])
        return out

    def time_ns(
        self, start: int = 0, stop: int | None = None
    ) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Rows ``start:stop``'s times [ns since epoch]: start date + SessionTime since the
        start."""
        if "SessionTime" in self._by_name:
            seconds = np.asarray(self._rows["SessionTime"][start:stop], dtype=np.float64)
            since = seconds - self.start_time
        else:
            since = np.arange(len(self), dtype=np.float64)[start:stop] / max(self.tick_rate, 1)
        return self.start_ns + np.round(since * 1e9).astype(np.int64)

    def raw(
        self, names: Sequence[str], start: int = 0, stop: int | None = None
    ) -> dict[str, np.ndarray[Any, Any]]:
        """``names`` as float64 columns of rows ``start:stop``; a name the file lacks is NaN."""
        n = len(range(*slice(start, stop).indices(len(self))))
        out: dict[str, np.ndarray[Any, Any]] = {}
        for name in names:
            try:
                out[name] = self.columns([name], start, stop)[name].astype(np.float64)
            except KeyError:
                out[name] = np.full(n, math.nan)
        return out

    def frames(
        self, manifest: Manifest | None = None, start: int = 0, stop: int | None = None
    ) -> FrameBatch:
        """Rows ``start:stop`` (every row by default) as one batch of ``manifest``'s channels
        (the iRacing manifest by default)."""
        manifest = manifest or IRacingDecoder.manifest
        raw = self.raw(manifest.raw_fields, start, stop)
        return FrameBatch(self.time_ns(start, stop), manifest.apply(raw))

    def session_events(self) -> list[SessionStarted | StreamSeen]:
        """The session start and the player's stream, as the live decoder reports them."""
        try:
            session = self.session
        except DecodeError as e:  # unreadable session info: the rows are still good
            warnings.warn(IbtWarning(f"{self.path}: {e}; no track or driver names"), stacklevel=2)
            session = self._session = {}
        weekend = session.get("WeekendInfo") if isinstance(session, Mapping) else None
        weekend = weekend if isinstance(weekend, Mapping) else {}
        sub = weekend.get("SubSessionID") or weekend.get("SessionID") or "?"
        driver, car = player(session)
        return [
            SessionStarted(key=f"iracing:{sub}:ibt:{self.start_ns}", track=track(session)),
            StreamSeen(STREAM, driver=driver, car=car),
        ]

    def samples(self, manifest: Manifest | None = None) -> Iterator[Sample]:
        """One Sample per row with ``manifest``'s raw fields (decoder events, for replays)."""
        names = list((manifest or IRacingDecoder.manifest).raw_fields)
        cols = self.raw(names)
        rows = zip(*(cols[n].tolist() for n in names), strict=True)
        for t_ns, row in zip(self.time_ns().tolist(), rows, strict=True):
            yield Sample(STREAM, t_ns, dict(zip(names, row, strict=True)))


def _read(f: Any, offset: int, n: int, size: int, path: str, what: str) -> bytes:
    if offset < 0 or n < 0 or offset + n > size:
        raise IbtError(
            f"{path}: the {what} ({n} bytes at {offset}) lie past the end ({size} bytes)"
        )
    f.seek(offset)
    return bytes(f.read(n))


# -- writers (tests, replays) ----------------------------------------------------------------


def layout_vars(
    specs: Iterable[tuple[str, int] | tuple[str, int, int] | tuple[str, int, int, str]],
) -> list[Var]:
    """Variables ``(name, type[, count[, unit]])`` laid out one after another, each aligned
    to its element size (as iRacing lays out rows)."""
    out: list[Var] = []
    offset = 0
    for spec in specs:
        name, kind = spec[0], spec[1]
        count = spec[2] if len(spec) > 2 else 1
        unit = spec[3] if len(spec) > 3 else ""
        size = VAR_TYPES[kind].itemsize
        offset = -(-offset // size) * size
        out.append(Var(name, kind, offset, count, unit=unit))
        offset += size * count
    return out


def var_headers_bytes(vars: Sequence[Var]) -> bytes:
    """The 144-byte headers of ``vars``, back to back."""
    return b"".join(
        build(
            VAR_HEADER,
            {
                "type": v.type,
                "offset": v.offset,
                "count": v.count,
                "countAsTime": int(v.count_as_time),
                "name": v.name,
                "desc": v.desc,
                "unit": v.unit,
            },
        )
        for v in vars
    )


def row_length(vars: Sequence[Var]) -> int:
    """``bufLen`` for ``vars``: their extent rounded up to 16 bytes."""
    return -(-max((v.end for v in vars), default=0) // 16) * 16


def encode_rows(vars: Sequence[Var], rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Rows of ``row_length(vars)`` bytes with ``rows``' values (missing ones are 0)."""
    out = np.zeros(len(rows), dtype=row_dtype(vars, row_length(vars)))
    for i, values in enumerate(rows):
        for name, value in values.items():
            out[i][name] = value
    return out.tobytes()


def build_ibt(
    vars: Sequence[Var],
    rows: Sequence[Mapping[str, Any]],
    session_info: str,
    *,
    start_date: int = 0,
    start_time: float = 0.0,
    end_time: float = 0.0,
    lap_count: int = 0,
    record_count: int | None = None,
    tick_rate: int = 60,
) -> bytes:
    """An ``.ibt`` file's bytes as iRacing lays them out (header, disk sub-header, variable
    headers, session info, rows); ``record_count`` defaults to ``len(rows)``."""
    heads = var_headers_bytes(vars)
    info = session_info.encode("latin-1") + b"\0"
    var_at = _HEADS
    info_at = var_at + len(heads)
    rows_at = -(-(info_at + len(info)) // 16) * 16
    header = build(
        HEADER,
        {
            "ver": 2,
            "status": 1,
            "tickRate": tick_rate,
            "sessionInfoUpdate": 0,
            "sessionInfoLen": len(info),
            "sessionInfoOffset": info_at,
            "numVars": len(vars),
            "varHeaderOffset": var_at,
            "numBuf": 1,
            "bufLen": row_length(vars),
            "varBuf": [{"tickCount": 0, "bufOffset": rows_at}],
        },
    )
    disk = build(
        DISK_SUB_HEADER,
        {
            "sessionStartDate": start_date,
            "sessionStartTime": start_time,
            "sessionEndTime": end_time,
            "sessionLapCount": lap_count,
            "sessionRecordCount": len(rows) if record_count is None else record_count,
        },
    )
    gap = bytes(rows_at - info_at - len(info))
    return header + disk + heads + info + gap + encode_rows(vars, rows)
