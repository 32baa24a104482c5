"""The SQL of PostgresStore: the statements each Store call runs (the schema and its
migrations: ``_postgres_schema``).

Every function takes an asyncpg connection (checked out of the store's pool) and ``s``, the
quoted schema name that qualifies every table (statements never depend on ``search_path``).
The store maps connection and database errors to StoreUnavailable; the functions here raise
only UnknownSession and the StoreErrors of bad input. Summaries and the chunk index read only
index columns and small ones, never a blob.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence, Set
from typing import Any

import msgspec

from pitwire.analysis.completeness import ChunkSpan, Hole
from pitwire.codec import chunk
from pitwire.model.channels import Channel, ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.store import _shared
from pitwire.store._postgres_schema import quote
from pitwire.store.base import SessionSummary

Connection = Any
"""An ``asyncpg.Connection`` (asyncpg ships no type information)."""

CHUNK_COLUMNS = (
    "session",
    "stream",
    "first_seq",
    "last_seq",
    "t0_ns",
    "t1_ns",
    "n",
    "codec",
    "stats",
    "period_ns",
    "holes",
    "blob",
)
"""The chunks columns a write fills, in the order of ``chunk_record``."""


# -- writes -------------------------------------------------------------------------------

ChannelCache = dict[tuple[str, str], tuple[str, ChannelSet]]
"""(session, stream) -> (channels JSON, parsed channels): saves parsing on every write."""


WriteItem = tuple[StreamId, int, FrameBatch]
"""(stream, first seq, frames) of one write."""

_ENCODE_OFF_LOOP = 1 << 17
"""Writes of more samples (frames x channels) than this encode on a worker thread: about
5 ms of encoding (a 1.6M-sample write held the event loop 70-185 ms when encoded on it,
under 30 ms off it: test_large_chunk_round_trips)."""


async def write_chunks(
    conn: Connection,
    schema: str,
    cache: ChannelCache,
    session_id: SessionId,
    items: Sequence[WriteItem],
) -> list[int]:
    """Store the frames of each item whose seqs are not stored yet (nor by an earlier item),
    all in one transaction that holds the locks of the items' streams; frames new per item.

    Round trips whatever the number of items: lock the streams, find the stored spans near
    every item (two seeks each in the primary key), one binary COPY of the encoded missing
    pieces, commit."""
    s = quote(schema)
    async with conn.transaction():
        channels = await lock_streams(conn, s, cache, session_id, {i[0] for i in items})
        checked = [
            (
                stream_id,
                first_seq,
                _shared.check_write(
                    session_id=session_id,
                    stream_id=stream_id,
                    first_seq=first_seq,
                    batch=batch,
                    channels=channels[stream_id],
                ),
            )
            for stream_id, first_seq, batch in items
        ]
        near = await stored_spans(conn, s, session_id, checked)
        added: dict[str, list[tuple[int, int]]] = {}  # spans stored by earlier items
        todo: list[tuple[int, int, FrameBatch]] = []  # (item, first seq, piece)
        for i, (stream_id, first_seq, batch) in enumerate(checked):
            if batch.n == 0:
                continue
            mine = added.setdefault(stream_id, [])
            for lo, piece in missing_pieces(first_seq, batch, sorted(near[i] + mine)):
                todo.append((i, lo, piece))
                mine.append((lo, lo + piece.n - 1))
        records = [
            (session_id, checked[i][0], lo, piece, channels[checked[i][0]]) for i, lo, piece in todo
        ]
        if sum(piece.n * len(piece.columns) for _, _, piece in todo) > _ENCODE_OFF_LOOP:
            encoded = await asyncio.get_running_loop().run_in_executor(
                None, lambda: [chunk_record(*r) for r in records]
            )
        else:
            encoded = [chunk_record(*r) for r in records]
        if encoded:
            await conn.copy_records_to_table(
                "chunks", schema_name=schema, columns=CHUNK_COLUMNS, records=encoded
            )
    counts = [0] * len(items)
    for i, _, piece in todo:
        counts[i] += piece.n
    return counts


async def lock_streams(
    conn: Connection, s: str, cache: ChannelCache, session_id: SessionId, streams: Set[str]
) -> dict[str, ChannelSet]:
    """Lock the streams' rows until the transaction ends, in name order (writers of a stream
    queue here, without deadlocks; foreign-key checks of laps and chunks do not wait) and
    return their channels; UnknownSession when one does not exist."""
    rows = await conn.fetch(
        f"""SELECT stream, channels FROM {s}.streams WHERE session = $1 AND stream = ANY($2)
            ORDER BY stream FOR NO KEY UPDATE""",
        session_id,
        sorted(streams),
    )
    found = {row[0]: row[1] for row in rows}
    for stream_id in sorted(streams - found.keys()):
        await _require_session(conn, s, session_id)
        raise _shared.unknown_stream(session_id, StreamId(stream_id))
    return {
        stream_id: _parse_channels(cache, session_id, StreamId(stream_id), text)
        for stream_id, text in found.items()
    }


def _parse_channels(
    cache: ChannelCache, session_id: SessionId, stream_id: StreamId, text: str
) -> ChannelSet:
    cached = cache.get((session_id, stream_id))
    if cached is not None and cached[0] == text:
        return cached[1]
    channels = ChannelSet(_shared.decode_json(text, list[Channel]))
    cache[(session_id, stream_id)] = (text, channels)
    return channels


async def stored_spans(
    conn: Connection, s: str, session_id: SessionId, items: Sequence[WriteItem]
) -> list[list[tuple[int, int]]]:
    """For each item, the stored (first_seq, last_seq) spans that may overlap it, in seq
    order, from one query.

    Stored chunks never overlap, so only the one starting before the item's first seq and
    those starting inside its range can: two seeks in the primary key per item, whatever the
    stream's size."""
    todo = [(i, item) for i, item in enumerate(items) if item[2].n]
    rows = await conn.fetch(
        f"""SELECT w.i, c.first_seq, c.last_seq
            FROM unnest($2::int[], $3::text[], $4::int8[], $5::int8[]) AS w (i, stream, lo, hi)
            CROSS JOIN LATERAL (
              (SELECT first_seq, last_seq FROM {s}.chunks
               WHERE session = $1 AND stream = w.stream AND first_seq < w.lo
               ORDER BY first_seq DESC LIMIT 1)
              UNION ALL
              (SELECT first_seq, last_seq FROM {s}.chunks
               WHERE session = $1 AND stream = w.stream AND first_seq BETWEEN w.lo AND w.hi)
            ) AS c""",
        session_id,
        [i for i, _ in todo],
        [stream for _, (stream, _, _) in todo],
        [first for _, (_, first, _) in todo],
        [first + batch.n - 1 for _, (_, first, batch) in todo],
    )
    out: list[list[tuple[int, int]]] = [[] for _ in items]
    for i, first, last in sorted(rows):
        out[i].append((first, last))
    return out


