import asyncio
import os
import sys

import pytest

from pitwire.sources.base import SourceError
from pitwire.sources.shm import PROTON_DIR, MapTransport, Page, map_files

PAGES = [Page("physics", "Local\\acpmf_physics", 16), Page("static", "Local\\acpmf_static", 8)]


def _page(n: int, size: int) -> bytes:
    return n.to_bytes(4, "little") + bytes(size - 4)


async def test_changed_pages_are_read_and_unchanged_ones_skipped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each poll passes on the pages whose bytes changed, tagged, cut to the page size."""
    phys, stat = tmp_path / "acpmf_physics", tmp_path / "acpmf_static"
    phys.write_bytes(_page(1, 32))  # longer than the page: only the first 16 bytes count
    stat.write_bytes(_page(7, 8))
    t = MapTransport(PAGES, files={"physics": phys, "static": stat}, rate_hz=1000)
    await t.open()
    first = await t.receive(0.5)
    assert [(r.tag, r.data) for r in first] == [("physics", _page(1, 16)), ("static", _page(7, 8))]
    assert await t.receive(0.02) == []
    with open(phys, "r+b") as f:  # noqa: ASYNC230 - the game writes in place
        f.write(_page(2, 16))
    got = await t.receive(0.5)
    assert [(r.tag, r.data) for r in got] == [("physics", _page(2, 16))]
    await t.close()


async def test_a_map_that_appears_later_is_picked_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Missing or all-zero pages give nothing; once the game writes them they are read."""
    phys, stat = tmp_path / "p", tmp_path / "s"
    t = MapTransport(PAGES, files={"physics": phys, "static": stat}, rate_hz=500)
    await t.open()
    assert await t.receive(0.05) == []
    phys.write_bytes(bytes(16))
    assert await t.receive(0.05) == []
    phys.write_bytes(_page(3, 16))  # replaced (a restarted game): a new file is re-mapped
    got = await t.receive(0.5)
    assert [r.data for r in got] == [_page(3, 16)]
    os.remove(phys)
    assert await t.receive(0.05) == []
    await t.close()


async def test_a_reader_copies_pieces_from_the_mapped_views(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A decoder's reader gets memoryviews of the maps and chooses what to pass on."""
    big = tmp_path / "map"
    big.write_bytes(b"HEAD" + bytes(1000) + b"ROW1")
    page = [Page("map", "Local\\IRSDKMemMapFileName", 1 << 20)]
    t = MapTransport(
        page,
        files={"map": big},
        rate_hz=500,
        reader=lambda views: [
            ("header", bytes(views["map"][:4])),
            ("row", bytes(views["map"][-4:])),
        ],
    )
    await t.open()
    got = await t.receive(0.5)
    assert [(r.tag, r.data) for r in got] == [("header", b"HEAD"), ("row", b"ROW1")]
    await t.close()


async def test_polling_keeps_the_rate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """At 100 Hz a page changing every poll is read about 100 times a second."""
    phys = tmp_path / "p"
    phys.write_bytes(_page(0, 16))
    t = MapTransport(PAGES[:1], files={"physics": phys}, rate_hz=100)
    await t.open()
    loop_time = asyncio.get_running_loop().time
    start, polls = loop_time(), 0
    with open(phys, "r+b") as f:  # noqa: ASYNC230 - the game writes in place
        while loop_time() - start < 0.5:
            polls += 1
            f.seek(0)
            f.write(_page(polls, 16))
            f.flush()
            await t.receive(0.1)
    assert 40 <= polls <= 55
    await t.close()


def test_map_files_from_folder_pairs_and_defaults(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--map-file takes a folder, TAG=PATH pairs or (one page) a path; else the Proton folder."""
    assert map_files(PAGES, [str(tmp_path)]) == {
        "physics": tmp_path / "acpmf_physics",
        "static": tmp_path / "acpmf_static",
    }
    pairs = map_files(PAGES, ["physics=/a", "static=/b"])
    assert pairs is not None and str(pairs["physics"]) == "/a" and str(pairs["static"]) == "/b"
    single = map_files(PAGES[:1], ["/tmp/copy.bin"])
    assert single is not None and str(single["physics"]) == "/tmp/copy.bin"
    if sys.platform != "win32":
        assert map_files(PAGES, []) == {
            "physics": PROTON_DIR / "acpmf_physics",
            "static": PROTON_DIR / "acpmf_static",
        }


def test_map_files_errors_name_what_is_missing() -> None:
    """An ambiguous path or a page left without a file is a SourceError saying what to give."""
    with pytest.raises(SourceError, match="'/no/such/file' does not exist"):
        map_files(PAGES, ["/no/such/file"])
    with pytest.raises(SourceError, match="folder holding acpmf_physics, acpmf_static"):
        map_files(PAGES, [__file__])
    with pytest.raises(SourceError, match=r"no file given for page.*static"):
        map_files(PAGES, ["physics=/a"])


def test_poll_rate_must_be_positive() -> None:
    """A zero poll rate is refused with a SourceError."""
    with pytest.raises(SourceError, match="poll rate"):
        MapTransport(PAGES, files=None, rate_hz=0)


async def test_named_maps_are_opened_only_once_they_exist() -> None:
    """Without files, pages are named maps: absent ones are waited for, never created."""
    maps: dict[str, bytearray] = {}
    released: list[str] = []

    def opener(name: str):  # type: ignore[no-untyped-def]
        if name not in maps:
            return None
        return memoryview(maps[name]), lambda: released.append(name)

    t = MapTransport(PAGES, files=None, rate_hz=500, opener=opener)
    await t.open()
    assert await t.receive(0.05) == []
    maps["Local\\acpmf_physics"] = bytearray(_page(5, 16))
    got = await t.receive(0.5)
    assert [(r.tag, r.data) for r in got] == [("physics", _page(5, 16))]
    maps["Local\\acpmf_physics"][0] = 6  # the game writes in place
    got = await t.receive(0.5)
    assert [r.data[0] for r in got] == [6]
    await t.close()
    assert released == ["Local\\acpmf_physics"]


async def test_an_unreadable_map_file_is_reported_once_and_polling_goes_on(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """A folder given as a page's file is a warning, not a crash; a good file later is read."""
    import logging

    bad = tmp_path / "dir"
    bad.mkdir()
    t = MapTransport(PAGES[:1], files={"physics": bad}, rate_hz=500)
    await t.open()
    with caplog.at_level(logging.WARNING):
        assert await t.receive(0.05) == []
        assert await t.receive(0.05) == []
    assert caplog.text.count("cannot map") == 1
    bad.rmdir()
    bad.write_bytes(_page(9, 16))
    assert [r.data for r in await t.receive(0.5)] == [_page(9, 16)]
    await t.close()
