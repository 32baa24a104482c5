"""Tests of the agent's on-disk spool (pitwire.agent.spool): round trips, damage, rotation,
the bound, crashes and memory use."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pitwire.agent.spool import MAGIC, Spool, SpoolError, SpoolLocked, discard, session_dirs
from pitwire.protocol import frames
from pitwire.protocol.messages import ChannelDesc

CHANNELS = [ChannelDesc(id=0, name="speed", unit="km/h"), ChannelDesc(id=1, name="rpm")]


def frame(sid: int, seq: int, n: int, width: int = 2) -> bytes:
    """An encoded data frame of stream id ``sid``: frames seq .. seq + n - 1."""
    t = np.arange(seq, seq + n, dtype=np.int64) * 16_666_667
    cols = [(c, np.full(n, seq + c, np.float32)) for c in range(width)]
    return frames.serialize(group=sid, seq=seq, t_ns=t, columns=cols)


def declare(spool: Spool, *streams: str) -> None:
    spool.note_session(session="s1", track="Monza", source="sim", started_ns=5)
    for i, stream in enumerate(streams, 1):
        spool.note_stream(stream, id=i, channels=CHANNELS, driver=f"D{i}", car="GT3")


def fill(spool: Spool, stream: str, first: int, batches: int, n: int = 10) -> None:
    sid = next(k.id for k in spool.restored() if k.stream == stream)
    for b in range(batches):
        seq = first + b * n
        spool.keep(stream, seq + n - 1, frame(sid, seq, n), n)


def seqs(spool: Spool, after: dict[str, int]) -> list[tuple[str, int, int]]:
    """(stream, first seq, n) of what ``pending`` yields, read from the frames themselves."""
    out = []
    for stream, last, data in spool.pending(after):
        df = frames.parse(data)
        assert df.seq + df.n - 1 == last
        out.append((stream, df.seq, df.n))
    return out


CRASH = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from pitwire.agent.spool import Spool
    from pitwire.protocol import frames
    from pitwire.protocol.messages import ChannelDesc

    chans = [ChannelDesc(id=0, name="speed", unit="km/h"), ChannelDesc(id=1, name="rpm")]

    def frame(sid, seq, n):
        t = np.arange(seq, seq + n, dtype=np.int64) * 16_666_667
        cols = [(c, np.full(n, seq + c, np.float32)) for c in range(2)]
        return frames.serialize(group=sid, seq=seq, t_ns=t, columns=cols)

    spool = Spool(sys.argv[1], max_bytes=10**8, segment_bytes=4096)
    spool.note_session(session="s1", track="Monza", source="sim", started_ns=5)
    spool.note_stream("car-1", id=1, channels=chans, driver="D1", car="GT3")
    spool.note_stream("car-2", id=2, channels=chans, driver="D2", car="GT3")
    spool.rebase("car-1", 100)  # car-1 follows the server from seq 100
    for seq in range(100, 400, 10):
        spool.keep("car-1", seq + 9, frame(1, seq, 10), 10)
    spool.release("car-1", 199)
    for seq in range(0, 50, 10):  # car-2 never got its first ack: provisional
        spool.keep("car-2", seq + 9, frame(2, seq, 10), 10)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def crashed_spool(directory: Path) -> None:
    """Write a spool in another process that is then killed with SIGKILL mid-run."""
    proc = subprocess.run([sys.executable, "-c", CRASH, str(directory)], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()


def test_frames_round_trip_in_order_with_their_bytes(tmp_path):
    """Kept frames come back from ``pending`` byte for byte, oldest first per stream, and
    only those above the floor asked for."""
    with Spool(tmp_path / "s1") as spool:
        declare(spool, "car-1", "car-2")
        spool.rebase("car-1", 0)
        spool.rebase("car-2", 0)
        kept = {}
        for seq in range(0, 50, 10):
            for sid, stream in ((1, "car-1"), (2, "car-2")):
                kept[(stream, seq + 9)] = frame(sid, seq, 10)
                spool.keep(stream, seq + 9, kept[(stream, seq + 9)], 10)
        assert spool.frames == 100
        got = list(spool.pending({"car-1": 19, "car-2": -1}))
        assert [(s, last) for s, last, _ in got if s == "car-1"] == [
            ("car-1", 29),
            ("car-1", 39),
            ("car-1", 49),
        ]
        assert [last for s, last, _ in got if s == "car-2"] == [9, 19, 29, 39, 49]
        assert all(data == kept[(s, last)] for s, last, data in got)


def test_release_forgets_acked_frames_and_close_removes_a_settled_spool(tmp_path):
    """Acked frames are no longer pending; once all are acked, close() removes the folder."""
    directory = tmp_path / "s1"
    spool = Spool(directory)
    declare(spool, "car-1")
    spool.rebase("car-1", 0)
    fill(spool, "car-1", 0, 5)
    spool.release("car-1", 24)
    assert spool.frames == 25
    assert [seq for _, seq, _ in seqs(spool, {"car-1": -1})] == [20, 30, 40]
    spool.release("car-1", 49)
    assert spool.frames == 0
    spool.close()
    assert not directory.exists()


def test_unacked_frames_stay_on_disk_after_close(tmp_path):
    """close() with unacked frames keeps the folder; reopening restores streams and frames."""
    directory = tmp_path / "s1"
    with Spool(directory, server="ws://x/ws/ingest") as spool:
        declare(spool, "car-1")
        spool.rebase("car-1", 7)
        fill(spool, "car-1", 7, 3)
        spool.release("car-1", 16)
    with Spool(directory) as again:
        [kept] = again.restored()
        assert (kept.stream, kept.id, kept.driver, kept.car) == ("car-1", 1, "D1", "GT3")
        assert kept.channels == CHANNELS
        assert (kept.next_seq, kept.synced, kept.acked) == (37, True, 16)
        assert again.session_info is not None
        assert (again.session_info.track, again.session_info.server) == (
            "Monza",
            "ws://x/ws/ingest",
        )
        assert seqs(again, {"car-1": 16}) == [("car-1", 17, 10), ("car-1", 27, 10)]


def test_a_spool_in_use_is_locked(tmp_path):
    """A second Spool on a folder in use raises SpoolLocked; after close it opens."""
    first = Spool(tmp_path / "s1")
    declare(first, "car-1")
    fill(first, "car-1", 0, 1)
    with pytest.raises(SpoolLocked, match="in use by another running agent"):
        Spool(tmp_path / "s1")
    first.close()
    Spool(tmp_path / "s1").close()


def test_an_unusable_folder_raises_spool_error(tmp_path):
    """A spool folder that cannot be created raises SpoolError naming it."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(SpoolError, match="cannot use spool directory"):
        Spool(tmp_path / "file" / "s1")


