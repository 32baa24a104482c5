"""Tests of the server's spool (pitwire.server.spool): the on-disk record log."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
import pytest

from pitwire.model.frames import FrameBatch
from pitwire.model.records import SessionInfo, StreamInfo
from pitwire.server.spool import (
    MAGIC,
    Declare,
    Spool,
    Spooled,
    SpoolError,
    SpoolFull,
    SpoolInUse,
    adopt_strays,
    default_dir,
    state_dir,
    store_identity,
    strays,
)
from support import car_batch, car_channels

SESSION = SessionInfo(session_id="s1", track="monza", source="sim", started_ns=5)


def stream_info(name: str = "car-1") -> StreamInfo:
    return StreamInfo(stream_id=name, driver="D", channels=list(car_channels().values()))


def frames_of(entries) -> list[tuple[str, int, int]]:  # type: ignore[no-untyped-def]
    return [(e.stream, e.first_seq, e.batch.n) for _, e in entries if isinstance(e, Spooled)]


def reopen(spool: Spool, **options: int) -> Spool:
    spool.close()
    again = Spool(spool.directory, **options)
    again.open()
    return again


def test_records_round_trip_bit_for_bit_across_a_restart(tmp_path):
    """Appended frames come back after a reopen with the same seqs and float bits (NaN
    payloads, -0.0), each stream declared before its first frames."""
    spool = Spool(tmp_path)
    spool.open()
    spool.declare(SESSION, stream_info("car-1"))
    odd = car_batch(0, 10)
    odd.columns["speed"][:3] = np.array([np.nan, -0.0, np.inf], np.float32)
    odd.columns["packet_id"][4] = np.frombuffer(struct.pack("<Q", 0x7FF8_0000_0000_1234))[0]
    spool.append([("s1", "car-1", 0, odd), ("s1", "car-2", 100, car_batch(100, 5))])
    spool.append([("s1", "car-1", 10, car_batch(10, 7))])
    spool = reopen(spool)
    entries = spool.read(100)
    decls = [e for _, e in entries if isinstance(e, Declare)]
    assert [(d.session, d.stream) for d in decls] == [(SESSION, stream_info("car-1"))]
    assert isinstance(entries[0][1], Declare)
    assert frames_of(entries) == [("car-1", 0, 10), ("car-2", 100, 5), ("car-1", 10, 7)]
    back = next(e.batch for _, e in entries if isinstance(e, Spooled))
    for name, col in odd.columns.items():
        assert back.columns[name].dtype == col.dtype
        assert back.columns[name].tobytes() == col.tobytes()
    assert spool.frames == 22
    assert spool.high_waters() == {("s1", "car-1"): 16, ("s1", "car-2"): 104}
    spool.close()


def test_a_torn_tail_is_ignored_with_a_warning(tmp_path, caplog):
    """A record cut short at the end of a segment (a crash mid-append) is ignored with a
    warning; the records before it survive and new records go to a new segment."""
    spool = Spool(tmp_path)
    spool.open()
    for i in range(3):
        spool.append([("s1", "car-1", i * 10, car_batch(i * 10, 10))])
    path = spool.segment_paths()[0]
    spool.close()
    data = path.read_bytes()
    path.write_bytes(data[:-25])
    with caplog.at_level(logging.WARNING, "pitwire.spool"):
        spool = Spool(tmp_path)
        spool.open()
    assert "ignoring" in caplog.text and spool.torn_bytes > 0
    assert frames_of(spool.read(10)) == [("car-1", 0, 10), ("car-1", 10, 10)]
    assert spool.high_waters() == {("s1", "car-1"): 19}
    spool.append([("s1", "car-1", 20, car_batch(20, 10))])
    assert len(spool.segment_paths()) == 2
    spool = reopen(spool)
    assert [f[1] for f in frames_of(spool.read(10))] == [0, 10, 20]
    spool.close()


def test_a_corrupt_record_ends_its_segment_but_not_later_ones(tmp_path):
    """A record failing its CRC hides the rest of its segment only; later segments are read."""
    spool = Spool(tmp_path)
    spool.open()
    spool.append([("s1", "car-1", 0, car_batch(0, 10))])
    spool.append([("s1", "car-1", 10, car_batch(10, 10))])
    first = spool.segment_paths()[0]
    spool = reopen(spool)
    spool.append([("s1", "car-1", 20, car_batch(20, 10))])
    spool.close()
    data = bytearray(first.read_bytes())
    data[-3] ^= 0xFF  # inside the second record's body
    first.write_bytes(bytes(data))
    spool = Spool(tmp_path)
    spool.open()
    assert [f[1] for f in frames_of(spool.read(10))] == [0, 20]
    # 10..19 are lost, and were acked: the stream continues after 29, a gap stays a gap.
    assert spool.high_waters() == {("s1", "car-1"): 29}
    spool.close()


def test_high_waters_are_the_highest_spooled_seq_across_a_gap(tmp_path):
    """After a reopen, a stream's high-water is its highest spooled seq even when its
    records leave a gap (frames an agent dropped), as it is while appending."""
    spool = Spool(tmp_path)
    spool.open()
    spool.append([("s1", "car-1", 0, car_batch(0, 100))])
    spool.append([("s1", "car-1", 150, car_batch(150, 150))])
    assert spool.high_waters() == {("s1", "car-1"): 299}
    spool = reopen(spool)
    assert spool.high_waters() == {("s1", "car-1"): 299}
    spool.close()


def test_consumed_segments_are_deleted_oldest_first_and_reset_empties_the_folder(tmp_path):
    """Segments roll over at segment_bytes; each is deleted once the cursor has left it, and
    reset after the last record deletes the active one too."""
    spool = Spool(tmp_path, segment_bytes=100)
    spool.open()
    for i in range(4):
        spool.append([("s1", "car-1", i * 10, car_batch(i * 10, 10))])
    assert len(spool.segment_paths()) == 4
    entries = spool.read(2)
    spool.consume(entries[-1][0], 20)
    assert len(spool.segment_paths()) == 2 and spool.frames == 20
    assert not spool.is_empty()
    entries = spool.read(10)
    assert [f[1] for f in frames_of(entries)] == [20, 30]
    spool.consume(entries[-1][0], 20)
    assert spool.is_empty() and spool.frames == 0
    assert len(spool.segment_paths()) == 1  # the active segment stays until reset
    spool.reset()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock"]
    assert spool.bytes == 0
    spool.append([("s1", "car-1", 40, car_batch(40, 10))])
    assert [f[1] for f in frames_of(spool.read(10))] == [40]
    spool.close()


def test_a_declaration_is_repeated_in_each_segment_and_when_it_changes(tmp_path):
    """Each segment declares a stream before its first frames in it, and a changed
    declaration is written again before the stream's next frames."""
    spool = Spool(tmp_path, segment_bytes=100)
    spool.open()
    spool.declare(SESSION, stream_info())
    spool.append([("s1", "car-1", 0, car_batch(0, 10)), ("s1", "car-1", 10, car_batch(10, 5))])
    spool.append([("s1", "car-1", 15, car_batch(15, 5))])  # a new segment
    changed = StreamInfo(stream_id="car-1", driver="E", channels=stream_info().channels)
    spool.declare(SESSION, changed)
    spool.declare(SESSION, changed)  # the same again: nothing new to write
    spool.append([("s1", "car-1", 20, car_batch(20, 5))])
    kinds = [e.stream.driver if isinstance(e, Declare) else e.first_seq for _, e in spool.read(100)]
    assert kinds == ["D", 0, 10, "D", 15, "E", 20]
    spool.close()


