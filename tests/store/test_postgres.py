"""PostgresStore behaviour beyond the contract: URLs, migrations, plain SQL, COPY, outages."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgspec
import numpy as np
import pytest

from pitwire.codec import chunk
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.store import _postgres_schema, _postgres_sql, _shared
from pitwire.store.base import StoreError, StoreUnavailable
from pitwire.store.postgres import PostgresStore
from pwrgen import same_at_resolution
from support import TcpProxy

S = SessionId("s1")
CAR = StreamId("car-1")


async def setup(store: PostgresStore, frames, *streams: str) -> None:
    await store.put_session(SessionInfo(session_id=S, track="monza", started_ns=frames.T0))
    for stream in streams or (CAR,):
        await store.put_stream(
            S, StreamInfo(stream_id=stream, driver="X", channels=list(frames.channels.values()))
        )


async def write(store: PostgresStore, first: int, batch, stream: str = CAR) -> int:
    return await store.write_chunk(
        session_id=S, stream_id=StreamId(stream), first_seq=first, batch=batch
    )


async def high(store: PostgresStore, stream: str = CAR) -> int | None:
    return await store.stored_seqs(session_id=S, stream_id=StreamId(stream))


@contextlib.asynccontextmanager
async def opened(url: str, **kw: Any) -> AsyncIterator[PostgresStore]:
    store = PostgresStore.from_url(url)
    for name, value in kw.items():
        setattr(store, name, value)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def admin(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to ``url``'s database, outside any store."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        yield conn
    finally:
        await conn.close()


def via(proxy: TcpProxy, base: str, schema: str, options: str = "") -> str:
    """``base``'s database through ``proxy``, in ``schema``."""
    parts = urlsplit(base)
    user = f"{parts.username}@" if parts.username else ""
    return f"postgresql://{user}127.0.0.1:{proxy.port}{parts.path}?schema={schema}{options}"


def proxy_to(base: str) -> TcpProxy:
    """A TcpProxy to ``base``'s server."""
    parts = urlsplit(base)
    return TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)


# -- URLs ---------------------------------------------------------------------------------


def test_from_url_options() -> None:
    """pitwire's options are parsed; libpq's stay in the DSN; postgres:// works too."""
    store = PostgresStore.from_url(
        "postgres://pit@db:6543/league?schema=my%20schema&pool_size=3&connect_timeout=1.5"
        "&command_timeout=9&acquire_timeout=2&sslmode=disable&application_name=x"
    )
    assert store.schema == "my schema"
    assert (store.pool_size, store.connect_timeout) == (3, 1.5)
    assert (store.command_timeout, store.acquire_timeout) == (9, 2)
    assert store.where == "db:6543/league"
    assert store._dsn == "postgres://pit@db:6543/league?sslmode=disable&application_name=x"
    default = PostgresStore.from_url("postgresql://pit@db/league")
    assert (default.schema, default.pool_size, default.where) == ("public", 10, "db:5432/league")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:hunter2@h/db?schema=x&colour=red", r"unknown options \['colour'\]"),
        ("postgresql://u:hunter2@h/db?pool_size=many", "pool_size must be a whole number"),
        ("postgresql://u:hunter2@h/db?pool_size=0", "pool_size must be at least 1"),
        ("postgresql://u:hunter2@h/db?command_timeout=soon", "command_timeout must be seconds"),
        ("postgresql://u:hunter2@h/db?acquire_timeout=-1", "acquire_timeout must be a positive"),
        ("postgresql://u:hunter2@h:port/db", "Port could not be cast"),
        ("postgresql://u:hunter2@h/db?schema=", "schema must be 1-63 bytes"),
        ("postgresql://u:hunter2@h/db?schema=" + "x" * 64, "schema must be 1-63 bytes"),
        ("postgresql://u@h/db?password=hunter2&x=1", r"unknown options \['x'\]"),
        ("mysql://u:hunter2@h/db", "not a postgresql URL"),
    ],
)
def test_from_url_errors(url: str, message: str) -> None:
    """Malformed URLs raise StoreError saying what is wrong, never echoing the password."""
    with pytest.raises(StoreError, match=message) as info:
        PostgresStore.from_url(url)
    assert "hunter2" not in str(info.value)