def test_segments_rotate_and_are_deleted_once_acked(tmp_path):
    """Segments rotate at segment_bytes; acked ones are deleted, so disk use follows what is
    unacked."""
    directory = tmp_path / "s1"
    with Spool(directory, segment_bytes=2048) as spool:
        declare(spool, "car-1", "car-2")
        spool.rebase("car-1", 0)
        spool.rebase("car-2", 0)
        for b in range(40):
            fill(spool, "car-1", b * 10, 1)
            fill(spool, "car-2", b * 10, 1)
        files = sorted(directory.glob("*.spool"))
        assert len(files) > 5
        spool.release("car-1", 399)
        assert len(list(directory.glob("*.spool"))) == len(files)  # car-2 still unacked
        spool.release("car-2", 199)
        left = sorted(directory.glob("*.spool"))
        assert 1 < len(left) < len(files) // 2 + 2
        assert seqs(spool, {"car-1": -1, "car-2": -1})[0] == ("car-2", 200, 10)
        spool.release("car-2", 399)
        assert len(list(directory.glob("*.spool"))) <= 1
        assert spool.frames == 0


def test_the_bound_drops_the_oldest_frames_counts_and_lists_them(tmp_path):
    """Past max_bytes the oldest segment goes: its unacked frames are counted in ``dropped``
    and listed by ``drops()`` with stream and seqs, and the rest stays contiguous up to the
    newest."""
    with Spool(tmp_path / "s1", max_bytes=20_000, segment_bytes=4000) as spool:
        declare(spool, "car-1")
        spool.rebase("car-1", 0)
        fill(spool, "car-1", 0, 200)
        assert spool.size <= 20_000
        kept = seqs(spool, {"car-1": -1})
        assert spool.dropped > 0
        assert spool.dropped + spool.frames == 2000
        assert kept[0][1] == spool.dropped and kept[-1] == ("car-1", 1990, 10)
        assert [s for _, s, _ in kept] == list(range(spool.dropped, 2000, 10))
        drops = spool.drops()
        assert spool.drops() == []  # each listed once
    assert sum(d.n for d in drops) == spool.dropped
    assert {(d.stream, d.reason) for d in drops} == {("car-1", "spool full (--spool-max)")}
    covered = [seq for d in drops for seq in range(d.first, d.last + 1)]
    assert covered == list(range(spool.dropped))  # oldest first, each seq once


