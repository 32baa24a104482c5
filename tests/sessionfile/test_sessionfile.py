"""Tests of the .pwr session file: round trips, damage, crashes, evolution, concurrency."""

from __future__ import annotations

import logging
import os
import random
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from pitwire import sessionfile
from pitwire.model.frames import FrameBatch
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.sessionfile import SessionFileError
from pwrgen import CHANNELS, INFO, T0, batch, same_at_resolution, streams

HERE = Path(__file__).parents[1]  # tests/, where pwrgen.py lives


def write_session(path: Path, *, cars: int = 3, frames: int = 600, chunk: int = 7, **opts):  # type: ignore[no-untyped-def]
    """Write ``frames`` frames per car in chunks, flushing after each round; the batches."""
    written: dict[str, list[FrameBatch]] = {f"car-{c}": [] for c in range(cars)}
    with sessionfile.create(path, INFO, streams=streams(cars), **opts) as w:
        for start in range(0, frames, chunk):
            for c in range(cars):
                b = batch(c, start, min(chunk, frames - start))
                w.write(f"car-{c}", b)
                written[f"car-{c}"].append(b)
            w.flush()
        w.add_lap(LapInfo(stream_id="car-0", lap=0, t0_ns=T0, t1_ns=T0 + 9, frames=10))
    return {k: FrameBatch.concat(v) for k, v in written.items()}


def test_round_trip_is_exact_at_resolution_with_schema_laps_and_index(tmp_path: Path) -> None:
    """Everything written reads back exact at each channel's resolution (bit for bit where
    a channel has none), with its streams, laps and an index."""
    path = tmp_path / "s.pwr"
    written = write_session(path, segment_s=1.0)
    with sessionfile.open(path) as r:
        assert r.problems == [] and not r.index_rebuilt
        assert r.info == INFO
        assert [s.stream_id for s in r.streams] == list(written)
        assert r.streams[0].channels == CHANNELS
        assert r.laps == [LapInfo(stream_id="car-0", lap=0, t0_ns=T0, t1_ns=T0 + 9, frames=10)]
        assert len(r.segments) > 3  # 6 s of data, a segment per second
        for sid, b in written.items():
            assert same_at_resolution(r.frames(sid), b)
        summary = {s.stream_id: s for s in r.summary()}
        assert summary["car-1"].frames == 600 and summary["car-1"].last_seq == 599
        assert summary["car-1"].t0_ns == T0 + 1


def test_seek_by_time_returns_exactly_the_frames_in_range(tmp_path: Path) -> None:
    """frames(t0_ns, t1_ns) gives the frames in the closed range, across segments."""
    path = tmp_path / "s.pwr"
    written = write_session(path, segment_s=0.5)
    lo, hi = T0 + 1_234_000_000, T0 + 3_456_000_000
    with sessionfile.open(path) as r:
        got = r.frames("car-0", t0_ns=lo, t1_ns=hi)
    want = written["car-0"]
    keep = (want.t_ns >= lo) & (want.t_ns <= hi)
    assert got.n == int(keep.sum()) > 0
    kept = FrameBatch(want.t_ns[keep], {k: c[keep] for k, c in want.columns.items()})
    assert same_at_resolution(got, kept)


def test_batches_stream_in_file_order_without_loading_everything(tmp_path: Path) -> None:
    """batches() yields every stream's frames in the order written."""
    path = tmp_path / "s.pwr"
    write_session(path, frames=70, chunk=7)
    with sessionfile.open(path) as r:
        order = [(sid, int(b.columns["packet_id"][0])) for sid, b in r.batches()]
    assert order[:4] == [("car-0", 0), ("car-1", 0), ("car-2", 0), ("car-0", 7)]
    assert len(order) == 30