def test_a_full_spool_refuses_and_writes_nothing(tmp_path):
    """Once the segments reach max_bytes, append raises SpoolFull and the spool is unchanged."""
    spool = Spool(tmp_path, max_bytes=150)
    spool.open()
    spool.append([("s1", "car-1", 0, car_batch(0, 30))])
    assert spool.full
    size = spool.bytes
    with pytest.raises(SpoolFull):
        spool.append([("s1", "car-1", 30, car_batch(30, 10))])
    assert (spool.bytes, spool.frames) == (size, 30)
    spool.close()


def test_a_second_server_cannot_use_the_same_folder(tmp_path):
    """A spool folder locked by one server raises SpoolError for another, until released."""
    first = Spool(tmp_path)
    first.open()
    with pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path).lock()
    first.close()
    second = Spool(tmp_path)
    second.open()
    second.close()


def test_a_file_that_is_not_a_segment_is_refused(tmp_path):
    """A segment-named file without the spool's magic raises SpoolError instead of being
    deleted."""
    (tmp_path / "000000000001.spool").write_bytes(b"something else entirely")
    with pytest.raises(SpoolError, match="not a pitwire spool segment"):
        Spool(tmp_path).open()


def test_a_segment_cut_before_its_magic_is_empty(tmp_path):
    """A segment shorter than its magic (a crash while creating it) holds nothing."""
    (tmp_path / "000000000001.spool").write_bytes(MAGIC[:3])
    spool = Spool(tmp_path)
    spool.open()
    assert spool.is_empty() and spool.read(5) == []
    spool.append([("s1", "car-1", 0, car_batch(0, 1))])
    assert [p.name for p in spool.segment_paths()] == ["000000000001.spool", "000000000002.spool"]
    spool.close()


