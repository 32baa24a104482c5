"""The SQL of SqliteStore: schema migrations and the statements each Store call runs.

Every function takes the connection of the thread it runs on (the writer's or a reader's) and
does blocking sqlite work; sqlite.py hands them to its threads. Summaries and the chunk index
read only the covering index ``chunks_index``; frames decode the blobs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import msgspec

from pitwire.analysis.completeness import ChunkSpan, Hole
from pitwire.codec import chunk
from pitwire.model.channels import ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.store import _shared
from pitwire.store.base import SessionSummary, StoreError

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # v1. streams.channels: JSON list of Channel; chunks.stats: JSON {channel: [lo, hi,
        # NaN count]}; non-finite floats as "inf"/"-inf"/"nan". chunks.t0_ns/t1_ns are the
        # min/max frame time. chunks.blob is the last column so that scans of the other
        # columns never read its overflow pages; chunks_span covers summary and seq queries.
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY, track TEXT NOT NULL, source TEXT NOT NULL,
            started_ns INTEGER NOT NULL)""",
        "CREATE INDEX sessions_started ON sessions (started_ns)",
        """CREATE TABLE streams (
            session TEXT NOT NULL REFERENCES sessions (id), stream TEXT NOT NULL,
            driver TEXT NOT NULL, car TEXT NOT NULL, channels TEXT NOT NULL,
            PRIMARY KEY (session, stream)) WITHOUT ROWID""",
        """CREATE TABLE laps (
            session TEXT NOT NULL, stream TEXT NOT NULL, lap INTEGER NOT NULL,
            t0_ns INTEGER NOT NULL, t1_ns INTEGER NOT NULL, frames INTEGER NOT NULL,
            lap_time REAL,
            PRIMARY KEY (session, stream, lap),
            FOREIGN KEY (session, stream) REFERENCES streams (session, stream)) WITHOUT ROWID""",
        """CREATE TABLE chunks (
            session TEXT NOT NULL, stream TEXT NOT NULL,
            first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
            t0_ns INTEGER NOT NULL, t1_ns INTEGER NOT NULL, n INTEGER NOT NULL,
            codec INTEGER NOT NULL, stats TEXT NOT NULL, blob BLOB NOT NULL,
            UNIQUE (session, stream, first_seq),
            FOREIGN KEY (session, stream) REFERENCES streams (session, stream))""",
        """CREATE INDEX chunks_span
            ON chunks (session, stream, first_seq, last_seq, n, t0_ns, t1_ns)""",
        "CREATE INDEX chunks_time ON chunks (session, stream, t1_ns, t0_ns)",
    ),
    (  # v2. The chunk index's completeness figures: the median frame interval and the time
        # gaps inside each chunk (JSON [[t0_ns, t1_ns, missing], ...]). Chunks written before
        # v2 read as period 0 (unknown): only seq gaps are found in them. Added columns sit
        # after the blob in each row, so chunks_index covers them: reading the chunk index
        # never touches a blob's pages. It also covers what chunks_span did.
        "ALTER TABLE chunks ADD COLUMN period_ns INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE chunks ADD COLUMN holes TEXT NOT NULL DEFAULT '[]'",
        """CREATE INDEX chunks_index
            ON chunks (session, stream, first_seq, last_seq, n, t0_ns, t1_ns, period_ns, holes)""",
        "DROP INDEX chunks_span",
    ),
    (  # v3. Lap details (historical F1 and any source that reports them): sectors is a JSON
        # array of sector times [s] (null for a sector without a time, [] when not reported);
        # compound, stint and tyre_life describe the tyres; pit_in/pit_out are 0/1. A
        # stream's display colour ('#rrggbb', '' = let the UI pick). Rows from v2 read with
        # the defaults, which are exactly what LapInfo/StreamInfo default to.
        "ALTER TABLE laps ADD COLUMN sectors TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE laps ADD COLUMN compound TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE laps ADD COLUMN stint INTEGER",
        "ALTER TABLE laps ADD COLUMN tyre_life INTEGER",
        "ALTER TABLE laps ADD COLUMN pit_in INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE laps ADD COLUMN pit_out INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE streams ADD COLUMN colour TEXT NOT NULL DEFAULT ''",
    ),
)
"""Schema migrations: entry i takes ``user_version`` i to i + 1."""