def test_acked_frames_are_not_counted_as_dropped(tmp_path):
    """A segment deleted for the bound drops only the frames the server had not acked."""
    with Spool(tmp_path / "s1", max_bytes=20_000, segment_bytes=4000) as spool:
        declare(spool, "car-1", "car-2")
        spool.rebase("car-1", 0)
        spool.rebase("car-2", 0)
        for b in range(100):
            fill(spool, "car-1", b * 10, 1)
            fill(spool, "car-2", b * 10, 1)
            spool.release("car-1", b * 10 + 9)
        assert spool.dropped > 0
        assert spool.dropped + spool.frames == 1000  # car-2's frames only
        assert seqs(spool, {"car-1": -1, "car-2": -1})[0][0] == "car-2"


def test_a_killed_writer_leaves_a_spool_that_reopens_where_it_stopped(tmp_path):
    """After SIGKILL of the writing process the spool reopens with its streams, numbering,
    acks and every unacked frame; provisional frames stay provisional until rebased."""
    directory = tmp_path / "s1"
    crashed_spool(directory)
    with Spool(directory) as spool:
        kept = {k.stream: k for k in spool.restored()}
        assert (kept["car-1"].next_seq, kept["car-1"].synced, kept["car-1"].acked) == (
            400,
            True,
            199,
        )
        assert (kept["car-2"].next_seq, kept["car-2"].synced) == (50, False)
        assert spool.frames == 200 + 50
        assert [s for _, s, _ in seqs(spool, {"car-1": 199})] == list(range(200, 400, 10))
        assert seqs(spool, {"car-2": -1}) == []  # not rebased: not sendable yet
        spool.rebase("car-2", 1000)
        assert [s for _, s, _ in seqs(spool, {"car-2": -1})] == list(range(1000, 1050, 10))
        assert spool.restored()[1].next_seq == 1050


def test_a_torn_tail_is_ignored_with_a_warning(tmp_path, caplog):
    """A record cut short at the end of a segment (the write a kill interrupted) and what
    follows it are ignored; everything before is read."""
    caplog.set_level(logging.WARNING, "pitwire.agent")
    directory = tmp_path / "s1"
    crashed_spool(directory)
    last = sorted(directory.glob("*.spool"))[-1]
    whole = last.read_bytes()
    with open(last, "ab") as f:
        f.write(whole[len(MAGIC) : len(MAGIC) + 30])  # the start of a record, cut short
    with Spool(directory) as spool:
        assert spool.frames == 250
    assert "damaged or incomplete record" in caplog.text