def chunk_record(
    session_id: SessionId,
    stream_id: StreamId,
    first_seq: int,
    piece: FrameBatch,
    channels: ChannelSet,
) -> tuple[Any, ...]:
    """The chunks row (``CHUNK_COLUMNS``) of ``piece`` (non-empty) stored from ``first_seq``:
    the one place where frames are encoded for PostgreSQL (quantized to the channels'
    resolutions)."""
    blob = chunk.encode(piece, channels=channels)
    stats = chunk.stats(piece)
    span = _shared.chunk_span(first_seq, piece)
    return (
        session_id,
        stream_id,
        span.first_seq,
        span.last_seq,
        stats.t0_ns,
        stats.t1_ns,
        piece.n,
        chunk.version_of(blob),
        _shared.encode_json(stats.columns),
        span.period_ns,
        msgspec.json.encode(span.holes).decode(),
        blob,
    )


def missing_pieces(
    first_seq: int, batch: FrameBatch, spans: Iterable[tuple[int, int]]
) -> list[tuple[int, FrameBatch]]:
    """(first seq, frames) of the parts of ``batch`` (from ``first_seq``) not in ``spans``."""
    last_seq = first_seq + batch.n - 1
    return [
        (lo, batch.slice(lo - first_seq, hi - first_seq + 1))
        for lo, hi in _shared.gaps(first_seq, last_seq, spans)
    ]


async def put_session(conn: Connection, s: str, info: SessionInfo) -> None:
    await conn.execute(
        f"""INSERT INTO {s}.sessions (id, track, source, started_ns) VALUES ($1, $2, $3, $4)
            ON CONFLICT (id) DO UPDATE SET track = excluded.track, source = excluded.source""",
        info.session_id,
        info.track,
        info.source,
        info.started_ns,
    )


async def put_stream(conn: Connection, s: str, session_id: SessionId, info: StreamInfo) -> None:
    done = await conn.fetchval(
        f"""INSERT INTO {s}.streams (session, stream, driver, car, channels, colour)
            SELECT $1, $2, $3, $4, $5, $6
            WHERE EXISTS (SELECT 1 FROM {s}.sessions WHERE id = $1)
            ON CONFLICT (session, stream) DO UPDATE SET driver = excluded.driver,
            car = excluded.car, channels = excluded.channels, colour = excluded.colour
            RETURNING 1""",
        session_id,
        info.stream_id,
        info.driver,
        info.car,
        _shared.encode_json(info.channels),
        info.colour,
    )
    if done is None:
        raise _shared.unknown_session(session_id)