@contextmanager
def transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def read(conn: sqlite3.Connection) -> AbstractContextManager[None]:
    """A read transaction: every query inside sees one snapshot."""
    return transaction(conn, "BEGIN DEFERRED")


def migrate(conn: sqlite3.Connection, where: str) -> None:
    with transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(
            f"sqlite {where}: schema v{version} is newer than this pitwire supports "
            f"(v{len(MIGRATIONS)}); upgrade pitwire"
        )
    for target in range(version + 1, len(MIGRATIONS) + 1):
        with transaction(conn):
            if conn.execute("PRAGMA user_version").fetchone()[0] >= target:
                continue  # another process migrated meanwhile
            for statement in MIGRATIONS[target - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")


ChannelCache = dict[tuple[str, str], tuple[str, ChannelSet]]
"""(session, stream) -> (channels JSON, parsed channels): saves parsing on every write."""


def write_chunk(
    conn: sqlite3.Connection,
    cache: ChannelCache,
    session_id: SessionId,
    stream_id: StreamId,
    first_seq: int,
    batch: FrameBatch,
) -> int:
    """Store the frames of ``batch`` whose seqs are not stored yet; how many were new."""
    with transaction(conn):
        channels = _stream_channels(conn, cache, session_id, stream_id)
        batch = _shared.check_write(
            session_id=session_id,
            stream_id=stream_id,
            first_seq=first_seq,
            batch=batch,
            channels=channels,
        )
        if batch.n == 0:
            return 0
        last_seq = first_seq + batch.n - 1
        # Stored chunks never overlap, so only the one starting before first_seq and those
        # starting inside the batch can overlap it: two index seeks, whatever the stream's size.
        spans = conn.execute(
            """SELECT first_seq, last_seq FROM chunks
               WHERE session = ?1 AND stream = ?2 AND first_seq BETWEEN ?3 AND ?4
               UNION ALL SELECT * FROM (
                 SELECT first_seq, last_seq FROM chunks
                 WHERE session = ?1 AND stream = ?2 AND first_seq < ?3
                 ORDER BY first_seq DESC LIMIT 1)
               ORDER BY first_seq""",
            (session_id, stream_id, first_seq, last_seq),
        ).fetchall()
        stored = 0
        for lo, hi in _shared.gaps(first_seq, last_seq, spans):
            piece = batch.slice(lo - first_seq, hi - first_seq + 1)
            blob = chunk.encode(piece, channels=channels)
            stats = chunk.stats(piece)
            span = _shared.chunk_span(lo, piece)
            conn.execute(
                """INSERT INTO chunks (session, stream, first_seq, last_seq, t0_ns, t1_ns, n,
                   codec, stats, period_ns, holes, blob)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    session_id,
                    stream_id,
                    lo,
                    hi,
                    stats.t0_ns,
                    stats.t1_ns,
                    piece.n,
                    chunk.version_of(blob),
                    _shared.encode_json(stats.columns),
                    span.period_ns,
                    msgspec.json.encode(span.holes).decode(),
                    blob,
                ),
            )
            stored += piece.n
        return stored


def _stream_channels(
    conn: sqlite3.Connection, cache: ChannelCache, session_id: SessionId, stream_id: StreamId
) -> ChannelSet:
    text = _stream_row(conn, session_id, stream_id)[2]
    cached = cache.get((session_id, stream_id))
    if cached is not None and cached[0] == text:
        return cached[1]
    channels = ChannelSet(_shared.channels_from_json(text))
    cache[(session_id, stream_id)] = (text, channels)
    return channels


def stored_seqs(
    conn: sqlite3.Connection,
    session_id: SessionId,
    stream_id: StreamId,
    hint: tuple[int, int] | None,
) -> tuple[int, int] | None:
    """(first stored seq, contiguous high-water mark), None when nothing is stored.

    ``hint`` is an earlier answer: chunks are never removed, so a contiguous run found before
    is still one while the first stored seq is unchanged, and the walk resumes at its end.
    """
    with read(conn):
        _stream_row(conn, session_id, stream_id)
        start = conn.execute(
            "SELECT MIN(first_seq) FROM chunks WHERE session = ? AND stream = ?",
            (session_id, stream_id),
        ).fetchone()[0]
        if start is None:
            return None
        seed = hint[1] if hint is not None and hint[0] == start else start - 1
        high: int = conn.execute(
            """WITH RECURSIVE run (last) AS (
                 SELECT ?3 UNION ALL
                 SELECT c.last_seq FROM chunks c JOIN run ON c.first_seq = run.last + 1
                 WHERE c.session = ?1 AND c.stream = ?2)
               SELECT MAX(last) FROM run""",
            (session_id, stream_id, seed),
        ).fetchone()[0]
    return (start, high)


def _require_session(conn: sqlite3.Connection, session_id: SessionId) -> None:
    if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
        raise _shared.unknown_session(session_id)


def _stream_row(
    conn: sqlite3.Connection, session_id: SessionId, stream_id: StreamId
) -> tuple[str, str, str]:
    """(driver, car, channels JSON) of the stream; UnknownSession when it does not exist."""
    row = conn.execute(
        "SELECT driver, car, channels FROM streams WHERE session = ? AND stream = ?",
        (session_id, stream_id),
    ).fetchone()
    if row is None:
        _require_session(conn, session_id)
        raise _shared.unknown_stream(session_id, stream_id)
    return (row[0], row[1], row[2])


def put_session(conn: sqlite3.Connection, info: SessionInfo) -> None:
    conn.execute(
        """INSERT INTO sessions (id, track, source, started_ns) VALUES (?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET track = excluded.track, source = excluded.source""",
        (info.session_id, info.track, info.source, info.started_ns),
    )


def put_stream(conn: sqlite3.Connection, session_id: SessionId, info: StreamInfo) -> None:
    with transaction(conn):
        _require_session(conn, session_id)
        conn.execute(
            """INSERT INTO streams (session, stream, driver, car, channels, colour)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (session, stream) DO UPDATE SET driver = excluded.driver,
               car = excluded.car, channels = excluded.channels, colour = excluded.colour""",
            (
                session_id,
                info.stream_id,
                info.driver,
                info.car,
                _shared.encode_json(info.channels),
                info.colour,
            ),
        )


def put_lap(conn: sqlite3.Connection, session_id: SessionId, lap: LapInfo) -> None:
    with transaction(conn):
        _stream_row(conn, session_id, StreamId(lap.stream_id))
        conn.execute(
            f"INSERT OR REPLACE INTO laps (session, stream, {', '.join(_shared.LAP_COLUMNS)}) "
            f"VALUES ({', '.join('?' * (len(_shared.LAP_COLUMNS) + 2))})",
            (session_id, lap.stream_id, *_shared.lap_row(lap)),
        )


def summaries(conn: sqlite3.Connection, session_id: SessionId | None) -> list[SessionSummary]:
    """Summaries of one session (UnknownSession when missing) or, for None, of all, newest
    first; four index reads in one snapshot, never touching a blob."""
    args: tuple[str, ...] = () if session_id is None else (session_id,)
    where = "" if session_id is None else "WHERE session = ?"
    with read(conn):
        sessions = conn.execute(
            "SELECT id, track, source, started_ns FROM sessions "
            f"{'' if session_id is None else 'WHERE id = ?'} ORDER BY started_ns DESC, id",
            args,
        ).fetchall()
        if session_id is not None and not sessions:
            raise _shared.unknown_session(session_id)
        streams = conn.execute(
            f"SELECT session, stream, driver, car, channels, colour FROM streams {where} "
            "ORDER BY session, stream",
            args,
        ).fetchall()
        figures = conn.execute(
            f"""SELECT session, stream, SUM(n), MIN(first_seq), MAX(last_seq), MIN(t0_ns),
                MAX(t1_ns) FROM chunks {where} GROUP BY session, stream""",
            args,
        ).fetchall()
        laps = conn.execute(
            f"SELECT session, stream, {', '.join(_shared.LAP_COLUMNS)} FROM laps {where} "
            "ORDER BY session, stream, lap",
            args,
        ).fetchall()
    return _shared.summaries(sessions, streams, figures, laps)


def _clamp(t_ns: int | None, default: int) -> int:
    return default if t_ns is None else min(max(t_ns, _shared.T_MIN), _shared.T_MAX)


def read_frames(
    conn: sqlite3.Connection,
    session_id: SessionId,
    stream_id: StreamId,
    t0_ns: int | None,
    t1_ns: int | None,
) -> FrameBatch:
    with read(conn):
        text = _stream_row(conn, session_id, stream_id)[2]
        channels = ChannelSet(_shared.channels_from_json(text))
        rows = conn.execute(
            """SELECT first_seq, blob FROM chunks WHERE session = ? AND stream = ?
               AND t1_ns >= ? AND t0_ns <= ? ORDER BY first_seq""",
            (session_id, stream_id, _clamp(t0_ns, _shared.T_MIN), _clamp(t1_ns, _shared.T_MAX)),
        ).fetchall()
    return _shared.frames_from_blobs(rows, channels, t0_ns, t1_ns, f"{session_id}/{stream_id}")


def read_window(
    conn: sqlite3.Connection,
    session_id: SessionId,
    t0_ns: int,
    t1_ns: int,
    streams: list[str] | None,
) -> dict[StreamId, FrameBatch]:
    """Every (or each named) stream's frames in [t0_ns, t1_ns]: one snapshot, two queries."""
    with read(conn):
        known = dict(
            conn.execute("SELECT stream, channels FROM streams WHERE session = ?", (session_id,))
        )
        if not known:
            _require_session(conn, session_id)
        for stream in streams or ():
            if stream not in known:
                raise _shared.unknown_stream(session_id, StreamId(stream))
        rows = conn.execute(
            """SELECT stream, first_seq, blob FROM chunks WHERE session = ?
               AND t1_ns >= ? AND t0_ns <= ? ORDER BY stream, first_seq""",
            (session_id, _clamp(t0_ns, _shared.T_MIN), _clamp(t1_ns, _shared.T_MAX)),
        ).fetchall()
    wanted = sorted(known) if streams is None else streams
    blobs: dict[str, list[tuple[int, bytes]]] = {stream: [] for stream in wanted}
    for stream, first_seq, blob in rows:
        if stream in blobs:
            blobs[stream].append((first_seq, blob))
    return {
        StreamId(stream): _shared.frames_from_blobs(
            found,
            ChannelSet(_shared.channels_from_json(known[stream])),
            t0_ns,
            t1_ns,
            f"{session_id}/{stream}",
        )
        for stream, found in blobs.items()
    }


def chunk_index(conn: sqlite3.Connection, session_id: SessionId) -> dict[str, list[ChunkSpan]]:
    """The session's chunk index (stream → spans in seq order), never touching a blob."""
    holes = msgspec.json.Decoder(tuple[Hole, ...])
    out: dict[str, list[ChunkSpan]] = {}
    with read(conn):
        _require_session(conn, session_id)
        rows = conn.execute(
            """SELECT stream, first_seq, last_seq, n, t0_ns, t1_ns, period_ns, holes
               FROM chunks WHERE session = ? ORDER BY stream, first_seq""",
            (session_id,),
        ).fetchall()
    for stream, first, last, n, t0, t1, period, gaps in rows:
        spans = out.setdefault(stream, [])
        found = () if gaps == "[]" else holes.decode(gaps)
        spans.append(ChunkSpan(first, last, n, t0, t1, period, found))
    return out
