"""SqliteStore behaviour beyond the contract: WAL, files, threads, URLs and failures."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest

from pitwire.codec import chunk
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.store import _shared, _sqlite_sql
from pitwire.store.base import StoreError, StoreUnavailable
from pitwire.store.sqlite import SqliteStore

S = SessionId("s1")
CAR = StreamId("car-1")


async def setup(store: SqliteStore, frames) -> None:
    await store.put_session(SessionInfo(session_id=S, started_ns=frames.T0))
    await store.put_stream(S, StreamInfo(stream_id=CAR, channels=list(frames.channels.values())))


async def write(store: SqliteStore, first: int, batch) -> int:
    return await store.write_chunk(session_id=S, stream_id=CAR, first_seq=first, batch=batch)


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to inspect the file (autocommit)."""
    return sqlite3.connect(path, isolation_level=None)


async def test_wal_mode_and_schema_version(sqlite_store: SqliteStore) -> None:
    """The file is in WAL mode, at the latest schema version, with the four tables."""
    with raw(sqlite_store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(_sqlite_sql.MIGRATIONS)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"sessions", "streams", "laps", "chunks"}


async def test_v2_database_upgrades_in_place(tmp_path: Path, frames) -> None:
    """A database at schema v2 (built from the v2 DDL) opens at the latest version with its
    sessions, streams, laps and chunks intact, and the new lap/stream columns at defaults."""
    path = tmp_path / "v2.db"
    batch = frames.batch(0, 50)
    blob = chunk.encode(batch, channels=frames.channels)
    with raw(path) as conn:
        for statement in (*_sqlite_sql.MIGRATIONS[0], *_sqlite_sql.MIGRATIONS[1]):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")
        conn.execute("INSERT INTO sessions VALUES ('s1', 'monza', 'sim', ?)", (frames.T0,))
        channels = _shared.encode_json(list(frames.channels.values()))
        conn.execute("INSERT INTO streams VALUES ('s1', 'car-1', 'Ann', 'GT3', ?)", (channels,))
        conn.execute("INSERT INTO laps VALUES ('s1', 'car-1', 1, 5, 9, 40, 81.5)")
        conn.execute(
            """INSERT INTO chunks (session, stream, first_seq, last_seq, t0_ns, t1_ns, n, codec,
               stats, period_ns, holes, blob) VALUES ('s1', 'car-1', 0, 49, ?, ?, 50, ?, '{}',
               0, '[]', ?)""",
            (int(batch.t_ns[0]), int(batch.t_ns[-1]), chunk.version_of(blob), blob),
        )
    async with SqliteStore(path) as store:
        got = await store.get_session(S)
        out = await store.read_frames(session_id=S, stream_id=CAR)
        assert await write(store, 0, frames.batch(0, 60)) == 10
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(_sqlite_sql.MIGRATIONS)
        row = conn.execute("SELECT sectors, compound, stint, tyre_life FROM laps").fetchone()
    assert got.info == SessionInfo(session_id=S, track="monza", source="sim", started_ns=frames.T0)
    assert [(s.info.driver, s.info.car, s.info.colour, s.frames) for s in got.streams] == [
        ("Ann", "GT3", "", 50)
    ]
    assert got.laps == [LapInfo(stream_id=CAR, lap=1, t0_ns=5, t1_ns=9, frames=40, lap_time=81.5)]
    assert np.array_equal(out.t_ns, batch.t_ns)
    assert row == ("[]", "", None, None)


async def test_open_creates_parent_directories(tmp_path: Path) -> None:
    """open creates missing parent directories of the database file."""
    path = tmp_path / "a" / "b" / "pitwire.db"
    async with SqliteStore(path):
        pass
    assert path.is_file()


async def test_data_survives_close_and_reopen(tmp_path: Path, frames) -> None:
    """Everything written is there after close and a new open (schema not recreated)."""
    path = tmp_path / "p.db"
    async with SqliteStore(path) as store:
        await setup(store, frames)
        await write(store, 0, frames.batch(0, 300))
    async with SqliteStore(path) as store:
        out = await store.read_frames(session_id=S, stream_id=CAR)
        assert np.array_equal(out.t_ns, frames.batch(0, 300).t_ns)
        assert await store.stored_seqs(session_id=S, stream_id=CAR) == 299
        assert await write(store, 0, frames.batch(0, 300)) == 0