def test_a_corrupt_record_ends_its_segment_only(tmp_path, caplog):
    """A record failing its checksum ends the reading of that segment; other segments and the
    records before it are read."""
    caplog.set_level(logging.WARNING, "pitwire.agent")
    directory = tmp_path / "s1"
    with Spool(directory, segment_bytes=2048) as spool:
        declare(spool, "car-1")
        spool.rebase("car-1", 0)
        fill(spool, "car-1", 0, 30)
    files = sorted(directory.glob("*.spool"))
    middle = files[len(files) // 2]
    data = bytearray(middle.read_bytes())
    data[-5] ^= 0xFF  # inside the last record's frame
    middle.write_bytes(bytes(data))
    with Spool(directory) as spool:
        got = [s for _, s, _ in seqs(spool, {"car-1": -1})]
        assert got[0] == 0 and got[-1] == 290
        assert 0 < 30 - len(got) <= 1
    assert "damaged or incomplete record" in caplog.text


def test_a_failed_write_is_counted_as_dropped_and_later_writes_work(tmp_path, monkeypatch):
    """A write the OS refuses (disk full) loses that batch (counted in ``dropped``) without
    raising; the spool keeps working afterwards."""
    with Spool(tmp_path / "s1") as spool:
        declare(spool, "car-1")
        spool.rebase("car-1", 0)
        fill(spool, "car-1", 0, 1)

        def full(fd: int, parts: object) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "writev", full)
        monkeypatch.setattr(os, "write", full)
        fill(spool, "car-1", 10, 1)
        monkeypatch.undo()
        fill(spool, "car-1", 20, 1)
        assert (spool.dropped, spool.write_errors) == (10, 1)
        assert [s for _, s, _ in seqs(spool, {"car-1": -1})] == [0, 20]


def test_memory_stays_small_while_the_spool_grows(tmp_path):
    """Keeping ~30 MB of frames grows the process's memory by well under a megabyte: only
    small per-segment summaries stay in memory."""
    with Spool(tmp_path / "s1", max_bytes=10**9) as spool:
        declare(spool, *(f"car-{i}" for i in range(1, 21)))
        for i in range(1, 21):
            spool.rebase(f"car-{i}", 0)
        data = {i: frame(i, 0, 1, width=60) for i in range(1, 21)}  # ~550 bytes each
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for seq in range(1800):  # 30 s of 20 cars at 60 Hz
                for i in range(1, 21):
                    spool.keep(f"car-{i}", seq, data[i], 1)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert spool.size > 25_000_000
        assert spool.frames == 36_000
        assert grown < 500_000, grown


def test_session_dirs_lists_the_folders_holding_segments(tmp_path):
    """session_dirs finds the session folders of a spool root that hold segments."""
    for name in ("a", "b"):
        with Spool(tmp_path / name) as spool:
            declare(spool, "car-1")
            fill(spool, "car-1", 0, 1)
    (tmp_path / "empty").mkdir()
    assert sorted(d.name for d in session_dirs(tmp_path)) == ["a", "b"]
    assert session_dirs(tmp_path / "missing") == []


def test_a_failed_write_of_frames_the_server_then_acks_is_not_numbered_again(tmp_path, monkeypatch):
    """A batch whose write failed (disk full) is still sent; once the server acks it, a
    reopened spool numbers the stream's new frames past it, not from the last frame it
    holds."""
    directory = tmp_path / "s1"
    with Spool(directory) as spool:
        declare(spool, "car-1", "car-2")
        spool.rebase("car-1", 0)
        spool.rebase("car-2", 0)
        fill(spool, "car-1", 0, 1)

        def full(fd: int, parts: object) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "writev", full)
        monkeypatch.setattr(os, "write", full)
        fill(spool, "car-1", 10, 1)
        monkeypatch.undo()
        fill(spool, "car-2", 0, 1)  # not acked: the spool stays
        spool.release("car-1", 19)
    with Spool(directory) as again:
        kept = {k.stream: k for k in again.restored()}
        assert (kept["car-1"].next_seq, kept["car-1"].acked) == (20, 19)