def test_default_dir_follows_the_store_url(tmp_path, monkeypatch):
    """memory:// has no spool, SQLite's sits beside the file, others in the user's state
    folder under a name that does not hold the password."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_dir("memory://") is None
    assert str(default_dir("sqlite:///data/pitwire.db")) == "data/pitwire.db.spool"
    assert str(default_dir("sqlite:///data/pitwire.db?timeout=1")) == "data/pitwire.db.spool"
    pg = default_dir("postgresql://u:secret@db.example:5432/pitwire")
    assert pg is not None and pg.parent == tmp_path / "pitwire" / "server-spool" == state_dir()
    assert "secret" not in str(pg) and pg.name.startswith("postgresql-")
    assert pg == default_dir("postgresql://u:other@db.example:5432/pitwire")
    assert pg != default_dir("postgresql://u@db.example:5432/other")
    assert pg != default_dir("postgresql://u@db.example:5432/pitwire?schema=b")


@pytest.mark.parametrize(
    "spelling",
    [
        "postgresql://u@db.example/pitwire?schema=public",
        "postgres://u@DB.example:5432/pitwire",
        "postgresql://u@db.example:5432/pitwire?pool_size=5&command_timeout=3",
        "postgresql://u@db.example:5432/pitwire?sslmode=require&application_name=pit",
        "postgresql://db.example/pitwire?user=u&port=5432&connect_timeout=2",
    ],
)
def test_every_spelling_of_one_store_has_one_spool_folder(tmp_path, monkeypatch, spelling):
    """Options that change how the store is reached (pool, timeouts, ssl, application name),
    the postgres:// scheme and the default port and schema lead to the same folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_dir(spelling) == default_dir("postgresql://u:pw@db.example:5432/pitwire")


def test_store_identity_is_what_identifies_the_data():
    """A PostgreSQL store's identity is user, host, port, database and schema, with the
    defaults filled in and no password or connection options; an SQLite store's is its
    resolved absolute path; an identity is its own identity."""
    url = "postgresql://u:secret@db:5432/pw?schema=s&password=also&sslmode=require"
    assert store_identity(url) == "postgresql://u@db:5432/pw?schema=s"
    assert store_identity("postgres://u@db/pw") == "postgresql://u@db:5432/pw?schema=public"
    assert store_identity("postgresql://u@db") == "postgresql://u@db:5432/u?schema=public"
    socket = store_identity("postgresql://u@/pw?host=/run/postgresql")
    assert socket == store_identity("postgresql://u@%2Frun%2Fpostgresql:5432/pw")
    assert store_identity("postgresql://u@[::1]:5433/pw").startswith("postgresql://u@[::1]:5433/")
    here = Path.cwd().resolve()
    assert store_identity("sqlite:///data/pw.db?timeout=1") == f"sqlite:///{here}/data/pw.db"
    assert store_identity("sqlite:////tmp/../tmp/pw.db") == "sqlite:////tmp/pw.db"
    for some in [url, "postgresql://u@[::1]:5433,h2/pw", "sqlite:///data/pw.db", "memory://"]:
        assert store_identity(store_identity(some)) == store_identity(some)


