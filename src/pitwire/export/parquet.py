"""Parquet export and import (needs pyarrow: ``pip install 'pitwire[parquet]'``).

Export writes one file per session, ``<dest>/<session>.parquet`` (``dest`` rules in
:mod:`pitwire.export.base`): one row per frame, the streams one after another (each in time
order, in row groups of its own), so ``pandas.read_parquet(path)`` or
``polars.read_parquet(path)`` gives one table to filter by ``stream``. Columns:

- ``stream``: dictionary-encoded string (a pandas category), the stream id.
- ``time``: ``timestamp[ns, UTC]``, the frame's time, exact.
- one column per channel (the union over the exported streams, in first-seen order),
  float32 or float64 as the channel's dtype, values exactly as recorded: NaN where a value
  was not known, null in the rows of a stream that has no such channel.

Metadata: each channel field carries ``unit`` (e.g. ``km/h``) and ``pitwire.channel`` (the
Channel as JSON: dtype, resolution, range, description); the schema carries
``pitwire.version`` (``1``), ``pitwire.session`` (SessionInfo JSON), ``pitwire.streams``
(StreamInfo JSON list, each stream's own channel list) and ``pitwire.laps`` (LapInfo JSON
list). A channel must have one definition across the exported streams, and no channel may
be named ``stream`` or ``time`` (export such streams separately or rename).

:func:`read_parquet` rebuilds a :class:`MemorySession` exactly from what export wrote. A
Parquet file without pitwire metadata is read as well when it has a ``time`` (timestamp) or
``t_ns`` (int64) column: an optional ``stream`` column, numeric columns as channels (unit
from the field's ``unit`` metadata), the session named after the file.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import numpy as np

from pitwire.export.base import (
    ExportError,
    MemorySession,
    MissingDependency,
    Progress,
    SessionData,
    SessionFiles,
    columns_of,
    select,
    session_path,
)
from pitwire.model.channels import Channel, DType
from pitwire.model.frames import Column, FrameBatch
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo

VERSION = 1
CHUNK = 131_072
"""Frames per row group (and per ``progress`` report)."""
RESERVED = ("stream", "time")

# Metadata is JSON; infinities (a channel's open range) are the strings "inf"/"-inf", which
# the lax decoders turn back into floats.
_decode_session = msgspec.json.Decoder(SessionInfo, strict=False)
_decode_streams = msgspec.json.Decoder(list[StreamInfo], strict=False)
_decode_laps = msgspec.json.Decoder(list[LapInfo], strict=False)


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _json(value: object) -> bytes:
    """``value`` (Structs, lists) as JSON with non-finite floats as strings."""
    return msgspec.json.encode(_finite(msgspec.to_builtins(value)))


def _pyarrow() -> tuple[ModuleType, ModuleType]:
    """pyarrow and pyarrow.parquet, imported on first use."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise MissingDependency("Parquet needs pyarrow: pip install 'pitwire[parquet]'") from exc
    return pyarrow, pyarrow.parquet


def _union(streams: list[tuple[StreamInfo, list[Channel]]]) -> list[Channel]:
    """Every channel of the exported streams once, in first-seen order (checks conflicts)."""
    seen: dict[str, tuple[Channel, str]] = {}
    for stream, channels in streams:
        for c in channels:
            if c.name in RESERVED:
                raise ExportError(
                    f"stream {stream.stream_id!r}: a channel named {c.name!r} clashes with the "
                    "Parquet column of that name"
                )
            if c.name in seen and seen[c.name][0] != c:
                raise ExportError(
                    f"channel {c.name!r} is defined differently in streams "
                    f"{seen[c.name][1]!r} and {stream.stream_id!r}; export them separately"
                )
            seen.setdefault(c.name, (c, stream.stream_id))
    return [c for c, _ in seen.values()]