def test_move_renumbers_the_frames_from_a_seq_and_survives_a_reopen(tmp_path):
    """``move`` shifts the kept frames whose last seq is ``lo`` or more (provisional ones
    included), seqs in the frames too; the numbering continues after them, also in a
    reopened spool, and later frames are not moved again."""
    directory = tmp_path / "s1"
    with Spool(directory, segment_bytes=2048) as spool:
        declare(spool, "car-1")
        fill(spool, "car-1", 0, 3)  # provisional 0..29
        spool.rebase("car-1", 100)  # 100..129
        fill(spool, "car-1", 130, 12)  # 130..249
        spool.release("car-1", 109)
        # The server holds frames up to 169: 120..249 → 170..299, and it acks 169.
        spool.move("car-1", 120, 50)
        spool.release("car-1", 169)
        assert spool.restored()[0].next_seq == 300
        fill(spool, "car-1", 300, 2)
        assert len(list(directory.glob("*.spool"))) > 1
        want = list(range(170, 320, 10))
        assert [s for _, s, _ in seqs(spool, {"car-1": -1})] == want
        assert spool.frames == 150
    with Spool(directory) as again:
        [kept] = again.restored()
        assert (kept.next_seq, kept.synced, kept.acked) == (320, True, 169)
        assert [s for _, s, _ in seqs(again, {"car-1": -1})] == want
        assert again.frames == 150
        again.release("car-1", 299)
        assert [s for _, s, _ in seqs(again, {"car-1": -1})] == [300, 310]
        assert again.frames == 20


class PowerCut:
    """The OS's page cache, modelled: a spool file's content reaches the disk when it is
    fsynced (any fsync writes out every file here) or at ``writeback()`` (the kernel
    writing dirty pages on its own); deletions reach it at once (the worst case).
    ``cut(spool)`` stops the spool and leaves its folder as a power cut would."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.directory = directory
        self.disk: dict[str, bytes] = {}
        self.on = True
        fsync = os.fsync

        def fake(fd: int) -> None:
            fsync(fd)
            if self.on:
                self.writeback()

        monkeypatch.setattr(os, "fsync", fake)

    def writeback(self) -> None:
        self.disk = {p.name: p.read_bytes() for p in self.directory.glob("*.spool")}

    def cut(self, spool: Spool) -> None:
        self.on = False
        spool.close()
        for path in self.directory.glob("*.spool"):
            if path.name in self.disk:
                path.write_bytes(self.disk[path.name])
            else:
                path.unlink()


def test_a_rebase_survives_a_power_cut(tmp_path, monkeypatch):
    """A stream's rebase (its first ack) is fsynced: after a power cut the frames written
    before it come back in the server's numbering, not as provisional ones that the next
    ack would shift a second time."""
    directory = tmp_path / "s1"
    power = PowerCut(directory, monkeypatch)
    spool = Spool(directory)
    declare(spool, "car-1")
    fill(spool, "car-1", 0, 5)  # provisional 0..49
    power.writeback()
    spool.rebase("car-1", 500)  # the server stores 0..499: these are 500..549, and sent
    fill(spool, "car-1", 550, 2)
    power.cut(spool)
    with Spool(directory) as again:
        [kept] = again.restored()
        assert kept.synced and kept.next_seq >= 550
        assert [s for _, s, _ in seqs(again, {"car-1": -1})][:5] == list(range(500, 550, 10))


def test_deleting_the_segment_holding_a_rebase_first_puts_it_on_disk_in_a_newer_one(
    tmp_path, monkeypatch
):
    """The segment that holds a stream's rebase on disk is deleted (all its frames acked)
    only once a newer segment holding it is fsynced: else a power cut could leave the
    stream's older provisional frames without their shift."""
    directory = tmp_path / "s1"
    power = PowerCut(directory, monkeypatch)
    spool = Spool(directory, segment_bytes=2048)
    declare(spool, "car-1", "car-2")
    fill(spool, "car-1", 0, 5)  # provisional, in segment 1
    spool.rebase("car-2", 0)
    spool._rotate()  # segment 2: car-1's rebase and car-2's frames
    spool.rebase("car-1", 300)  # car-1: 300..349, not acked yet
    power.writeback()
    fill(spool, "car-2", 0, 12)  # rotates
    assert len(list(directory.glob("*.spool"))) == 3
    spool.release("car-2", 119)  # segment 2 is settled and deleted
    assert len(list(directory.glob("*.spool"))) == 2
    power.cut(spool)
    with Spool(directory) as again:
        kept = {k.stream: k for k in again.restored()}
        assert kept["car-1"].synced and kept["car-1"].next_seq == 350
        assert [s for _, s, _ in seqs(again, {"car-1": -1})] == list(range(300, 350, 10))