_LAP_NAMES = ", ".join(_shared.LAP_COLUMNS)
_LAP_PARAMS = ", ".join(
    f"${i}::jsonb" if name == "sectors" else f"${i}"
    for i, name in enumerate(("session", "stream", *_shared.LAP_COLUMNS), start=1)
)
_LAP_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in _shared.LAP_COLUMNS if c != "lap")


async def put_lap(conn: Connection, s: str, session_id: SessionId, lap: LapInfo) -> None:
    async with conn.transaction():
        done = await conn.fetchval(
            f"""INSERT INTO {s}.laps (session, stream, {_LAP_NAMES})
                SELECT {_LAP_PARAMS} WHERE EXISTS (
                  SELECT 1 FROM {s}.streams WHERE session = $1 AND stream = $2)
                ON CONFLICT (session, stream, lap) DO UPDATE SET {_LAP_UPDATES}
                RETURNING 1""",
            session_id,
            lap.stream_id,
            *_shared.lap_row(lap),
        )
        if done is None:
            await _require_session(conn, s, session_id)
            raise _shared.unknown_stream(session_id, StreamId(lap.stream_id))


# -- reads --------------------------------------------------------------------------------


def snapshot(conn: Connection) -> Any:
    """A read-only transaction in which every query sees one snapshot."""
    return conn.transaction(isolation="repeatable_read", readonly=True)


async def _require_session(conn: Connection, s: str, session_id: SessionId) -> None:
    if await conn.fetchval(f"SELECT 1 FROM {s}.sessions WHERE id = $1", session_id) is None:
        raise _shared.unknown_session(session_id)


async def stream_channels(
    conn: Connection, s: str, cache: ChannelCache, session_id: SessionId, stream_id: StreamId
) -> ChannelSet:
    """The stream's channels; UnknownSession when the session or stream does not exist."""
    text = await conn.fetchval(
        f"SELECT channels FROM {s}.streams WHERE session = $1 AND stream = $2",
        session_id,
        stream_id,
    )
    if text is None:
        await _require_session(conn, s, session_id)
        raise _shared.unknown_stream(session_id, stream_id)
    return _parse_channels(cache, session_id, stream_id, text)


async def stored_seqs(
    conn: Connection,
    s: str,
    session_id: SessionId,
    stream_id: StreamId,
    hint: tuple[int, int] | None,
) -> tuple[int, int] | None:
    """(first stored seq, contiguous high-water mark), None when nothing is stored.

    ``hint`` is an earlier answer: chunks are never removed, so a contiguous run found before
    is still one while the first stored seq is unchanged, and the walk resumes at its end.
    """
    async with snapshot(conn):
        row = await conn.fetchrow(
            f"""SELECT (SELECT 1 FROM {s}.streams WHERE session = $1 AND stream = $2),
                (SELECT min(first_seq) FROM {s}.chunks WHERE session = $1 AND stream = $2)""",
            session_id,
            stream_id,
        )
        if row[0] is None:
            await _require_session(conn, s, session_id)
            raise _shared.unknown_stream(session_id, stream_id)
        start: int | None = row[1]
        if start is None:
            return None
        seed = hint[1] if hint is not None and hint[0] == start else start - 1
        high: int = await conn.fetchval(
            f"""WITH RECURSIVE run (last) AS (
                  SELECT $3::bigint UNION ALL
                  SELECT c.last_seq FROM {s}.chunks c JOIN run ON c.first_seq = run.last + 1
                  WHERE c.session = $1 AND c.stream = $2)
                SELECT max(last) FROM run""",
            session_id,
            stream_id,
            seed,
        )
    return (start, high)


async def summaries(conn: Connection, s: str, session_id: SessionId | None) -> list[SessionSummary]:
    """Summaries of one session (UnknownSession when missing) or, for None, of all, newest
    first; one statement (one snapshot, one round trip) of four index reads, never touching
    a blob."""
    args: tuple[str, ...] = () if session_id is None else (session_id,)
    where = "" if session_id is None else "WHERE session = $1"
    row = await conn.fetchrow(
        f"""SELECT
            (SELECT array_agg(row(id, track, source, started_ns) ORDER BY started_ns DESC, id)
             FROM {s}.sessions {"" if session_id is None else "WHERE id = $1"}),
            (SELECT array_agg(row(session, stream, driver, car, channels::text, colour)
                              ORDER BY session, stream)
             FROM {s}.streams {where}),
            (SELECT array_agg(row(session, stream, n, first_seq, last_seq, t0_ns, t1_ns))
             FROM (SELECT session, stream, sum(n)::int8 AS n, min(first_seq) AS first_seq,
                          max(last_seq) AS last_seq, min(t0_ns) AS t0_ns, max(t1_ns) AS t1_ns
                   FROM {s}.chunks {where} GROUP BY session, stream) AS f),
            (SELECT array_agg(row(session, stream, lap, t0_ns, t1_ns, frames, lap_time,
                                  sectors::text, compound, stint, tyre_life, pit_in, pit_out)
                              ORDER BY session, stream, lap)
             FROM {s}.laps {where})""",
        *args,
    )
    sessions, streams, figures, laps = (found or [] for found in row)
    if session_id is not None and not sessions:
        raise _shared.unknown_session(session_id)
    return _shared.summaries(sessions, streams, figures, laps)


