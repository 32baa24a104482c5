"""PostgresStore: the Store on PostgreSQL through asyncpg (``postgresql://``), for leagues and
for several servers sharing one database.

URL: ``postgresql://user[:password]@host[:port]/database?schema=pitwire&pool_size=10``
(``postgres://`` too). pitwire options: ``schema`` (default ``public``; created if missing),
``pool_size`` (most connections, default 10), ``connect_timeout``, ``command_timeout`` and
``acquire_timeout`` [s]. libpq options asyncpg understands pass through (``sslmode``,
``sslrootcert``, ``application_name`` (default ``pitwire``), ``host`` for a socket
directory, ...); any other option is a StoreError naming it. Errors never show the password.

Tables (all in the schema; plain SQL reads them, see docs/storage.md)::

    pitwire_schema (version, applied_at, applied_by)            applied migrations
    sessions (id, track, source, started_ns, started_at)        started_at: timestamptz
    streams  (session, stream, driver, car, channels jsonb,     channels: [Channel, ...]
              colour)
    laps     (session, stream, lap, t0_ns, t1_ns, frames, lap_time, sectors jsonb,
              compound, stint, tyre_life, pit_in, pit_out)
    chunks   (session, stream, first_seq, last_seq, t0_ns, t1_ns, n, codec smallint,
              stats jsonb, period_ns, holes jsonb, blob bytea)   unique (session, stream,
                                                                 first_seq)

Times are int8 nanoseconds since the Unix epoch, ``lap_time`` seconds; ``blob`` is the
pitwire chunk codec (``pitwire.codec.chunk``), ``stats`` the per-channel [lo, hi, NaN count].
The chunks primary key includes last_seq, n, t0_ns and t1_ns, so opening a session and the
seq arithmetic of writes can be answered from the index alone; blobs live out of line
(TOAST), so even a scan of the table never reads them.

Migrations: ``pitwire_schema`` holds one row per applied entry of
``_postgres_schema.MIGRATIONS``; the first call applies the missing ones, each in its own
transaction under a transaction-level advisory lock on the schema, so servers starting at
once apply each once. A schema newer than this pitwire raises StoreError ("upgrade pitwire").

Writes: ``write_chunk`` runs one transaction on one pooled connection: it locks the stream's
row (``SELECT ... FOR NO KEY UPDATE``, so writers of one stream queue while writers of other
streams run in parallel), finds the stored spans that may overlap the batch (two seeks in the
primary key), encodes only the missing pieces and inserts them with one binary COPY.
``write_chunks`` does the same for several (stream, first seq, batch) items in one
transaction, with the same number of round trips and one commit: use it to store many
streams at once. Exactly-once by (session, stream, seq), as in every store; durable when it
returns (the commit is synchronous unless the server is configured otherwise). Large writes
encode, and large reads decode, on a worker thread, so the event loop is not held up.

Failures: a refused or lost connection, a server shutting down, a timeout (connecting,
waiting ``acquire_timeout`` for a pooled connection, or ``command_timeout`` for a reply) and
any database error raise StoreUnavailable naming host:port/database and the cause; the
transaction of the failed call is rolled back by the server. If the connection drops while a
commit is in flight, the write may or may not be stored; retrying is safe (exactly-once).
Broken connections are discarded by the pool and replaced on the next call, so the store
recovers by itself when the database is back. ``open`` connects and migrates; if the
database is unreachable it raises StoreUnavailable and the store stays open: the next call
(or ``open`` again) retries.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

import asyncpg

from pitwire.analysis.completeness import ChunkSpan
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.store import _postgres_schema as schema_sql
from pitwire.store import _postgres_sql as sql
from pitwire.store import _shared
from pitwire.store.base import OpensAsContext, SessionSummary, StoreError, StoreUnavailable

log = logging.getLogger("pitwire.store.postgres")

T = TypeVar("T")

SCHEMES = ("postgresql", "postgres")
OPTIONS = ("schema", "pool_size", "connect_timeout", "command_timeout", "acquire_timeout")
"""URL options of pitwire's own."""
LIBPQ_OPTIONS = (
    "host",
    "port",
    "user",
    "password",
    "passfile",
    "dbname",
    "database",
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "sslpassword",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "target_session_attrs",
    "application_name",
    "krbsrvname",
    "gsslib",
)
"""URL options handed to asyncpg as they are."""