async def test_chunk_rows_carry_codec_and_stats(sqlite_store: SqliteStore, frames) -> None:
    """Each chunk row records its seq/time span, codec version and per-channel min/max."""
    await setup(sqlite_store, frames)
    batch = frames.batch(0, 100)
    await write(sqlite_store, 0, batch)
    with raw(sqlite_store.path) as conn:
        row = conn.execute(
            "SELECT first_seq, last_seq, t0_ns, t1_ns, n, codec, stats, blob FROM chunks"
        ).fetchone()
    assert row[:6] == (0, 99, frames.t(0), frames.t(99), 100, chunk.VERSION)
    stats = msgspec.json.decode(row[6], type=dict[str, chunk.ColumnStats], strict=False)
    expected = chunk.stats(batch).columns
    assert stats == expected
    assert chunk.decode(row[7]).n == 100


async def test_concurrent_reads_while_writing(sqlite_store: SqliteStore, frames) -> None:
    """Reads running during writes always see a whole number of committed chunks, in order."""
    await setup(sqlite_store, frames)
    done = False
    reads = 0

    async def writer() -> None:
        nonlocal done
        for first in range(0, 5000, 100):
            await write(sqlite_store, first, frames.batch(first, 100))
        done = True

    async def reader() -> None:
        nonlocal reads
        last = 0
        while not done:
            out = await sqlite_store.read_frames(session_id=S, stream_id=CAR)
            assert out.n % 100 == 0
            assert out.n >= last
            assert np.array_equal(out.t_ns, frames.batch(0, out.n).t_ns)
            last = out.n
            reads += 1

    await asyncio.gather(writer(), reader(), reader(), reader())
    assert reads > 0
    assert (await sqlite_store.read_frames(session_id=S, stream_id=CAR)).n == 5000


async def test_second_store_on_the_same_file_sees_writes(tmp_path: Path, frames) -> None:
    """Another store (as another process would) reads committed writes, and its stored_seqs
    follows seqs written by the first even below what it saw before."""
    path = tmp_path / "p.db"
    async with SqliteStore(path) as a, SqliteStore(path) as b:
        await setup(a, frames)
        await write(a, 100, frames.batch(100, 50))
        assert await b.stored_seqs(session_id=S, stream_id=CAR) == 149
        await write(a, 150, frames.batch(150, 50))
        assert await b.stored_seqs(session_id=S, stream_id=CAR) == 199
        await write(a, 0, frames.batch(0, 10))
        assert await b.stored_seqs(session_id=S, stream_id=CAR) == 9
        assert (await b.read_frames(session_id=S, stream_id=CAR)).n == 110


async def test_writes_run_off_the_event_loop(
    sqlite_store: SqliteStore, frames, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large write runs on the writer thread while the event loop keeps ticking."""
    await setup(sqlite_store, frames)
    threads: set[str] = set()
    original = _sqlite_sql.write_chunk

    def spy(*args, **kw):
        threads.add(threading.current_thread().name)
        return original(*args, **kw)

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    monkeypatch.setattr(_sqlite_sql, "write_chunk", spy)
    task = asyncio.create_task(ticker())
    try:
        big = frames.batch(0, 400_000)
        start = time.perf_counter()
        assert await write(sqlite_store, 0, big) == 400_000
        elapsed = time.perf_counter() - start
    finally:
        task.cancel()
    print(f"400k-frame write took {elapsed * 1000:.0f} ms; loop ticked {ticks} times")
    assert threads
    assert all(name.startswith("pitwire-sqlite-write") for name in threads)
    assert ticks >= 3


def test_from_url_paths(tmp_path: Path) -> None:
    """sqlite:///rel and sqlite:////abs map to relative and absolute paths, %-decoded."""
    assert SqliteStore.from_url("sqlite:///data/pitwire.db").path == Path("data/pitwire.db")
    assert SqliteStore.from_url("sqlite:////var/lib/p.db").path == Path("/var/lib/p.db")
    assert SqliteStore.from_url("sqlite:///my%20data/p.db").path == Path("my data/p.db")
    store = SqliteStore.from_url("sqlite:///p.db?synchronous=full&timeout=0.5")
    assert (store.synchronous, store.timeout) == ("FULL", 0.5)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://host/p.db", "names a host"),
        ("sqlite://", "no file path"),
        ("sqlite:///", "no file path"),
        ("sqlite:p.db", "no file path"),
        ("sqlite:///:memory:", "memory://"),
        ("sqlite:///p.db?journal=off", "unknown options"),
        ("sqlite:///p.db?synchronous=off", "NORMAL or FULL"),
        ("sqlite:///p.db?timeout=soon", "timeout"),
        ("postgresql://u:secret@h/db", "not a sqlite URL"),
    ],
)
def test_from_url_errors(url: str, message: str) -> None:
    """Malformed sqlite URLs raise StoreError saying what is wrong and what works."""
    with pytest.raises(StoreError, match=message):
        SqliteStore.from_url(url)