def test_streams_declared_late_and_drivers_learned_later(tmp_path: Path) -> None:
    """Streams added mid-file, a driver renamed and a channel added all read back."""
    path = tmp_path / "s.pwr"
    extra = [*CHANNELS, CHANNELS[0].__class__(name="boost", unit="bar")]
    with sessionfile.create(path, INFO) as w:
        w.add_stream(streams(1)[0])
        w.write("car-0", batch(0, 0, 50))
        w.add_stream(StreamInfo(stream_id="car-9", driver="Late", channels=CHANNELS))
        w.write("car-9", batch(9, 0, 20))
        w.write("car-0", batch(0, 50, 50))
        w.add_stream(StreamInfo(stream_id="car-0", driver="Renamed", car="GT3", channels=CHANNELS))
        w.write("car-0", batch(0, 100, 10))
        b = batch(0, 110, 10)
        b.columns["boost"] = np.full(10, 1.5, np.float32)
        w.add_stream(StreamInfo(stream_id="car-0", driver="Renamed", channels=extra))
        w.write("car-0", b)
        w.update_session(SessionInfo(session_id=INFO.session_id, track="Monza"))
    with sessionfile.open(path) as r:
        assert r.info.track == "Monza"
        assert [(s.stream_id, s.driver) for s in r.streams] == [
            ("car-0", "Renamed"),
            ("car-9", "Late"),
        ]
        car0 = r.frames("car-0")  # batches before "boost" was declared have it as NaN
        assert car0.n == 120 and list(car0.columns) == [c.name for c in extra]
        assert np.isnan(car0.columns["boost"][:110]).all()
        assert (car0.columns["boost"][110:] == np.float32(1.5)).all()
        assert same_at_resolution(r.frames("car-9"), batch(9, 0, 20))