class ParquetWriter(SessionFiles):
    """One Parquet file per session, with a ``stream`` column."""

    name = "parquet"
    suffix = ".parquet"

    def write(
        self,
        session: SessionData,
        dest: Path,
        *,
        streams: list[str] | None = None,
        channels: list[str] | None = None,
        progress: Progress | None = None,
    ) -> list[Path]:
        """Write the selected streams to one file; return ``[file]``."""
        pa, pq = _pyarrow()
        selected = select(session, streams, channels)
        union = _union([(s.stream, s.channels) for s in selected])
        ids = [s.stream_id for s in selected]
        exported = [msgspec.structs.replace(s.stream, channels=s.channels) for s in selected]
        chosen = set(ids)
        laps = [lap for lap in session.laps if lap.stream_id in chosen]
        time_type = pa.timestamp("ns", tz="UTC")
        fields = [
            pa.field("stream", pa.dictionary(pa.int32(), pa.string())),
            pa.field("time", time_type, nullable=False),
            *(
                pa.field(
                    c.name,
                    pa.float32() if c.dtype == "f4" else pa.float64(),
                    metadata={"unit": c.unit, "pitwire.channel": _json(c)},
                )
                for c in union
            ),
        ]
        schema = pa.schema(
            fields,
            metadata={
                "pitwire.version": str(VERSION),
                "pitwire.session": _json(session.info),
                "pitwire.streams": _json(exported),
                "pitwire.laps": _json(laps),
            },
        )
        dictionary = pa.array(ids, pa.string())
        path = session_path(session.info.session_id, dest, self.suffix)
        with pq.ParquetWriter(path, schema, compression="zstd") as out:
            for code, sel in enumerate(selected):
                batch = session.frames(sel.stream_id)
                columns = columns_of(batch, sel.channels)
                for start in range(0, batch.n, CHUNK):
                    stop = min(start + CHUNK, batch.n)
                    n = stop - start
                    arrays = [
                        pa.DictionaryArray.from_arrays(
                            pa.array(np.full(n, code, np.int32)), dictionary
                        ),
                        pa.array(batch.t_ns[start:stop], type=time_type),
                        *(
                            pa.array(columns[c.name][start:stop])
                            if c.name in columns
                            else pa.nulls(n, pa.float32() if c.dtype == "f4" else pa.float64())
                            for c in union
                        ),
                    ]
                    out.write_table(pa.Table.from_arrays(arrays, schema=schema))
                    if progress is not None:
                        progress(n)
        return [path]