async def test_relative_url_is_relative_to_cwd(tmp_path: Path, monkeypatch) -> None:
    """A relative URL path is resolved against the working directory; dirs are created."""
    monkeypatch.chdir(tmp_path)
    async with SqliteStore.from_url("sqlite:///data/sub/p.db"):
        pass
    assert (tmp_path / "data" / "sub" / "p.db").is_file()


async def test_unwritable_path_is_unavailable(tmp_path: Path) -> None:
    """A path that cannot be created raises StoreUnavailable naming the path and cause."""
    (tmp_path / "file").write_text("not a directory")
    store = SqliteStore(tmp_path / "file" / "sub" / "p.db")
    with pytest.raises(StoreUnavailable, match="cannot create directory") as info:
        await store.open()
    assert "file" in str(info.value)
    with pytest.raises(StoreError, match="not open"):
        await store.list_sessions()


async def test_not_a_database_is_unavailable(tmp_path: Path) -> None:
    """A file that is not an SQLite database raises StoreUnavailable with sqlite's reason."""
    path = tmp_path / "p.db"
    path.write_bytes(b"hello, this is not sqlite" * 100)
    with pytest.raises(StoreUnavailable, match="not a database"):
        await SqliteStore(path).open()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database from a newer pitwire (higher user_version) raises StoreError on open."""
    path = tmp_path / "p.db"
    with raw(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="v99 is newer"):
        await SqliteStore(path).open()


async def test_disk_full_is_unavailable_and_retry_works(sqlite_store: SqliteStore, frames) -> None:
    """SQLITE_FULL raises StoreUnavailable, stores nothing, and a retry succeeds once space
    is back (disk full simulated with max_page_count)."""
    await setup(sqlite_store, frames)
    await write(sqlite_store, 0, frames.batch(0, 10))

    def limit(conn: sqlite3.Connection, pages: int) -> None:
        if pages == 0:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

    await sqlite_store._write(limit, 0)
    with pytest.raises(StoreUnavailable, match="SQLITE_FULL"):
        await write(sqlite_store, 10, frames.batch(10, 20_000))
    assert await sqlite_store.stored_seqs(session_id=S, stream_id=CAR) == 9
    await sqlite_store._write(limit, 1_000_000)
    assert await write(sqlite_store, 10, frames.batch(10, 20_000)) == 20_000


async def test_locked_database_is_unavailable(tmp_path: Path, frames) -> None:
    """A write blocked by another connection's lock past ``timeout`` raises StoreUnavailable."""
    path = tmp_path / "p.db"
    async with SqliteStore(path, timeout=0.05) as store:
        await setup(store, frames)
        other = raw(path)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreUnavailable, match="locked"):
                await write(store, 0, frames.batch(0, 10))
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await write(store, 0, frames.batch(0, 10)) == 10


async def test_corrupt_chunk_is_skipped_with_a_warning(
    sqlite_store: SqliteStore, frames, caplog: pytest.LogCaptureFixture
) -> None:
    """A chunk whose blob fails to decode is left out of reads and logged, not fatal."""
    await setup(sqlite_store, frames)
    await write(sqlite_store, 0, frames.batch(0, 10))
    await write(sqlite_store, 10, frames.batch(10, 10))
    with raw(sqlite_store.path) as conn:
        conn.execute("UPDATE chunks SET blob = x'01ff' WHERE first_seq = 0")
    with caplog.at_level(logging.WARNING, logger="pitwire.store.sqlite"):
        out = await sqlite_store.read_frames(session_id=S, stream_id=CAR)
    assert np.array_equal(out.t_ns, frames.batch(10, 10).t_ns)
    assert "skipping chunk at seq 0" in caplog.text


async def test_close_waits_for_queued_writes(tmp_path: Path, frames) -> None:
    """close() lets writes already queued finish; calls after close raise StoreError."""
    path = tmp_path / "p.db"
    store = SqliteStore(path)
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
    async with SqliteStore(path) as again:
        assert await again.stored_seqs(session_id=S, stream_id=CAR) == 1999