def test_a_backlog_resent_in_pieces_reaches_the_server_once_with_exactly_the_reported_drops(
    tmp_path,
):
    """An AgentPeer on a real Spool re-sends a backlog of many segments a piece at a time
    while the server's acks delete segments behind the pass and new frames push the oldest
    unsent segment over the bound: every frame the spool does not report dropped reaches the
    IngestPeer exactly once and in seq order, and the ones that never arrive are exactly
    the ranges the AgentPeer reports lost (``FramesDropped``)."""
    from pitwire.protocol.peer import AgentPeer, DataReceived, FramesDropped, IngestPeer
    from support import car_batch, car_channels

    cars = ("car-1", "car-2")
    spool = Spool(tmp_path / "s1", max_bytes=40_000, segment_bytes=3_000)
    agent = AgentPeer(
        session="s1",
        streams=[(car, car_channels(), "", "") for car in cars],
        keeper=spool,
        max_out_bytes=1_500,
    )
    batches = 0

    def more(k: int) -> None:
        nonlocal batches
        for _ in range(k):
            for car in cars:
                agent.send_batch(car, car_batch(batches * 5, 5))
            batches += 1

    more(120)  # kept while the server is away: about the bound
    ingest = IngestPeer()

    def exchange(out: list[str | bytes]) -> list[DataReceived]:
        for item in out:
            if isinstance(item, bytes):
                ingest.receive_bytes(item)
            else:
                ingest.receive_text(item)
        return [ev for ev in ingest.events() if isinstance(ev, DataReceived)]

    agent.connection_made()
    exchange(agent.outgoing())
    for car in cars:
        ingest.ack(car, -1)
    for item in ingest.outgoing():
        agent.receive_text(item)
    before = spool.dropped
    got: dict[str, list[int]] = {car: [] for car in cars}
    pieces = deleted = 0
    while agent.backlog:
        files = len(spool._segments)
        for ev in exchange(agent.outgoing()):
            got[ev.stream] += range(ev.seq, ev.seq + ev.batch.n)
            ingest.ack(ev.stream, ev.seq + ev.batch.n - 1)  # the server stores each at once
        for item in ingest.outgoing():
            agent.receive_text(item)
        deleted += len(spool._segments) < files
        more(3 if pieces < 40 else 0)  # the pass gains on them: 6 batches a piece
        pieces += 1
        assert pieces < 1000
    assert pieces > 40 and deleted > 5
    assert spool.dropped > before  # dropped during the pass, not only before it
    reported: dict[str, set[int]] = {car: set() for car in cars}
    count = 0
    agent.settle()
    for ev in agent.events():  # (provisional seqs are the server's: the shift is 0)
        if isinstance(ev, FramesDropped):
            reported[ev.stream] |= set(range(ev.first, ev.last + 1))
            count += ev.n
    assert count == spool.dropped == agent.dropped
    for car in cars:
        assert got[car] == sorted(set(got[car]))  # once each, in seq order
        assert not set(got[car]) & reported[car]
        assert set(got[car]) | reported[car] == set(range(batches * 5))
    spool.close()


