import asyncio
import logging
import time

import pytest

from pitwire.sources.base import Received, SourceError
from pitwire.sources.rawcapture import CaptureError, RawReplayTransport, RawWriter, read


def _write(path, items, source="f1"):  # type: ignore[no-untyped-def]
    w = RawWriter(path, source=source)
    for item in items:
        w.write(item)
    w.close()


async def _until_eof(t: RawReplayTransport) -> list[Received]:
    got: list[Received] = []
    try:
        while True:
            got += await t.receive(1.0)
    except EOFError:
        return got


ITEMS = [
    Received(bytes(range(i % 256)) * 3, 1_700_000_000_000_000_000 + i * 10**7, "")
    for i in range(40)
]


def test_records_round_trip_with_times_and_tags(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every record comes back byte for byte with its receive time and tag."""
    items = [*ITEMS, Received(b"\x00" * 800, 5, "physics"), Received(b"", 6, "static")]
    _write(tmp_path / "cap.pwraw", items)
    meta, records = read(tmp_path / "cap.pwraw")
    assert meta["source"] == "f1"
    assert list(records) == items


def test_a_truncated_tail_ends_reading_with_a_warning(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A capture cut at any byte inside its records yields the whole records before the cut."""
    path = tmp_path / "cap.pwraw"
    _write(path, ITEMS[:5])
    data = path.read_bytes()
    sizes = [14 + len(r.data) for r in ITEMS[:5]]
    header = len(data) - sum(sizes)
    for cut in range(header, len(data)):
        (tmp_path / "cut.pwraw").write_bytes(data[:cut])
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            _, records = read(tmp_path / "cut.pwraw")
            got = list(records)
        whole = sum(1 for k in range(5) if header + sum(sizes[: k + 1]) <= cut)
        assert got == ITEMS[:whole]
        assert ("ends mid-record" in caplog.text) == (cut != header + sum(sizes[:whole]))


def test_a_file_that_is_not_a_capture_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Reading something else raises CaptureError saying what the file should be."""
    (tmp_path / "x.pwraw").write_bytes(b"hello world, not a capture")
    with pytest.raises(CaptureError, match="not a pitwire raw capture"):
        read(tmp_path / "x.pwraw")
    (tmp_path / "v9.pwraw").write_bytes(b"PWRAW\x00\x09\n" + bytes(8))
    with pytest.raises(CaptureError, match="version 9"):
        read(tmp_path / "v9.pwraw")
    with pytest.raises(SourceError, match="cannot read"):
        read(tmp_path / "missing.pwraw")


async def test_replay_as_fast_as_possible_gives_every_record(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Speed 0 hands over every record, then EOFError."""
    _write(tmp_path / "cap.pwraw", ITEMS)
    t = RawReplayTransport(tmp_path / "cap.pwraw", source="f1", speed=0)
    await t.open()
    got = await _until_eof(t)
    assert got == ITEMS
    await t.close()


async def test_replay_keeps_the_recorded_pace(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """At 1x, 40 records 10 ms apart take about 0.39 s; at 4x about a quarter of that."""
    _write(tmp_path / "cap.pwraw", ITEMS)
    for speed, expected in ((1.0, 0.39), (4.0, 0.0975)):
        t = RawReplayTransport(tmp_path / "cap.pwraw", source="f1", speed=speed)
        await t.open()
        start = time.monotonic()
        n = len(await _until_eof(t))
        elapsed = time.monotonic() - start
        assert n == 40
        assert expected * 0.9 <= elapsed <= expected + 0.15, (speed, elapsed)
        await t.close()


async def test_replay_of_another_source_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A capture recorded from forza cannot be replayed as f1; the error names --source."""
    _write(tmp_path / "cap.pwraw", ITEMS[:2], source="forza")
    t = RawReplayTransport(tmp_path / "cap.pwraw", source="f1")
    with pytest.raises(SourceError, match="--source forza"):
        await t.open()


async def test_replay_waits_no_longer_than_asked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A gap longer than the wait returns [] on time rather than blocking."""
    _write(tmp_path / "cap.pwraw", [Received(b"a", 0), Received(b"b", 2 * 10**9)])
    t = RawReplayTransport(tmp_path / "cap.pwraw", source="f1")
    await t.open()
    assert [r.data for r in await t.receive(0.1)] == [b"a"]
    start = asyncio.get_running_loop().time()
    assert await t.receive(0.1) == []
    assert asyncio.get_running_loop().time() - start < 0.3
    await t.close()