def test_password_is_never_shown() -> None:
    """repr and the error location hide a password given in the URL or as an option."""
    for url in ["postgresql://u:hunter2@h/db", "postgresql://u@h/db?password=hunter2"]:
        store = PostgresStore.from_url(url)
        assert "hunter2" not in repr(store)
        assert store.where == "h:5432/db"


# -- schema and migrations ----------------------------------------------------------------


async def test_schema_is_created_with_the_tables(pg_base: str, pg_url: str, pg_schema: str) -> None:
    """open creates the schema, the four tables and the version table at the latest version."""
    async with opened(pg_url), admin(pg_base) as conn:
        tables = {
            r[0]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                pg_schema,
            )
        }
        versions = await conn.fetch(f'SELECT version FROM "{pg_schema}".pitwire_schema')
    assert tables == {"pitwire_schema", "sessions", "streams", "laps", "chunks"}
    assert [r[0] for r in versions] == list(range(1, len(_postgres_schema.MIGRATIONS) + 1))


async def test_migrations_are_idempotent(pg_base: str, pg_url: str, pg_schema: str, frames) -> None:
    """Opening again migrates nothing and keeps the data."""
    async with opened(pg_url) as store:
        await setup(store, frames)
        await write(store, 0, frames.batch(0, 10))
    async with opened(pg_url) as store:
        assert await high(store) == 9
    async with admin(pg_base) as conn:
        count = await conn.fetchval(f'SELECT count(*) FROM "{pg_schema}".pitwire_schema')
    assert count == len(_postgres_schema.MIGRATIONS)