def read_parquet(path: str | Path) -> MemorySession:
    """The session in a Parquet file written by :class:`ParquetWriter` (exactly as exported),
    or in another Parquet file with a ``time``/``t_ns`` column (see the module docstring)."""
    pa, pq = _pyarrow()
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ExportError(f"{path}: not a readable Parquet file ({exc})") from exc
    meta: dict[bytes, bytes] = table.schema.metadata or {}
    if b"pitwire.version" not in meta:
        return _read_foreign(pa, table, path)
    version = int(meta[b"pitwire.version"])
    if version > VERSION:
        raise ExportError(f"{path}: written by a newer pitwire (version {version} > {VERSION})")
    try:
        info = _decode_session.decode(meta[b"pitwire.session"])
        streams = _decode_streams.decode(meta[b"pitwire.streams"])
        laps = _decode_laps.decode(meta[b"pitwire.laps"])
    except (KeyError, msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ExportError(f"{path}: damaged pitwire metadata ({exc})") from exc
    t_ns = _time(pa, table, path)
    rows = _rows_by_stream(pa, table, [s.stream_id for s in streams], path)
    batches: dict[str, FrameBatch] = {}
    cache: dict[str, np.ndarray] = {}
    for stream in streams:
        idx = rows.get(stream.stream_id)
        if idx is None or not len(idx):
            continue
        columns = {c.name: _column(pa, table, c, idx, cache, path) for c in stream.channels}
        batches[stream.stream_id] = FrameBatch(t_ns[idx], columns)
    return MemorySession(info=info, streams=streams, laps=laps, batches=batches)


def _time(pa: ModuleType, table: Any, path: Path) -> np.ndarray:
    """The time column as int64 ns since the epoch."""
    names = table.column_names
    if "time" in names and pa.types.is_timestamp(table.schema.field("time").type):
        col = table.column("time").cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    elif "t_ns" in names and pa.types.is_integer(table.schema.field("t_ns").type):
        col = table.column("t_ns").cast(pa.int64())
    else:
        raise ExportError(f"{path}: no time column ('time' timestamp or 't_ns' int64)")
    if col.null_count:
        raise ExportError(f"{path}: the time column has nulls")
    t: np.ndarray = col.to_numpy().astype(np.int64, copy=False)
    return t


def _rows_by_stream(pa: ModuleType, table: Any, known: list[str], path: Path) -> dict[str, Any]:
    """Row indices of each stream id in the ``stream`` column."""
    if "stream" not in table.column_names:
        raise ExportError(f"{path}: no 'stream' column")
    column = table.column("stream").cast(pa.string())
    if column.null_count:
        raise ExportError(f"{path}: the stream column has nulls")
    encoded = column.combine_chunks().dictionary_encode()
    codes = encoded.indices.to_numpy()
    names: list[str] = encoded.dictionary.to_pylist()
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ExportError(f"{path}: rows of streams missing from the metadata: {unknown}")
    rows = {s: np.empty(0, np.intp) for s in known}
    for code, name in enumerate(names):
        rows[name] = np.flatnonzero(codes == code)
    return rows


def _column(
    pa: ModuleType,
    table: Any,
    channel: Channel,
    idx: np.ndarray,
    cache: dict[str, np.ndarray],
    path: Path,
) -> Column:
    """``channel``'s values in rows ``idx`` (each column converted to numpy once; nulls of
    integer columns become NaN)."""
    values = cache.get(channel.name)
    if values is None:
        if channel.name not in table.column_names:
            raise ExportError(f"{path}: no column for channel {channel.name!r}")
        kind = pa.float32() if channel.dtype == "f4" else pa.float64()
        values = cache[channel.name] = np.asarray(
            table.column(channel.name).cast(kind).to_numpy(), channel.dtype
        )
    out: Column = values[idx]
    return out


def _read_foreign(pa: ModuleType, table: Any, path: Path) -> MemorySession:
    """A Parquet file without pitwire metadata (see the module docstring)."""
    t_ns = _time(pa, table, path)
    channels: list[Channel] = []
    for f in table.schema:
        if f.name in (*RESERVED, "t_ns") or not (
            pa.types.is_floating(f.type) or pa.types.is_integer(f.type)
        ):
            continue
        unit = (f.metadata or {}).get(b"unit", b"").decode()
        dtype: DType = "f4" if pa.types.is_float32(f.type) or pa.types.is_float16(f.type) else "f8"
        try:
            channels.append(Channel(name=f.name, unit=unit, dtype=dtype))
        except ValueError as exc:
            raise ExportError(f"{path}: column {f.name!r} cannot be a channel: {exc}") from exc
    if "stream" in table.column_names:
        ids = [str(s) for s in dict.fromkeys(table.column("stream").to_pylist())]
    else:
        ids = [path.stem]
        table = table.append_column("stream", pa.array([path.stem] * table.num_rows))
    rows = _rows_by_stream(pa, table, ids, path)
    streams = [StreamInfo(stream_id=s, channels=list(channels)) for s in ids]
    cache: dict[str, np.ndarray] = {}
    batches = {
        s: FrameBatch(
            t_ns[idx], {c.name: _column(pa, table, c, idx, cache, path) for c in channels}
        )
        for s, idx in rows.items()
    }
    return MemorySession(info=SessionInfo(session_id=path.stem), streams=streams, batches=batches)
