"""SqliteStore: the embedded default store (``sqlite:///path.db``).

Threads: one writer thread (a single-worker executor) owns the write connection, so writes
run one at a time in call order, and chunk encoding happens there too; reads run on a small
pool of reader threads, each with its own read-only connection. The event loop only awaits.
WAL mode lets readers run while the writer commits. If the task awaiting a write is
cancelled, the write may or may not have been stored; retrying it is safe (exactly-once).

Durability: ``journal_mode=WAL`` with ``synchronous=NORMAL`` (the default): a write is
committed to the WAL before its call returns, so it survives a crash or kill of the process;
on power loss or an OS crash the last few commits may roll back (the file is never corrupt).
``synchronous="FULL"`` (``?synchronous=full`` in the URL) fsyncs each commit and survives
power loss too, at the cost of one fsync per write.

Errors: every sqlite error (SQLITE_FULL, SQLITE_BUSY after ``timeout``, SQLITE_READONLY, an
unopenable path, ...) raises StoreUnavailable naming the file and the cause; the failed call's
transaction is rolled back, so the caller may retry. A chunk that fails to decode on read is
skipped with a logged warning.

Schema: ``PRAGMA user_version`` counts the applied entries of ``_sqlite_sql.MIGRATIONS``;
``open`` applies the missing ones, each in its own transaction.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from pitwire.analysis.completeness import ChunkSpan
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.store import _shared
from pitwire.store import _sqlite_sql as sql
from pitwire.store.base import OpensAsContext, SessionSummary, StoreError, StoreUnavailable

T = TypeVar("T")
Synchronous = Literal["NORMAL", "FULL"]

_URL_HELP = "use sqlite:///relative/path.db or sqlite:////absolute/path.db"


class SqliteStore(OpensAsContext):
    """A Store in one SQLite file.

    path: the database file; its parent directories are created by ``open``
    synchronous: ``NORMAL`` (survives a process crash) or ``FULL`` (survives power loss)
    timeout: how long to wait for another process's lock before StoreUnavailable [s]
    readers: reader threads
    create: create the file (and its folders) when missing; False: StoreError instead
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "NORMAL",
        timeout: float = 5.0,
        readers: int = 4,
        create: bool = True,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = Path(path)
        self.synchronous: Synchronous = synchronous
        self.timeout = timeout
        self.create = create
        self._n_readers = readers
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._wconn: sqlite3.Connection | None = None
        self._local = threading.local()
        self._rconns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._channels: sql.ChannelCache = {}  # used on the writer thread only
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
            self._channels.clear()
            self._high.clear()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        return conn

    def _open_writer(self) -> None:
        if not self.create and not self.path.is_file():
            raise StoreError(f"sqlite: no database at {self.path}")
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
            sql.migrate(conn, str(self.path))
        except BaseException:
            conn.close()
            raise
        self._wconn = conn

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
        await self._write(sql.put_session, info)

    async def put_stream(self, session_id: SessionId, info: StreamInfo) -> None:
        _shared.channel_set(info)  # duplicate channel names raise ValueError here
        await self._write(sql.put_stream, session_id, info)

    async def write_chunk(
        self, *, session_id: SessionId, stream_id: StreamId, first_seq: int, batch: FrameBatch
    ) -> int:
        return await self._write(
            sql.write_chunk, self._channels, session_id, stream_id, first_seq, batch
        )

    async def put_lap(self, session_id: SessionId, lap: LapInfo) -> None:
        await self._write(sql.put_lap, session_id, lap)

    # -- reads ----------------------------------------------------------------------------

    async def list_sessions(self) -> list[SessionSummary]:
        return await self._read(sql.summaries, None)

    async def get_session(self, session_id: SessionId) -> SessionSummary:
        return (await self._read(sql.summaries, session_id))[0]

    async def read_frames(
        self,
        *,
        session_id: SessionId,
        stream_id: StreamId,
        t0_ns: int | None = None,
        t1_ns: int | None = None,
    ) -> FrameBatch:
        return await self._read(sql.read_frames, session_id, stream_id, t0_ns, t1_ns)

    async def read_window(
        self,
        *,
        session_id: SessionId,
        t0_ns: int,
        t1_ns: int,
        streams: Sequence[StreamId] | None = None,
    ) -> dict[StreamId, FrameBatch]:
        wanted = None if streams is None else list(streams)
        return await self._read(sql.read_window, session_id, t0_ns, t1_ns, wanted)

    async def chunk_index(self, session_id: SessionId) -> dict[str, list[ChunkSpan]]:
        return await self._read(sql.chunk_index, session_id)

    async def stored_seqs(self, *, session_id: SessionId, stream_id: StreamId) -> int | None:
        key = (session_id, stream_id)
        with self._lock:
            hint = self._high.get(key)
        found = await self._read(sql.stored_seqs, session_id, stream_id, hint)
        if found is None:
            return None
        with self._lock:
            self._high[key] = found
        return found[1]