def test_a_spool_recorded_by_the_older_keying_opens_for_its_store(tmp_path, monkeypatch):
    """A spool whose recorded store is the whole URL without its password (pitwire before
    the identities were normalised) opens for another spelling of that store, and for an
    SQLite path that was relative to where the server ran; the record is brought up to
    date."""
    old = Spool(tmp_path / "pg", store="postgres://u@db/pw?pool_size=5&schema=s")
    old.open()
    old.append([("s1", "car-1", 0, car_batch(0, 5))])
    old.close()
    identity = store_identity("postgresql://u:pw@db:5432/pw?schema=s&command_timeout=3")
    spool = Spool(tmp_path / "pg", store=identity)
    spool.open()
    assert spool.frames == 5 and (tmp_path / "pg" / "store").read_text() == identity + "\n"
    spool.close()

    (tmp_path / "run" / "data").mkdir(parents=True)
    beside = tmp_path / "run" / "data" / "pw.db.spool"
    old = Spool(beside, store="sqlite:///data/pw.db?timeout=1")  # run from tmp_path/run
    old.open()
    old.append([("s1", "car-1", 0, car_batch(0, 5))])
    old.close()
    monkeypatch.chdir(tmp_path)  # started elsewhere, with the absolute path
    spool = Spool(beside, store=store_identity(f"sqlite:///{tmp_path}/run/data/pw.db"))
    spool.open()
    assert spool.frames == 5
    spool.close()
    with pytest.raises(SpoolError, match="holds frames for the store"):
        Spool(beside, store=store_identity(f"sqlite:///{tmp_path}/other/pw.db")).open()


def stray(folder: Path, store: str, *seqs: int) -> Spool:
    """A closed spool in ``folder`` recorded for ``store``, holding 5 frames of car-1 at
    each of ``seqs`` (one segment each)."""
    spool = Spool(folder, store=store, segment_bytes=1)
    spool.open()
    spool.declare(SESSION, stream_info())
    for seq in seqs:
        spool.append([("s1", "car-1", seq, car_batch(seq, 5))])
    spool.close()
    return spool


def test_spools_of_the_same_store_under_other_names_are_taken_over(caplog):
    """At start, folders in the state folder holding frames for the same store (an older
    naming, another spelling of the URL) are moved behind this spool's segments and
    removed; folders of other stores, and empty ones, stay."""
    url = "postgresql://u:pw@db:5432/pw?schema=s&pool_size=5"
    mine = default_dir(url)
    assert mine is not None
    stray(mine, store_identity(url), 0)
    stray(state_dir() / "postgres-0123456789ab", "postgres://u@db/pw?pool_size=9&schema=s", 5)
    stray(state_dir() / "postgresql-aaaaaaaaaaaa", "postgresql://u@db:5432/pw?schema=s", 10, 15)
    stray(state_dir() / "postgresql-bbbbbbbbbbbb", "postgresql://u@db:5432/pw?schema=t", 20)
    stray(state_dir() / "postgresql-cccccccccccc", "postgresql://u@db:5432/pw?schema=s")
    assert [p.name for p in strays(mine, url)] == [
        "postgres-0123456789ab",
        "postgresql-aaaaaaaaaaaa",
    ]
    spool = Spool(mine, store=store_identity(url))
    spool.lock()
    with caplog.at_level(logging.WARNING, "pitwire.spool"):
        adopt_strays(spool)
    assert "postgres-0123456789ab" in caplog.text and "postgresql-aaaaaaaaaaaa" in caplog.text
    spool.open()
    assert [f[1] for f in frames_of(spool.read(100))] == [0, 5, 10, 15]
    assert spool.high_waters() == {("s1", "car-1"): 19}
    assert sorted(p.name for p in state_dir().iterdir()) == [
        mine.name,
        "postgresql-bbbbbbbbbbbb",
        "postgresql-cccccccccccc",
    ]
    spool.append([("s1", "car-1", 20, car_batch(20, 5))])  # after the adopted segments
    assert spool.segment_paths()[-1].name == "000000000005.spool"
    spool.close()