async def test_concurrent_first_opens_migrate_once(
    pg_base: str, pg_url: str, pg_schema: str
) -> None:
    """Eight stores opening a missing schema at once all succeed; each migration runs once."""
    stores = [PostgresStore.from_url(pg_url) for _ in range(8)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        assert all([await s.list_sessions() == [] for s in stores])
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    async with admin(pg_base) as conn:
        count = await conn.fetchval(f'SELECT count(*) FROM "{pg_schema}".pitwire_schema')
    assert count == len(_postgres_schema.MIGRATIONS)


async def test_v1_schema_upgrades_in_place(
    pg_base: str, pg_url: str, pg_schema: str, frames
) -> None:
    """A schema at v1 (built from the v1 DDL) migrates to the latest version keeping its
    sessions, streams, laps and chunks; the new lap/stream columns read as defaults."""
    s = f'"{pg_schema}"'
    batch = frames.batch(0, 50)
    record = _postgres_sql.chunk_record(S, CAR, 0, batch, frames.channels)
    async with admin(pg_base) as conn:
        await conn.execute(f"CREATE SCHEMA {s}")
        await conn.execute(
            f"""CREATE TABLE {s}.pitwire_schema (version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL)"""
        )
        for statement in _postgres_schema.MIGRATIONS[0]:
            await conn.execute(statement.format(s=s))
        await conn.execute(f"INSERT INTO {s}.pitwire_schema VALUES (1, now(), 'pitwire old')")
        await conn.execute(f"INSERT INTO {s}.sessions VALUES ('s1', 'monza', 'sim', $1)", frames.T0)
        channels = _shared.encode_json(list(frames.channels.values()))
        await conn.execute(
            f"INSERT INTO {s}.streams VALUES ('s1', 'car-1', 'Ann', 'GT3', $1)", channels
        )
        await conn.execute(f"INSERT INTO {s}.laps VALUES ('s1', 'car-1', 1, 5, 9, 40, 81.5)")
        await conn.copy_records_to_table(
            "chunks", schema_name=pg_schema, columns=_postgres_sql.CHUNK_COLUMNS, records=[record]
        )
    async with opened(pg_url) as store:
        got = await store.get_session(S)
        out = await store.read_frames(session_id=S, stream_id=CAR)
        assert await write(store, 0, frames.batch(0, 60)) == 10
    async with admin(pg_base) as conn:
        versions = await conn.fetch(f"SELECT version FROM {s}.pitwire_schema ORDER BY version")
    assert [r[0] for r in versions] == list(range(1, len(_postgres_schema.MIGRATIONS) + 1))
    assert got.info == SessionInfo(session_id=S, track="monza", source="sim", started_ns=frames.T0)
    assert [(x.info.driver, x.info.car, x.info.colour, x.frames) for x in got.streams] == [
        ("Ann", "GT3", "", 50)
    ]
    assert got.laps == [LapInfo(stream_id=CAR, lap=1, t0_ns=5, t1_ns=9, frames=40, lap_time=81.5)]
    assert np.array_equal(out.t_ns, batch.t_ns)


async def test_newer_schema_is_refused(pg_base: str, pg_url: str, pg_schema: str) -> None:
    """A schema migrated by a newer pitwire raises StoreError asking to upgrade pitwire."""
    async with opened(pg_url), admin(pg_base) as conn:
        await conn.execute(
            f"INSERT INTO \"{pg_schema}\".pitwire_schema (version, applied_by) VALUES (99, 'x')"
        )
    store = PostgresStore.from_url(pg_url)
    with pytest.raises(StoreError, match=r"v99 is newer.*upgrade pitwire") as info:
        await store.open()
    assert not isinstance(info.value, StoreUnavailable)
    await store.close()


async def test_schemas_are_isolated(pg_base: str, pg_url: str, pg_schema: str, frames) -> None:
    """Two schemas in one database are two separate stores."""
    other = f"{pg_schema}_b"
    try:
        async with opened(pg_url) as a, opened(pg_url.replace(pg_schema, other)) as b:
            await setup(a, frames)
            assert await b.list_sessions() == []
            assert [s.info.session_id for s in await a.list_sessions()] == [S]
    finally:
        async with admin(pg_base) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{other}" CASCADE')


# -- plain SQL ----------------------------------------------------------------------------


async def test_tables_read_with_plain_sql(
    pg_base: str, pg_url: str, pg_schema: str, frames
) -> None:
    """Users can read sessions, streams, laps and chunks with plain SQL (docs/storage.md)."""
    async with opened(pg_url) as store:
        await setup(store, frames, "car-1", "car-2")
        batch = frames.batch(0, 100)
        await write(store, 0, batch)
        await write(store, 100, frames.batch(100, 50))
        await write(store, 0, frames.batch(0, 30), "car-2")
        await store.put_lap(S, LapInfo(stream_id="car-1", lap=1, t0_ns=1, t1_ns=2, frames=3))
    async with admin(pg_base) as conn:
        await conn.execute(f'SET search_path = "{pg_schema}"')
        session = await conn.fetchrow("SELECT id, track, started_at FROM sessions")
        per_stream = await conn.fetch(
            "SELECT stream, sum(n) AS frames, count(*) AS chunks FROM chunks "
            "WHERE session = 's1' GROUP BY stream ORDER BY stream"
        )
        names = await conn.fetchval(
            "SELECT array_agg(c ->> 'name' ORDER BY o) FROM streams, "
            "jsonb_array_elements(channels) WITH ORDINALITY AS ch(c, o) WHERE stream = 'car-1'"
        )
        lap = await conn.fetchrow("SELECT stream, lap, frames, lap_time FROM laps")
        row = await conn.fetchrow(
            "SELECT codec, stats -> 'speed' AS speed, blob FROM chunks "
            "WHERE stream = 'car-1' AND first_seq = 0"
        )
    assert (session["id"], session["track"]) == (S, "monza")
    assert session["started_at"].timestamp() == pytest.approx(frames.T0 / 1e9)
    assert [tuple(r) for r in per_stream] == [("car-1", 150, 2), ("car-2", 30, 1)]
    assert names == list(frames.channels)
    assert tuple(lap) == ("car-1", 1, 3, None)
    assert row["codec"] == chunk.version_of(row["blob"])
    speed = msgspec.json.decode(row["speed"], type=chunk.ColumnStats, strict=False)
    assert speed == chunk.stats(batch).columns["speed"]
    assert chunk.decode(row["blob"]).n == 100


# -- the write path -----------------------------------------------------------------------


async def test_writes_use_copy(pg_url: str, frames, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_chunk inserts the missing pieces of a batch with one COPY per call."""
    copies: list[int] = []
    original = asyncpg.connection.Connection.copy_records_to_table

    async def spy(self, table, *, records, **kw):
        records = list(records)
        copies.append(len(records))
        return await original(self, table, records=records, **kw)

    monkeypatch.setattr(asyncpg.connection.Connection, "copy_records_to_table", spy)
    async with opened(pg_url) as store:
        await setup(store, frames)
        assert await write(store, 10, frames.batch(10, 10)) == 10
        assert await write(store, 30, frames.batch(30, 10)) == 10
        assert await write(store, 0, frames.batch(0, 50)) == 30  # three gaps, one COPY
        assert await write(store, 0, frames.batch(0, 50)) == 0  # nothing new: no COPY
        assert await high(store) == 49
    assert copies == [1, 1, 3]


async def test_large_chunk_round_trips(pg_url: str, frames) -> None:
    """A 400k-frame chunk is stored and read back exactly; encoding and decoding it leave
    the event loop free."""

    async def timed(call: Any) -> tuple[Any, float, float]:
        """(result, duration [s], longest the event loop was blocked meanwhile [s])."""
        stall = 0.0

        async def ticker() -> None:
            nonlocal stall
            while True:
                before = time.perf_counter()
                try:
                    await asyncio.sleep(0)
                finally:  # cancelled right after ``call``: count that last wait too
                    stall = max(stall, time.perf_counter() - before)

        task = asyncio.create_task(ticker())
        try:
            start = time.perf_counter()
            result = await call
            elapsed = time.perf_counter() - start
        finally:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return result, elapsed, stall

    async with opened(pg_url) as store:
        await setup(store, frames)
        big = frames.batch(0, 400_000)
        stored, wrote, write_stall = await timed(write(store, 0, big))
        out, read, read_stall = await timed(store.read_frames(session_id=S, stream_id=CAR))
    print(f"400k frames: write {wrote * 1000:.0f} ms (loop blocked {write_stall * 1000:.0f} ms "
          f"at most), read {read * 1000:.0f} ms ({read_stall * 1000:.0f} ms)")  # fmt: skip
    assert stored == 400_000
    assert same_at_resolution(out, big, frames.channels.values())
    assert write_stall < wrote / 2 and read_stall < read / 2


async def test_write_chunks_stores_many_items_in_one_transaction(
    pg_url: str, frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    """write_chunks stores several streams' items, overlapping ones included, with one COPY
    and returns the new frames of each item."""
    copies: list[int] = []
    original = asyncpg.connection.Connection.copy_records_to_table

    async def spy(self, table, *, records, **kw):
        records = list(records)
        copies.append(len(records))
        return await original(self, table, records=records, **kw)

    monkeypatch.setattr(asyncpg.connection.Connection, "copy_records_to_table", spy)
    async with opened(pg_url) as store:
        await setup(store, frames, "car-1", "car-2")
        await write(store, 40, frames.batch(40, 20), "car-2")
        counts = await store.write_chunks(
            S,
            [
                (StreamId("car-2"), 0, frames.batch(0, 50)),  # 40..49 stored before
                (StreamId("car-1"), 0, frames.batch(0, 100)),
                (StreamId("car-1"), 50, frames.batch(50, 100)),  # 50..99 in the item before
                (StreamId("car-1"), 0, frames.batch(0, 0)),
                (StreamId("car-2"), 30, frames.batch(30, 50)),  # 30..59 stored by now
            ],
        )
        assert counts == [40, 100, 50, 0, 20]
        assert copies == [1, 4]
        for stream, n in [("car-1", 150), ("car-2", 80)]:
            out = await store.read_frames(session_id=S, stream_id=StreamId(stream))
            assert np.array_equal(out.t_ns, frames.batch(0, n).t_ns)
            assert np.array_equal(out.columns["rpm"], frames.batch(0, n).columns["rpm"], True)
            assert await high(store, stream) == n - 1
        assert await store.write_chunks(S, []) == []


async def test_write_chunks_is_all_or_nothing(pg_url: str, frames) -> None:
    """When one item of write_chunks is refused, none of the items is stored."""
    async with opened(pg_url) as store:
        await setup(store, frames)
        good = (CAR, 0, frames.batch(0, 10))
        with pytest.raises(StoreError, match="car-9"):
            await store.write_chunks(S, [good, (StreamId("car-9"), 0, frames.batch(0, 10))])
        bad = frames.batch(10, 10).select(["speed", "rpm"])
        with pytest.raises(StoreError, match="missing"):
            await store.write_chunks(S, [good, (CAR, 10, bad)])
        assert await high(store) is None


async def test_a_record_the_database_refuses_is_a_store_error_not_an_outage(pg_url: str) -> None:
    """A value PostgreSQL cannot hold (a start time beyond int8) is refused for good
    (StoreError), not reported as an outage to be retried for ever."""
    async with opened(pg_url) as store:
        with pytest.raises(StoreError) as caught:
            await store.put_session(SessionInfo(session_id="huge", started_ns=2**64))
        assert not isinstance(caught.value, StoreUnavailable)
        assert await store.list_sessions() == []


async def test_two_stores_writing_one_stream_store_each_frame_once(pg_url: str, frames) -> None:
    """Two servers (two stores) racing overlapping writes to one stream store each seq once."""
    async with opened(pg_url) as a, opened(pg_url) as b:
        await setup(a, frames)
        writes = [
            write(store, first, frames.batch(first, 300))
            for first in range(0, 3000, 100)
            for store in (a, b)
        ]
        assert sum(await asyncio.gather(*writes)) == 3200
        out = await b.read_frames(session_id=S, stream_id=CAR)
        assert np.array_equal(out.t_ns, frames.batch(0, 3200).t_ns)
        assert await high(a) == 3199


async def test_lap_writes_do_not_wait_for_chunk_writes(
    pg_base: str, pg_url: str, pg_schema: str, frames
) -> None:
    """The stream lock of a write does not block put_lap on the same stream (FK checks)."""
    async with opened(pg_url) as store, admin(pg_base) as conn:
        await setup(store, frames)
        async with conn.transaction():
            await conn.execute(
                f'SELECT 1 FROM "{pg_schema}".streams WHERE stream = $1 FOR NO KEY UPDATE', CAR
            )
            pending = asyncio.create_task(write(store, 0, frames.batch(0, 10)))
            lap = LapInfo(stream_id=CAR, lap=1, t0_ns=0, t1_ns=1, frames=1)
            await asyncio.wait_for(store.put_lap(S, lap), 5)
            await asyncio.sleep(0.1)
            assert not pending.done()  # queued behind the held stream lock
        assert await pending == 10


# -- failures and recovery ----------------------------------------------------------------


async def test_unreachable_at_open_then_recovers(pg_base: str, pg_schema: str, frames) -> None:
    """open against a database that is down raises StoreUnavailable naming host:port/db;
    once it is up, the next call connects and migrates without another open."""
    async with proxy_to(pg_base) as proxy:
        await proxy.cut()
        store = PostgresStore.from_url(via(proxy, pg_base, pg_schema, "&connect_timeout=2"))
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{proxy.port}/") as info:
            await store.open()
        assert "refused" in str(info.value).lower() or "connect" in str(info.value).lower()
        with pytest.raises(StoreUnavailable):
            await store.list_sessions()
        await proxy.restore()
        try:
            assert await store.list_sessions() == []
            await setup(store, frames)
        finally:
            await store.close()


async def test_outage_mid_use_then_recovers(pg_base: str, pg_schema: str, frames) -> None:
    """Cutting the database off raises StoreUnavailable on every call; once it is back the
    same store works again and nothing stored before is lost."""
    async with (
        proxy_to(pg_base) as proxy,
        opened(via(proxy, pg_base, pg_schema, "&connect_timeout=2")) as store,
    ):
        await setup(store, frames)
        assert await write(store, 0, frames.batch(0, 500)) == 500
        await proxy.cut()
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{proxy.port}/") as info:
            await write(store, 500, frames.batch(500, 500))
        print(info.value)
        for call in (
            store.list_sessions(),
            store.get_session(S),
            store.read_frames(session_id=S, stream_id=CAR),
            store.stored_seqs(session_id=S, stream_id=CAR),
            store.chunk_index(S),
            store.put_lap(S, LapInfo(stream_id=CAR, lap=1, t0_ns=0, t1_ns=1, frames=1)),
        ):
            with pytest.raises(StoreUnavailable):
                await call
        await proxy.restore()
        assert await write(store, 500, frames.batch(500, 500)) == 500
        out = await store.read_frames(session_id=S, stream_id=CAR)
        assert np.array_equal(out.t_ns, frames.batch(0, 1000).t_ns)
        assert await high(store) == 999
        assert (await store.get_session(S)).frames == 1000


async def test_cut_during_a_large_write_rolls_it_back(pg_base: str, pg_schema: str, frames) -> None:
    """A connection lost in the middle of a write stores none of it; the retry stores all."""
    async with (
        proxy_to(pg_base) as proxy,
        opened(via(proxy, pg_base, pg_schema, "&connect_timeout=2")) as store,
    ):
        await setup(store, frames)
        assert await write(store, 0, frames.batch(0, 100)) == 100
        big = frames.batch(100, 300_000)
        sent = proxy.upstream_bytes
        task = asyncio.create_task(write(store, 100, big))
        async with asyncio.timeout(10):
            await proxy.wait_upstream(sent + 200_000)
        await proxy.cut()
        with pytest.raises(StoreUnavailable):
            await task
        await proxy.restore()
        assert await high(store) == 99
        assert (await store.get_session(S)).frames == 100
        assert await write(store, 100, big) == 300_000
        assert await high(store) == 300_099


async def test_admin_termination_is_unavailable_and_replaced(
    pg_base: str, pg_url: str, pg_schema: str, frames
) -> None:
    """A backend terminated by an administrator mid-call raises StoreUnavailable; the pool
    drops that connection and the next call works on a new one."""
    async with opened(pg_url) as store, admin(pg_base) as conn:
        await setup(store, frames)
        async with conn.transaction():
            await conn.execute(
                f'SELECT 1 FROM "{pg_schema}".streams WHERE stream = $1 FOR UPDATE', CAR
            )
            pending = asyncio.create_task(write(store, 0, frames.batch(0, 10)))
            pid = None
            deadline = time.monotonic() + 30  # a loaded machine may take seconds
            while time.monotonic() < deadline:
                assert not pending.done(), f"the write did not wait for the row lock: {pending}"
                pid = await conn.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND position($1 in query) > 0",
                    pg_schema,
                )
                if pid is not None:
                    break
                await asyncio.sleep(0.01)
            assert pid is not None
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(StoreUnavailable, match="administrator command"):
                await pending
        assert await write(store, 0, frames.batch(0, 10)) == 10


async def test_idle_connections_killed_by_a_restart_are_replaced(
    pg_base: str, pg_url: str, pg_schema: str, frames
) -> None:
    """Pooled connections terminated while idle (as a database restart does) are replaced
    on the next call, which succeeds."""
    async with (
        opened(f"{pg_url}&application_name={pg_schema}") as store,
        admin(pg_base) as conn,
    ):
        await setup(store, frames)
        await asyncio.gather(*(store.get_session(S) for _ in range(4)))  # a few connections
        killed = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            pg_schema,
        )
        assert killed
        await asyncio.sleep(0.2)  # the pool sees the connections close
        assert await write(store, 0, frames.batch(0, 10)) == 10
        assert (await store.get_session(S)).frames == 10


async def test_pool_and_command_timeouts_are_unavailable(
    pg_base: str, pg_url: str, pg_schema: str, frames
) -> None:
    """A call waiting past acquire_timeout for a pooled connection, or past command_timeout
    for a reply, raises StoreUnavailable; the store works once the blockage is gone."""
    async with opened(pg_url + "&pool_size=1&acquire_timeout=0.2") as store, admin(pg_base) as conn:
        await setup(store, frames)
        async with conn.transaction():
            await conn.execute(
                f'SELECT 1 FROM "{pg_schema}".streams WHERE stream = $1 FOR UPDATE', CAR
            )
            blocked = asyncio.create_task(write(store, 0, frames.batch(0, 10)))
            await asyncio.sleep(0.1)
            with pytest.raises(StoreUnavailable, match="timed out"):
                await store.list_sessions()
        assert await blocked == 10
    async with opened(pg_url + "&command_timeout=0.3") as store, admin(pg_base) as conn:
        async with conn.transaction():
            await conn.execute(
                f'SELECT 1 FROM "{pg_schema}".streams WHERE stream = $1 FOR UPDATE', CAR
            )
            with pytest.raises(StoreUnavailable, match="timed out"):
                await write(store, 10, frames.batch(10, 10))
        assert await write(store, 10, frames.batch(10, 10)) == 10
        assert await high(store) == 19


async def test_close_waits_for_running_calls(pg_url: str, frames) -> None:
    """close() lets calls already started finish; calls after close raise StoreError."""
    store = PostgresStore.from_url(pg_url)
    await store.open()
    await setup(store, frames)
    pending = [
        asyncio.create_task(write(store, i * 100, frames.batch(i * 100, 100))) for i in range(20)
    ]
    await asyncio.sleep(0)
    await store.close()
    assert sum(await asyncio.gather(*pending)) == 2000
    with pytest.raises(StoreError, match="not open"):
        await write(store, 0, frames.batch(0, 1))
    async with opened(pg_url) as again:
        assert await high(again) == 1999