def test_segments_dropped_while_their_frames_wait_for_the_ack_are_stored_all_the_same(tmp_path):
    """The spool is smaller than what waits for acks (a healthy server acking late): it
    drops segments whose frames were already sent; the acks then cover them, so the peer
    reports nothing lost and ``dropped`` ends at 0, while every frame reached the server."""
    from pitwire.protocol.peer import AgentPeer, DataReceived, FramesDropped, IngestPeer
    from support import car_batch, car_channels

    spool = Spool(tmp_path / "s1", max_bytes=20_000, segment_bytes=2_000)
    agent = AgentPeer(session="s1", streams=[("car-1", car_channels(), "", "")], keeper=spool)
    ingest = IngestPeer()

    def exchange(out: list[str | bytes]) -> list[DataReceived]:
        for item in out:
            if isinstance(item, bytes):
                ingest.receive_bytes(item)
            else:
                ingest.receive_text(item)
        return [ev for ev in ingest.events() if isinstance(ev, DataReceived)]

    def acks() -> None:
        for item in ingest.outgoing():
            agent.receive_text(item)

    agent.connection_made()
    exchange(agent.outgoing())
    ingest.ack("car-1", -1)
    acks()
    got: list[int] = []
    waiting: list[int] = []  # last seqs received, acked 150 batches later
    for i in range(400):
        agent.send_batch("car-1", car_batch(i * 5, 5))
        for ev in exchange(agent.outgoing()):
            got += range(ev.seq, ev.seq + ev.batch.n)
            waiting.append(ev.seq + ev.batch.n - 1)
        if len(waiting) > 150:
            ingest.ack("car-1", waiting.pop(0))
            acks()
    assert spool.dropped > 500  # segments of sent frames went for the bound
    assert 0 < agent.dropped <= 150 * 5  # those not acked yet
    ingest.ack("car-1", waiting[-1])
    acks()
    agent.settle()
    assert [e for e in agent.events() if isinstance(e, FramesDropped)] == []
    assert (agent.dropped, agent.recovered) == (0, spool.dropped)
    assert got == list(range(2000))
    spool.close()


def test_the_spool_keeps_the_server_url_without_its_password_in_private_files(tmp_path):
    """The server URL recorded in the spool has its password masked (it is never needed: an
    agent resends a spool only when run with that --server); the folders are 0700 and the
    files 0600."""
    directory = tmp_path / "root" / "s1"
    with Spool(directory, server="ws://bob:S3cretPW@127.0.0.1:8699/ws/ingest?password=x") as spool:
        declare(spool, "car-1")
        fill(spool, "car-1", 0, 2)
    assert b"S3cretPW" not in b"".join(p.read_bytes() for p in directory.iterdir())
    with Spool(directory) as again:
        assert again.session_info is not None
        assert again.session_info.server == "ws://bob:***@127.0.0.1:8699/ws/ingest?password=***"
    if sys.platform != "win32":
        assert (directory.stat().st_mode & 0o777, directory.parent.stat().st_mode & 0o777) == (
            0o700,
            0o700,
        )
        assert {p.stat().st_mode & 0o777 for p in directory.iterdir()} == {0o600}


def test_discard_deletes_a_spool_and_says_what_it_held(tmp_path):
    """``discard`` deletes a spool folder with its unsent frames and returns how many there
    were and for which server; a spool in use or a missing folder raise."""
    with Spool(tmp_path / "s1", server="ws://h:1/ws/ingest") as spool:
        declare(spool, "car-1")
        fill(spool, "car-1", 0, 3)
        with pytest.raises(SpoolLocked):
            discard(tmp_path / "s1")
    assert discard(tmp_path / "s1") == (30, "ws://h:1/ws/ingest")
    assert not (tmp_path / "s1").exists()
    with pytest.raises(SpoolError, match="no spool in"):
        discard(tmp_path / "s1")