def test_a_stray_spool_in_use_is_left_to_its_server_and_one_that_cannot_move_is_named(
    caplog, monkeypatch
):
    """A spool folder of the same store that another server holds is not taken over (that
    server stores its frames); one whose segments cannot be moved gets an error naming it
    and how to store its frames."""
    url = "postgresql://u@db/pw"
    other = state_dir() / "postgresql-0123456789ab"
    stray(other, "postgres://u@db/pw?pool_size=9", 0)
    running = Spool(other)
    running.lock()
    spool = Spool(default_dir(url), store=store_identity(url))
    spool.lock()
    with caplog.at_level(logging.INFO, "pitwire.spool"):
        adopt_strays(spool)
    assert f"spool {other} also holds frames for this store" in caplog.text
    running.close()
    with pytest.raises(SpoolInUse):
        Spool(spool.directory).lock()

    def cross_device(src, dst):  # type: ignore[no-untyped-def]
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr("pitwire.server.spool.os.rename", cross_device)
    caplog.clear()
    with caplog.at_level(logging.ERROR, "pitwire.spool"):
        adopt_strays(spool)
    assert f"--spool-dir {other}" in caplog.text and "cross-device" in caplog.text
    spool.open()
    assert spool.is_empty() and list(other.glob("*.spool"))
    spool.close()


def test_abandon_removes_only_a_folder_it_created_that_holds_nothing(tmp_path):
    """A spool abandoned after a failed start removes the folder it created, but not one
    that was there before or one holding frames."""
    fresh = Spool(tmp_path / "new" / "spool", store="postgresql://db/a")
    fresh.open()
    fresh.abandon()
    assert not (tmp_path / "new" / "spool").exists()
    (tmp_path / "old").mkdir()
    there = Spool(tmp_path / "old")
    there.open()
    there.abandon()
    assert (tmp_path / "old").is_dir()
    holding = Spool(tmp_path / "full")
    holding.open()
    holding.append([("s1", "car-1", 0, car_batch(0, 5))])
    holding.abandon()
    again = Spool(tmp_path / "full")
    again.open()
    assert again.frames == 5
    again.close()


def test_a_spool_holding_frames_for_another_store_is_refused(tmp_path):
    """A spool with frames for one store refuses to open for another (it would drain them
    into the wrong database); an empty one is taken over."""
    spool = Spool(tmp_path, store="postgresql://db/a")
    spool.open()
    spool.append([("s1", "car-1", 0, car_batch(0, 5))])
    spool.close()
    with pytest.raises(SpoolError, match="postgresql://db/a"):
        Spool(tmp_path, store="postgresql://db/b").open()
    spool = Spool(tmp_path, store="postgresql://db/a")
    spool.open()
    spool.consume(spool.read(5)[-1][0], 5)
    spool.reset()
    spool.close()
    spool = Spool(tmp_path, store="postgresql://db/b")
    spool.open()
    assert (tmp_path / "store").read_text() == "postgresql://db/b\n"
    spool.close()


def test_frames_batches_of_one_frame_and_empty_reads(tmp_path):
    """A one-frame record round-trips, and reading an empty spool returns nothing."""
    spool = Spool(tmp_path)
    spool.open()
    assert spool.read(3) == [] and spool.is_empty()
    one = FrameBatch(np.array([7], np.int64), {"speed": np.array([1.5], np.float32)})
    spool.append([("s", "c", 41, one)])
    ((_, entry),) = spool.read(3)
    assert isinstance(entry, Spooled) and entry.first_seq == 41 and entry.batch.equals(one)
    spool.close()