def test_several_threads_can_write_through_one_file(tmp_path: Path) -> None:
    """Four threads writing their own streams lose and mix nothing."""
    path = tmp_path / "s.pwr"
    w = sessionfile.create(path, INFO, streams=streams(4), flush_interval=0.005)

    def feed(car: int) -> None:
        for k in range(300):
            w.write(f"car-{car}", batch(car, k, 1))

    threads = [threading.Thread(target=feed, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    with sessionfile.open(path) as r:
        for c in range(4):
            assert same_at_resolution(r.frames(f"car-{c}"), batch(c, 0, 300))


def test_the_flusher_writes_within_the_interval_without_being_asked(tmp_path: Path) -> None:
    """Frames written and left alone are on disk within about flush_interval."""
    path = tmp_path / "s.pwr"
    w = sessionfile.create(path, INFO, streams=streams(1), flush_interval=0.05)
    w.write("car-0", batch(0, 0, 5))
    time.sleep(0.25)
    with sessionfile.open(path) as r:  # the writer is still open: no index yet
        assert r.index_rebuilt and same_at_resolution(r.frames("car-0"), batch(0, 0, 5))
    w.close()


def test_a_file_cut_at_every_offset_reads_the_blocks_before_the_cut(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """Truncated anywhere, the reader returns exactly the frames of whole blocks before the
    cut and warns, never raises (a cut inside the first bytes is 'not a session file')."""
    path = tmp_path / "s.pwr"
    write_session(path, cars=2, frames=40, chunk=5, segment_s=0.1)
    data = path.read_bytes()
    with sessionfile.open(path) as r:
        ends = _block_ends(r)
        data_end = r.data_end
        full = {s.stream_id: r.frames(s.stream_id) for s in r.streams}
    cut_path = tmp_path / "cut.pwr"
    for cut in range(len(data)):
        cut_path.write_bytes(data[:cut])
        if cut < 8:
            with pytest.raises(SessionFileError, match="not a pitwire session file"):
                sessionfile.open(cut_path)
            continue
        with caplog.at_level(logging.WARNING), sessionfile.open(cut_path) as r:
            whole = [e for e in ends if e[0] <= cut]
            expected = sum(e[1] for e in whole)
            got = sum(b.n for _, b in r.batches())
            assert got == expected, cut
            for sid, b in (
                (s, r.frames(s)) for s in full if any(x.stream_id == s for x in r.streams)
            ):
                assert same_at_resolution(b, full[sid].slice(0, b.n)), cut
            if cut < data_end and cut not in {e[0] for e in ends}:
                assert r.problems or r.data_end == r.data_start, cut  # damage is reported


def _block_ends(r: sessionfile.SessionReader) -> list[tuple[int, int]]:
    """(end offset, frames) of every DATA block, from the file itself."""
    from pitwire.sessionfile import format as fmt

    out = []
    for block in r._blocks(r.data_start, r.data_end):
        end = block.offset + fmt.BLOCK_HEAD.size + len(block.payload)
        frames = 0
        if block.kind == fmt.DATA:
            entries, _ = fmt.split_data_payload(block.payload)
            frames = sum(e.n for e in entries)
        out.append((end, frames))
    return out


def test_corrupt_bytes_never_raise_and_lose_only_their_segment(tmp_path: Path) -> None:
    """A flipped byte anywhere never raises; every frame read is one written, exact; frames
    go missing only with the damage listed in ``problems``, and only the damaged segment's
    (each segment decodes on its own)."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    path = tmp_path / "s.pwr"
    write_session(path, cars=2, frames=200, chunk=10, segment_s=0.3)
    data = path.read_bytes()
    with sessionfile.open(path) as r:
        full = {s.stream_id: r.frames(s.stream_id) for s in r.streams}
        segments = len(r.segments)
    assert segments > 4
    bad = tmp_path / "bad.pwr"
    for _ in range(200):
        pos = rng.randrange(8, len(data))
        damaged = bytearray(data)
        damaged[pos] ^= 1 << rng.randrange(8)
        bad.write_bytes(bytes(damaged))
        with sessionfile.open(bad) as r:
            for s in r.streams:
                if s.stream_id not in full:
                    continue
                got = r.frames(s.stream_id)
                want = full[s.stream_id]
                ids = got.columns["packet_id"].astype(int)
                assert np.all(np.diff(ids) > 0), pos
                picked = FrameBatch(want.t_ns[ids], {k: c[ids] for k, c in want.columns.items()})
                assert same_at_resolution(got, picked), pos
                if got.n < want.n:
                    assert r.problems, pos
                    assert got.n >= want.n * (segments - 2) / segments or r.index_rebuilt, pos


def test_damage_in_an_indexed_file_gives_the_same_answer_whatever_was_read_before(
    tmp_path: Path,
) -> None:
    """With an index, a damaged segment is skipped the same way whether a seek or a full
    read comes first."""
    path = tmp_path / "s.pwr"
    write_session(path, cars=1, frames=300, chunk=10, segment_s=0.5)
    with sessionfile.open(path) as r:
        second = r.segments[1].offset
    data = bytearray(path.read_bytes())
    data[second + 40] ^= 0xFF  # inside the second segment's first block
    path.write_bytes(bytes(data))
    late = T0 + 2_000_000_000
    with sessionfile.open(path) as r:
        seek_first = r.frames("car-0", t0_ns=late).n
        whole = r.frames("car-0")
        seek_again = r.frames("car-0", t0_ns=late).n
        assert r.problems and "rest of this segment is not read" in r.problems[0]
    assert seek_first == seek_again > 0
    assert 0 < whole.n < 300


def test_not_a_session_file_and_newer_versions_are_refused(tmp_path: Path) -> None:
    """Other files and files of a newer format version raise SessionFileError with advice."""
    other = tmp_path / "notes.pwr"
    other.write_bytes(b"hello, world")
    with pytest.raises(SessionFileError, match="not a pitwire session file"):
        sessionfile.open(other)
    path = tmp_path / "s.pwr"
    write_session(path, frames=10)
    data = bytearray(path.read_bytes())
    data[8] = 99  # a newer writer: its header checksum covers the version
    (length,) = struct.unpack_from("<I", data, 12)
    struct.pack_into("<I", data, 16 + length, zlib.crc32(bytes(data[8 : 16 + length])))
    path.write_bytes(bytes(data))
    with pytest.raises(SessionFileError, match=r"version 99.*upgrade pitwire"):
        sessionfile.open(path)
    with pytest.raises(SessionFileError, match="cannot open"):
        sessionfile.open(tmp_path / "missing.pwr")


def test_create_refuses_to_overwrite_and_checks_what_is_written(tmp_path: Path) -> None:
    """An existing file is not overwritten; undeclared streams and missing channels are errors."""
    path = tmp_path / "s.pwr"
    write_session(path, frames=5)
    with pytest.raises(SessionFileError, match="exists"):
        sessionfile.create(path, INFO)
    with sessionfile.create(tmp_path / "t.pwr", INFO, streams=streams(1)) as w:
        with pytest.raises(KeyError, match="add_stream"):
            w.write("car-7", batch(7, 0, 1))
        b = batch(0, 0, 1)
        del b.columns["rpm"]
        with pytest.raises(ValueError, match="lacks rpm"):
            w.write("car-0", b)


@pytest.mark.parametrize("run", range(50))
def test_a_writer_killed_at_a_random_moment_loses_nothing_it_flushed(
    tmp_path: Path, run: int
) -> None:
    """SIGKILL of a writing process: every frame it reported flushed is read back exactly."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    delay = random.Random(seed).uniform(0.05, 0.4)
    path = tmp_path / "killed.pwr"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "pwrgen.py"), str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    flushed = 0
    deadline = time.monotonic() + delay
    first = proc.stdout.readline()  # the writer is up
    assert first.startswith("flushed"), first
    flushed = int(first.split()[1])
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("flushed"):
            flushed = int(line.split()[1])
    proc.kill()
    proc.wait()
    proc.stdout.close()
    with sessionfile.open(path) as r:
        for car in range(3):
            got = r.frames(f"car-{car}")
            assert got.n >= flushed
            assert same_at_resolution(got, batch(car, 0, got.n))


def test_what_was_read_back_writes_and_reads_back_bit_for_bit(tmp_path: Path) -> None:
    """Values already at their resolution (anything read from a file) round-trip exactly:
    quantizing is idempotent, so re-saving a session changes nothing."""
    first, second = tmp_path / "a.pwr", tmp_path / "b.pwr"
    write_session(first, cars=1, frames=300)
    with sessionfile.open(first) as r:
        once = r.frames("car-0")
    with sessionfile.create(second, INFO, streams=streams(1)) as w:
        w.write("car-0", once)
    with sessionfile.open(second) as r:
        assert r.frames("car-0").equals(once)


def test_values_that_cannot_be_quantized_are_kept_exactly(tmp_path: Path) -> None:
    """NaN, infinities and values beyond 2**53 steps survive as they were."""
    path = tmp_path / "s.pwr"
    b = batch(0, 0, 6)
    b.columns["speed"][[1, 2, 3]] = [np.nan, np.inf, -np.inf]
    b.columns["rpm"][4] = np.float32(3e38)
    with sessionfile.create(path, INFO, streams=streams(1)) as w:
        w.write("car-0", b)
    with sessionfile.open(path) as r:
        got = r.frames("car-0")
    assert np.isnan(got.columns["speed"][1]) and got.columns["speed"][2] == np.inf
    assert got.columns["speed"][3] == -np.inf and got.columns["rpm"][4] == np.float32(3e38)
    assert same_at_resolution(got, b)


def test_a_failed_write_leaves_everything_before_it_readable(tmp_path: Path) -> None:
    """A write error (disk full) ends writing with a clear error; what was written before
    reads back exactly and nothing after it is garbage."""
    path = tmp_path / "s.pwr"
    w = sessionfile.create(path, INFO, streams=streams(1), flush_interval=3600)
    w.write("car-0", batch(0, 0, 20))
    w.flush()

    class Full:
        def __init__(self, f):  # type: ignore[no-untyped-def]
            self.f = f

        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(self.f, name)

    w._file = Full(w._file)  # type: ignore[assignment]
    w.write("car-0", batch(0, 20, 20))
    with pytest.raises(SessionFileError, match="No space left"):
        w.flush()
    w.write("car-0", batch(0, 40, 20))
    with pytest.raises(SessionFileError, match="an earlier write failed"):
        w.flush()
    w.close()  # never raises: closes the file and stops the flusher
    with sessionfile.open(path) as r:
        assert same_at_resolution(r.frames("car-0"), batch(0, 0, 20))


def test_a_damaged_header_of_a_closed_file_is_read_through_the_index(tmp_path: Path) -> None:
    """A flipped byte in the header costs nothing when the file was closed: the index
    holds the session, the streams and where the data starts."""
    path = tmp_path / "s.pwr"
    written = write_session(path, cars=2, frames=100)
    data = bytearray(path.read_bytes())
    data[40] ^= 0x10
    path.write_bytes(bytes(data))
    with sessionfile.open(path) as r:
        assert r.problems and "read through the index" in r.problems[0]
        assert r.info == INFO
        for sid, b in written.items():
            assert same_at_resolution(r.frames(sid), b)


def test_overwrite_makes_a_new_file_and_leaves_an_old_writer_alone(tmp_path: Path) -> None:
    """overwrite=True replaces the file without truncating it under a writer still busy
    with it: the new file reads back whole."""
    path = tmp_path / "s.pwr"
    old = sessionfile.create(path, INFO, streams=streams(1))
    old.write("car-0", batch(0, 0, 10))
    old.flush()
    with sessionfile.create(path, INFO, streams=streams(1), overwrite=True) as new:
        new.write("car-0", batch(0, 100, 30))
    old.write("car-0", batch(0, 10, 10))
    old.close()
    with sessionfile.open(path) as r:
        assert r.problems == []
        assert same_at_resolution(r.frames("car-0"), batch(0, 100, 30))
