"""SqliteStore: the embedded default store (``sqlite:///path.db``).

Threads: one writer thread (a single-worker executor) owns the write connection, so writes
run one at a time in call order, and chunk encoding happens there too; reads run on a small
pool of reader threads, each with its own read-only connection. The event loop only awaits.
WAL mode lets readers run while the writer commits. If an awaiting task is cancelled, a write
already handed to the writer thread still completes (and is still exactly-once on retry).

Durability: ``journal_mode=WAL`` with ``synchronous=NORMAL`` (the default): a write is
committed to the WAL before its call returns, so it survives a crash or kill of the process;
on power loss or an OS crash the last few commits may roll back (the file is never corrupt).
``synchronous="FULL"`` (``?synchronous=full`` in the URL) fsyncs each commit and survives
power loss too, at the cost of one fsync per write.

Errors: every sqlite error (SQLITE_FULL, SQLITE_BUSY after ``timeout``, SQLITE_READONLY, an
unopenable path, ...) raises StoreUnavailable naming the file and the cause; the failed call's
transaction is rolled back, so the caller may retry. A chunk that fails to decode on read is
skipped with a logged warning.

Schema: ``PRAGMA user_version`` counts the applied entries of ``MIGRATIONS``; ``open`` applies
the missing ones, each in its own transaction. Add a migration by appending to the tuple.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from pitwire.codec import chunk
from pitwire.model.channels import Channel, ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.store import _shared
from pitwire.store.base import SessionSummary, StoreError, StoreUnavailable, StreamSummary

log = logging.getLogger(__name__)
T = TypeVar("T")
Synchronous = Literal["NORMAL", "FULL"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # v1. chunks.blob is the last column so that scans of the other columns never read
        # the blob's overflow pages; chunks_span covers the summary and seq queries.
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
)
"""Schema migrations: entry i takes ``user_version`` i to i + 1."""

_URL_HELP = "use sqlite:///relative/path.db or sqlite:////absolute/path.db"


@contextmanager
def _transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _read(conn: sqlite3.Connection) -> AbstractContextManager[None]:
    """A read transaction: every query inside sees one snapshot."""
    return _transaction(conn, "BEGIN DEFERRED")


class SqliteStore:
    """A Store in one SQLite file.

    path: the database file; its parent directories are created by ``open``
    synchronous: ``NORMAL`` (survives a process crash) or ``FULL`` (survives power loss)
    timeout: how long to wait for another process's lock before StoreUnavailable [s]
    readers: reader threads
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "NORMAL",
        timeout: float = 5.0,
        readers: int = 4,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = Path(path)
        self.synchronous: Synchronous = synchronous
        self.timeout = timeout
        self._n_readers = readers
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._wconn: sqlite3.Connection | None = None
        self._local = threading.local()
        self._rconns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._channels: dict[tuple[str, str], tuple[str, ChannelSet]] = {}  # writer thread only
        self._high: dict[tuple[str, str], tuple[int, int]] = {}  # (start, contiguous high seq)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        """Parse ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``, with
        optional ``?synchronous=normal|full&timeout=<s>``; StoreError when malformed."""
        parts = urlsplit(url)
        if parts.scheme != "sqlite":
            raise StoreError(f"not a sqlite URL: {url!r} ({_URL_HELP})")
        if parts.netloc:
            raise StoreError(f"sqlite URL {url!r} names a host {parts.netloc!r}; {_URL_HELP}")
        path = unquote(parts.path)
        if not path.startswith("/") or len(path) < 2:
            raise StoreError(f"sqlite URL {url!r} has no file path; {_URL_HELP}")
        path = path[1:]
        if path in (":memory:", "/:memory:"):
            raise StoreError(
                "an in-memory sqlite store cannot share data between threads; use memory:// instead"
            )
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError as exc:
            raise StoreError(f"sqlite URL {url!r}: bad query string: {exc}") from exc
        unknown = set(query) - {"synchronous", "timeout"}
        if unknown:
            raise StoreError(
                f"sqlite URL {url!r}: unknown options {sorted(unknown)} "
                "(known: synchronous, timeout)"
            )
        kwargs: dict[str, Any] = {}
        if "synchronous" in query:
            kwargs["synchronous"] = query["synchronous"][-1].upper()
        if "timeout" in query:
            try:
                kwargs["timeout"] = float(query["timeout"][-1])
            except ValueError as exc:
                raise StoreError(f"sqlite URL {url!r}: timeout must be seconds") from exc
        return cls(path, **kwargs)

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the file (and its directories) if needed, switch to WAL, migrate."""
        if self._writer is not None:
            return
        writer = ThreadPoolExecutor(1, thread_name_prefix="pitwire-sqlite-write")
        try:
            await asyncio.get_running_loop().run_in_executor(writer, self._guard, self._open_writer)
        except BaseException:
            writer.shutdown(wait=False)
            raise
        self._writer = writer
        self._readers = ThreadPoolExecutor(
            self._n_readers, thread_name_prefix="pitwire-sqlite-read"
        )

    async def close(self) -> None:
        """Finish queued writes and reads, then close every connection."""
        writer, readers = self._writer, self._readers
        if writer is None or readers is None:
            return
        self._writer = self._readers = None
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(writer, self._guard, self._close_writer)
        finally:
            writer.shutdown(wait=False)
            await loop.run_in_executor(None, functools.partial(readers.shutdown, wait=True))
            with self._lock:
                for conn in self._rconns:
                    conn.close()
                self._rconns.clear()
            self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return conn

    def _open_writer(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"sqlite {self.path}: cannot create directory {self.path.parent}: {exc}"
            ) from exc
        conn = self._connect()
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreUnavailable(f"sqlite {self.path}: cannot use WAL (journal mode {mode})")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._wconn = conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        with _transaction(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"sqlite {self.path}: schema v{version} is newer than this pitwire supports "
                f"(v{len(MIGRATIONS)}); upgrade pitwire"
            )
        for target in range(version + 1, len(MIGRATIONS) + 1):
            with _transaction(conn):
                if conn.execute("PRAGMA user_version").fetchone()[0] >= target:
                    continue  # another process migrated meanwhile
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")

    def _close_writer(self) -> None:
        if self._wconn is not None:
            self._wconn.execute("PRAGMA optimize")
            self._wconn.close()
            self._wconn = None

    def _rconn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._lock:
                self._rconns.append(conn)
        return conn

    def _guard(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            name = getattr(exc, "sqlite_errorname", type(exc).__name__)
            raise StoreUnavailable(f"sqlite {self.path}: {name}: {exc}") from exc

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        if self._writer is None:
            raise StoreError(f"{self!r} is not open (call open() first)")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._guard, self._in_writer, fn, *args)

    def _in_writer(self, fn: Callable[..., T], *args: Any) -> T:
        if self._wconn is None:
            raise StoreError(f"{self!r} is closed")
        return fn(self._wconn, *args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._readers is None:
            raise StoreError(f"{self!r} is not open (call open() first)")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._guard, self._in_reader, fn, *args)

    def _in_reader(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self._rconn(), *args)

    # -- writes ---------------------------------------------------------------------------

    async def put_session(self, info: SessionInfo) -> None:
        await self._write(_put_session, info)

    async def put_stream(self, session_id: SessionId, info: StreamInfo) -> None:
        _shared.channel_set(info)  # duplicate channel names raise ValueError here
        await self._write(_put_stream, session_id, info)

    async def write_chunk(
        self, *, session_id: SessionId, stream_id: StreamId, first_seq: int, batch: FrameBatch
    ) -> int:
        return await self._write(self._write_chunk, session_id, stream_id, first_seq, batch)

    async def put_lap(self, session_id: SessionId, lap: LapInfo) -> None:
        await self._write(_put_lap, session_id, lap)

    def _write_chunk(
        self,
        conn: sqlite3.Connection,
        session_id: SessionId,
        stream_id: StreamId,
        first_seq: int,
        batch: FrameBatch,
    ) -> int:
        with _transaction(conn):
            batch = _shared.check_write(
                session_id=session_id,
                stream_id=stream_id,
                first_seq=first_seq,
                batch=batch,
                channels=self._stream_channels(conn, session_id, stream_id),
            )
            if batch.n == 0:
                return 0
            last_seq = first_seq + batch.n - 1
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
                blob = chunk.encode(piece)
                stats = chunk.stats(piece)
                conn.execute(
                    """INSERT INTO chunks (session, stream, first_seq, last_seq, t0_ns, t1_ns,
                       n, codec, stats, blob) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
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
                        blob,
                    ),
                )
                stored += piece.n
            return stored

    def _stream_channels(
        self, conn: sqlite3.Connection, session_id: SessionId, stream_id: StreamId
    ) -> ChannelSet:
        text = _stream_row(conn, session_id, stream_id)[2]
        cached = self._channels.get((session_id, stream_id))
        if cached is not None and cached[0] == text:
            return cached[1]
        channels = ChannelSet(_shared.decode_json(text, list[Channel]))
        self._channels[(session_id, stream_id)] = (text, channels)
        return channels

    # -- reads ----------------------------------------------------------------------------

    async def list_sessions(self) -> list[SessionSummary]:
        return await self._read(_summaries, None)

    async def get_session(self, session_id: SessionId) -> SessionSummary:
        return (await self._read(_summaries, session_id))[0]

    async def read_frames(
        self,
        *,
        session_id: SessionId,
        stream_id: StreamId,
        t0_ns: int | None = None,
        t1_ns: int | None = None,
    ) -> FrameBatch:
        return await self._read(_read_frames, session_id, stream_id, t0_ns, t1_ns)

    async def stored_seqs(self, *, session_id: SessionId, stream_id: StreamId) -> int | None:
        return await self._read(self._stored_seqs, session_id, stream_id)

    def _stored_seqs(
        self, conn: sqlite3.Connection, session_id: SessionId, stream_id: StreamId
    ) -> int | None:
        # Chunks are never removed, so a known contiguous run stays valid while the stream's
        # first stored seq is unchanged: walk on from the cached high-water mark.
        with _read(conn):
            _stream_row(conn, session_id, stream_id)
            start = conn.execute(
                "SELECT MIN(first_seq) FROM chunks WHERE session = ? AND stream = ?",
                (session_id, stream_id),
            ).fetchone()[0]
            if start is None:
                return None
            with self._lock:
                cached = self._high.get((session_id, stream_id))
            seed = cached[1] if cached is not None and cached[0] == start else start - 1
            high: int = conn.execute(
                """WITH RECURSIVE run (last) AS (
                     SELECT ?3 UNION ALL
                     SELECT c.last_seq FROM chunks c JOIN run ON c.first_seq = run.last + 1
                     WHERE c.session = ?1 AND c.stream = ?2)
                   SELECT MAX(last) FROM run""",
                (session_id, stream_id, seed),
            ).fetchone()[0]
        with self._lock:
            self._high[(session_id, stream_id)] = (start, high)
        return high


# -- statements run on the writer or a reader thread ---------------------------------------


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


def _put_session(conn: sqlite3.Connection, info: SessionInfo) -> None:
    conn.execute(
        """INSERT INTO sessions (id, track, source, started_ns) VALUES (?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET track = excluded.track, source = excluded.source""",
        (info.session_id, info.track, info.source, info.started_ns),
    )


def _put_stream(conn: sqlite3.Connection, session_id: SessionId, info: StreamInfo) -> None:
    with _transaction(conn):
        _require_session(conn, session_id)
        conn.execute(
            """INSERT INTO streams (session, stream, driver, car, channels) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (session, stream) DO UPDATE SET driver = excluded.driver,
               car = excluded.car, channels = excluded.channels""",
            (session_id, info.stream_id, info.driver, info.car, _shared.encode_json(info.channels)),
        )


def _put_lap(conn: sqlite3.Connection, session_id: SessionId, lap: LapInfo) -> None:
    with _transaction(conn):
        _stream_row(conn, session_id, StreamId(lap.stream_id))
        conn.execute(
            """INSERT OR REPLACE INTO laps (session, stream, lap, t0_ns, t1_ns, frames, lap_time)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (session_id, lap.stream_id, lap.lap, lap.t0_ns, lap.t1_ns, lap.frames, lap.lap_time),
        )


def _summaries(conn: sqlite3.Connection, session_id: SessionId | None) -> list[SessionSummary]:
    """Summaries of one session (UnknownSession when missing) or, for None, of all, newest
    first; four index reads in one snapshot, never touching a blob."""
    args: tuple[str, ...] = () if session_id is None else (session_id,)
    where = "" if session_id is None else "WHERE session = ?"
    with _read(conn):
        sessions = conn.execute(
            "SELECT id, track, source, started_ns FROM sessions "
            f"{'' if session_id is None else 'WHERE id = ?'} ORDER BY started_ns DESC, id",
            args,
        ).fetchall()
        if session_id is not None and not sessions:
            raise _shared.unknown_session(session_id)
        streams = conn.execute(
            f"SELECT session, stream, driver, car, channels FROM streams {where} "
            "ORDER BY session, stream",
            args,
        ).fetchall()
        figures = conn.execute(
            f"""SELECT session, stream, SUM(n), MIN(first_seq), MAX(last_seq), MIN(t0_ns),
                MAX(t1_ns) FROM chunks {where} GROUP BY session, stream""",
            args,
        ).fetchall()
        laps = conn.execute(
            f"SELECT session, stream, lap, t0_ns, t1_ns, frames, lap_time FROM laps {where} "
            "ORDER BY session, stream, lap",
            args,
        ).fetchall()
    by_stream = {(row[0], row[1]): row[2:] for row in figures}
    out = {
        row[0]: SessionSummary(
            info=SessionInfo(session_id=row[0], track=row[1], source=row[2], started_ns=row[3]),
            streams=[],
            laps=[],
        )
        for row in sessions
    }
    for session, stream, driver, car, channels in streams:
        info = StreamInfo(
            stream_id=stream,
            driver=driver,
            car=car,
            channels=_shared.decode_json(channels, list[Channel]),
        )
        summary = StreamSummary(info=info)
        if (session, stream) in by_stream:
            frames, first, last, t0, t1 = by_stream[(session, stream)]
            summary = StreamSummary(
                info=info, frames=frames, first_seq=first, last_seq=last, t0_ns=t0, t1_ns=t1
            )
        out[session].streams.append(summary)
    for session, stream, lap, t0, t1, frames, lap_time in laps:
        out[session].laps.append(
            LapInfo(stream_id=stream, lap=lap, t0_ns=t0, t1_ns=t1, frames=frames, lap_time=lap_time)
        )
    return list(out.values())


def _clamp(t_ns: int | None, default: int) -> int:
    return default if t_ns is None else min(max(t_ns, _shared.T_MIN), _shared.T_MAX)


def _read_frames(
    conn: sqlite3.Connection,
    session_id: SessionId,
    stream_id: StreamId,
    t0_ns: int | None,
    t1_ns: int | None,
) -> FrameBatch:
    with _read(conn):
        channels = ChannelSet(
            _shared.decode_json(_stream_row(conn, session_id, stream_id)[2], list[Channel])
        )
        rows = conn.execute(
            """SELECT first_seq, blob FROM chunks WHERE session = ? AND stream = ?
               AND t1_ns >= ? AND t0_ns <= ? ORDER BY first_seq""",
            (session_id, stream_id, _clamp(t0_ns, _shared.T_MIN), _clamp(t1_ns, _shared.T_MAX)),
        ).fetchall()
    pieces: list[FrameBatch] = []
    for first_seq, blob in rows:
        try:
            batch = chunk.decode(blob)
        except chunk.CodecError as exc:
            log.warning(
                "%s/%s: skipping chunk at seq %d: %s", session_id, stream_id, first_seq, exc
            )
            continue
        pieces.append(_shared.in_time(_shared.conform(batch, channels), t0_ns, t1_ns))
    return _shared.join(pieces, channels)