def _clamp(t_ns: int | None, default: int) -> int:
    return default if t_ns is None else min(max(t_ns, _shared.T_MIN), _shared.T_MAX)


async def frame_blobs(
    conn: Connection,
    s: str,
    cache: ChannelCache,
    session_id: SessionId,
    stream_id: StreamId,
    t0_ns: int | None,
    t1_ns: int | None,
) -> tuple[ChannelSet, list[tuple[int, bytes]]]:
    """The stream's channels and the (first_seq, blob) of its chunks that may hold frames in
    [t0_ns, t1_ns], in seq order: one statement (one snapshot, one round trip)."""
    text, rows = await conn.fetchrow(
        f"""SELECT (SELECT channels::text FROM {s}.streams WHERE session = $1 AND stream = $2),
            (SELECT array_agg(row(first_seq, blob) ORDER BY first_seq) FROM {s}.chunks
             WHERE session = $1 AND stream = $2 AND t1_ns >= $3 AND t0_ns <= $4)""",
        session_id,
        stream_id,
        _clamp(t0_ns, _shared.T_MIN),
        _clamp(t1_ns, _shared.T_MAX),
    )
    if text is None:
        await _require_session(conn, s, session_id)
        raise _shared.unknown_stream(session_id, stream_id)
    return _parse_channels(cache, session_id, stream_id, text), list(rows or [])


async def window_blobs(
    conn: Connection,
    s: str,
    cache: ChannelCache,
    session_id: SessionId,
    t0_ns: int,
    t1_ns: int,
    streams: list[str] | None,
) -> dict[StreamId, tuple[ChannelSet, list[tuple[int, bytes]]]]:
    """Every (or each named) stream's channels and the (first_seq, blob) of its chunks that
    may hold frames in [t0_ns, t1_ns], in seq order (one statement: one snapshot)."""
    exists, pairs, rows = await conn.fetchrow(
        f"""SELECT EXISTS (SELECT 1 FROM {s}.sessions WHERE id = $1),
            (SELECT array_agg(row(stream, channels::text)) FROM {s}.streams WHERE session = $1),
            (SELECT array_agg(row(stream, first_seq, blob) ORDER BY stream, first_seq)
             FROM {s}.chunks WHERE session = $1 AND t1_ns >= $2 AND t0_ns <= $3)""",
        session_id,
        _clamp(t0_ns, _shared.T_MIN),
        _clamp(t1_ns, _shared.T_MAX),
    )
    if not exists:
        raise _shared.unknown_session(session_id)
    known = dict(pairs or [])
    for stream in streams or ():
        if stream not in known:
            raise _shared.unknown_stream(session_id, StreamId(stream))
    rows = rows or []
    wanted = sorted(known) if streams is None else streams
    out: dict[StreamId, tuple[ChannelSet, list[tuple[int, bytes]]]] = {
        StreamId(stream): (_parse_channels(cache, session_id, StreamId(stream), known[stream]), [])
        for stream in wanted
    }
    for stream, first_seq, blob in rows:
        entry = out.get(StreamId(stream))
        if entry is not None:
            entry[1].append((first_seq, blob))
    return out


_HOLES = msgspec.json.Decoder(tuple[Hole, ...])


async def chunk_index(
    conn: Connection, s: str, session_id: SessionId
) -> dict[str, list[ChunkSpan]]:
    """The session's chunk index (stream → spans in seq order), never touching a blob; one
    statement."""
    out: dict[str, list[ChunkSpan]] = {}
    exists, rows = await conn.fetchrow(
        f"""SELECT EXISTS (SELECT 1 FROM {s}.sessions WHERE id = $1),
            (SELECT array_agg(row(stream, first_seq, last_seq, n, t0_ns, t1_ns, period_ns,
                                  holes::text) ORDER BY stream, first_seq)
             FROM {s}.chunks WHERE session = $1)""",
        session_id,
    )
    if not exists:
        raise _shared.unknown_session(session_id)
    rows = rows or []
    for stream, first, last, n, t0, t1, period, holes in rows:
        spans = out.setdefault(stream, [])
        found = () if holes == "[]" else _HOLES.decode(holes)
        spans.append(ChunkSpan(first, last, n, t0, t1, period, found))
    return out