_FAILURES = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)
"""What asyncpg raises when the database is unreachable, goes away or refuses a statement."""

_REJECTED = (asyncpg.exceptions.DataError, asyncpg.exceptions.IntegrityConstraintViolationError)
"""Failures of the record itself, not of the database: retrying cannot help, so they raise
StoreError (the server logs and drops such a chunk instead of retrying it for ever and
holding every stream behind it). Everything else in _FAILURES may pass (an outage, a
restart, a schema an operator is repairing) and raises StoreUnavailable."""

_DECODE_OFF_LOOP = 1 << 18
"""Reads whose blobs add up to more bytes than this decode on a worker thread [bytes]:
decoding runs at about 50-70 MB/s, so this is ~4 ms of event loop time (a 3 MB read held
the loop ~40 ms when decoded on it, under 10 ms off it: test_large_chunk_round_trips)."""


class PostgresStore(OpensAsContext):
    """A Store in a PostgreSQL schema.

    dsn: a ``postgresql://`` URL with only libpq options (``from_url`` takes pitwire's too)
    schema: the schema holding the tables; created if missing
    pool_size: most connections open at once
    connect_timeout: how long to wait for a new connection [s]
    command_timeout: how long to wait for one statement's reply [s]
    acquire_timeout: how long a call waits for a free pooled connection [s]
    create: create the schema and tables (and apply migrations) when missing; False only
        reads what is there (StoreError when pitwire's tables are not)
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        pool_size: int = 10,
        connect_timeout: float = 10.0,
        command_timeout: float = 60.0,
        acquire_timeout: float = 30.0,
        create: bool = True,
    ) -> None:
        if not schema or "\0" in schema or len(schema.encode()) > 63:
            raise StoreError(f"schema must be 1-63 bytes without NUL, not {schema!r}")
        if pool_size < 1:
            raise StoreError(f"pool_size must be at least 1, not {pool_size}")
        for name, value in [
            ("connect_timeout", connect_timeout),
            ("command_timeout", command_timeout),
            ("acquire_timeout", acquire_timeout),
        ]:
            if not value > 0:
                raise StoreError(f"{name} must be a positive number of seconds, not {value}")
        self._dsn = dsn
        self._password, self._shown, self.where = _describe(dsn)
        self.schema = schema
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.acquire_timeout = acquire_timeout
        self.create = create
        self._s = schema_sql.quote(schema)
        named = "application_name" in parse_qs(urlsplit(dsn).query)
        self._settings = None if named else {"application_name": "pitwire"}  # pg_stat_activity
        self._pool: Any = None  # asyncpg.Pool, created by the first call that needs it
        self._ready = False  # migrations checked on this pool
        self._opened = False
        self._init = asyncio.Lock()
        self._calls = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._channels: sql.ChannelCache = {}
        self._high: dict[tuple[str, str], tuple[int, int]] = {}  # (start, contiguous high seq)

    def __repr__(self) -> str:
        return f"PostgresStore({self._shown!r}, schema={self.schema!r})"

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """Parse ``postgresql://user@host:port/db?schema=NAME&pool_size=N&...``; StoreError
        when malformed or with an option neither pitwire nor libpq knows."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            shown = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
            raise StoreError(f"not a postgresql URL ({shown}); use postgresql://user@host/db")
        password, shown, _ = _describe(url)
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
            if "," not in parts.netloc:
                _ = parts.port  # ValueError when not a number
        except ValueError as exc:
            raise StoreError(f"postgresql URL {shown!r}: {_scrub(str(exc), password)}") from None
        unknown = set(query) - set(OPTIONS) - set(LIBPQ_OPTIONS)
        if unknown:
            raise StoreError(
                f"postgresql URL {shown!r}: unknown options {sorted(unknown)} "
                f"(pitwire: {', '.join(OPTIONS)}; libpq: {', '.join(LIBPQ_OPTIONS)})"
            )
        kwargs: dict[str, Any] = {}
        if "schema" in query:
            kwargs["schema"] = query["schema"][-1]
        for name, kind, unit in [
            ("pool_size", int, "a whole number"),
            ("connect_timeout", float, "seconds"),
            ("command_timeout", float, "seconds"),
            ("acquire_timeout", float, "seconds"),
        ]:
            if name in query:
                try:
                    kwargs[name] = kind(query[name][-1])
                except ValueError:
                    raise StoreError(f"postgresql URL {shown!r}: {name} must be {unit}") from None
        libpq = [(k, v) for k, vs in query.items() if k in LIBPQ_OPTIONS for v in vs[-1:]]
        dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(libpq), ""))
        return cls(dsn, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create the schema if missing and migrate it; StoreUnavailable when the
        database is unreachable (the store stays open and the next call retries)."""
        self._opened = True
        await self._run(_nothing)

    async def close(self) -> None:
        """Let calls already running finish, then close every connection."""
        if not self._opened:
            return
        self._opened = False
        await self._idle.wait()
        pool, self._pool, self._ready = self._pool, None, False
        self._channels.clear()
        self._high.clear()
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=self.command_timeout)
            except _FAILURES as exc:  # the database went away: nothing left to close nicely
                log.warning("postgresql %s: closing: %s", self.where, self._unavailable(exc))
                pool.terminate()
            except BaseException:
                pool.terminate()
                raise

    async def _connected(self) -> Any:
        """The pool, migrations checked; created on first use and after a failed start."""
        if self._ready:
            return self._pool
        async with self._init:
            if self._pool is None:
                # min_size=0: nothing connects here, so a database that is down does not
                # stop the pool from being made; connections come (back) on demand.
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=0,
                    max_size=self.pool_size,
                    timeout=self.connect_timeout,
                    command_timeout=self.command_timeout,
                    server_settings=self._settings,
                )
            if not self._ready:
                async with self._pool.acquire(timeout=self.acquire_timeout) as conn:
                    if self.create:
                        await schema_sql.migrate(conn, self.schema, self.where)
                    else:
                        await schema_sql.require_current(conn, self.schema, self.where)
                self._ready = True
        return self._pool

    async def _run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``fn(connection, *args)`` on a pooled connection; database failures become
        StoreUnavailable."""
        if not self._opened:
            raise StoreError(f"{self!r} is not open (call open() first)")
        self._calls += 1
        self._idle.clear()
        try:
            pool = await self._connected()
            async with pool.acquire(timeout=self.acquire_timeout) as conn:
                return await fn(conn, *args)
        except _REJECTED as exc:
            message = _scrub(f"{type(exc).__name__}: {exc}", self._password)
            raise StoreError(f"postgresql {self.where}: {message}") from exc
        except _FAILURES as exc:
            raise self._unavailable(exc) from exc
        finally:
            self._calls -= 1
            if not self._calls:
                self._idle.set()

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        # Name the first failure: a lost connection also fails the rollback that follows.
        while isinstance(exc.__context__, _FAILURES):
            exc = exc.__context__
        if isinstance(exc, TimeoutError):
            cause = (
                f"timed out (connect_timeout {self.connect_timeout:g} s, acquire_timeout "
                f"{self.acquire_timeout:g} s for one of {self.pool_size} connections, "
                f"command_timeout {self.command_timeout:g} s)"
            )
        else:
            cause = f"{type(exc).__name__}: {exc}"
        return StoreUnavailable(f"postgresql {self.where}: {_scrub(cause, self._password)}")

    # -- writes ---------------------------------------------------------------------------

    async def put_session(self, info: SessionInfo) -> None:
        await self._run(sql.put_session, self._s, info)

    async def put_stream(self, session_id: SessionId, info: StreamInfo) -> None:
        _shared.channel_set(info)  # duplicate channel names raise ValueError here
        await self._run(sql.put_stream, self._s, session_id, info)

    async def write_chunk(
        self, *, session_id: SessionId, stream_id: StreamId, first_seq: int, batch: FrameBatch
    ) -> int:
        items = [(stream_id, first_seq, batch)]
        return (await self.write_chunks(session_id, items))[0]

    async def write_chunks(
        self, session_id: SessionId, items: Sequence[tuple[StreamId, int, FrameBatch]]
    ) -> list[int]:
        """Several ``write_chunk`` calls of one session as one transaction: items are
        (stream, first seq, batch), in any order, several per stream allowed; all are stored
        or none. Returns the frames newly stored per item. One lock, span and COPY round trip
        and one commit for them all: faster than one ``write_chunk`` per item."""
        if not items:
            return []
        return await self._run(sql.write_chunks, self.schema, self._channels, session_id, items)

    async def put_lap(self, session_id: SessionId, lap: LapInfo) -> None:
        await self._run(sql.put_lap, self._s, session_id, lap)

    # -- reads ----------------------------------------------------------------------------

    async def list_sessions(self) -> list[SessionSummary]:
        return await self._run(sql.summaries, self._s, None)

    async def get_session(self, session_id: SessionId) -> SessionSummary:
        return (await self._run(sql.summaries, self._s, session_id))[0]

    async def read_frames(
        self,
        *,
        session_id: SessionId,
        stream_id: StreamId,
        t0_ns: int | None = None,
        t1_ns: int | None = None,
    ) -> FrameBatch:
        channels, rows = await self._run(
            sql.frame_blobs, self._s, self._channels, session_id, stream_id, t0_ns, t1_ns
        )

        where = f"{session_id}/{stream_id}"

        def decode() -> FrameBatch:
            return _shared.frames_from_blobs(rows, channels, t0_ns, t1_ns, where)

        if sum(len(blob) for _, blob in rows) > _DECODE_OFF_LOOP:
            return await asyncio.get_running_loop().run_in_executor(None, decode)
        return decode()

    async def read_window(
        self,
        *,
        session_id: SessionId,
        t0_ns: int,
        t1_ns: int,
        streams: Sequence[StreamId] | None = None,
    ) -> dict[StreamId, FrameBatch]:
        wanted = None if streams is None else list(streams)
        found = await self._run(
            sql.window_blobs, self._s, self._channels, session_id, t0_ns, t1_ns, wanted
        )

        def decode() -> dict[StreamId, FrameBatch]:
            return {
                stream: _shared.frames_from_blobs(
                    rows, channels, t0_ns, t1_ns, f"{session_id}/{stream}"
                )
                for stream, (channels, rows) in found.items()
            }

        size = sum(len(blob) for _, rows in found.values() for _, blob in rows)
        if size > _DECODE_OFF_LOOP:
            return await asyncio.get_running_loop().run_in_executor(None, decode)
        return decode()

    async def chunk_index(self, session_id: SessionId) -> dict[str, list[ChunkSpan]]:
        return await self._run(sql.chunk_index, self._s, session_id)

    async def stored_seqs(self, *, session_id: SessionId, stream_id: StreamId) -> int | None:
        key = (session_id, stream_id)
        found = await self._run(
            sql.stored_seqs, self._s, session_id, stream_id, self._high.get(key)
        )
        if found is None:
            return None
        self._high[key] = found
        return found[1]


async def _nothing(conn: Any) -> None:
    """A call that only needs the pool ready (``open``)."""


def _describe(dsn: str) -> tuple[str, str, str]:
    """(password, the URL without it, ``host:port/database``) of a postgresql URL, with
    libpq's environment defaults for what it leaves out."""
    parts = urlsplit(dsn)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    password = unquote(password) or query.get("password", "")
    user = unquote(user) or query.get("user", "")
    hosts = unquote(hostinfo) or query.get("host") or os.environ.get("PGHOST") or "localhost"
    port = query.get("port") or os.environ.get("PGPORT") or "5432"
    if "," not in hosts and not hosts.rpartition("]")[2].count(":") and not hosts.startswith("/"):
        hosts = f"{hosts}:{port}"
    database = (
        unquote(parts.path[1:])
        or query.get("dbname")
        or query.get("database")
        or os.environ.get("PGDATABASE")
        or user
        or os.environ.get("PGUSER")
        or "(default database)"
    )
    safe_query = urlencode([(k, "***" if "password" in k else v) for k, v in query.items()])
    netloc = f"{user}@{hostinfo}" if user else hostinfo
    shown = urlunsplit((parts.scheme, netloc, parts.path, safe_query, ""))
    return password, shown, f"{hosts}/{database}"


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text
