import asyncio
import contextlib
import logging

import pytest

from pitwire.sources.auto import AutoSource
from pitwire.sources.base import SourceError, StreamUpdate
from pitwire.sources.registry import CaptureOptions, Game
from support import TextDecoder, UdpPeer, free_udp_port


def _games(*ports: int) -> dict[str, Game]:
    return {
        f"text{i}": Game(f"text{i}", TextDecoder, "udp", "test feed", port=port)
        for i, port in enumerate(ports)
    }


async def test_the_first_source_that_sends_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    """Of two listening candidates, the one that delivers a frame wins; its frames follow."""
    ports = free_udp_port(), free_udp_port()
    auto = AutoSource(CaptureOptions(bind="127.0.0.1"), games=_games(*ports))
    game = await UdpPeer.open()
    got = []

    async def consume() -> None:
        async for item in auto:
            got.append(item)
            if sum(1 for i in got if isinstance(i, tuple)) >= 2:
                return

    with caplog.at_level(logging.INFO):
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.2)
        game.send(b"junk", ports[0])  # undecodable on the first port: not a winner
        game.send(b"car 10 2", ports[1])
        await asyncio.sleep(0.2)
        game.send(b"car 11 2", ports[1])
        async with asyncio.timeout(5):
            await task
    game.close()
    assert isinstance(got[0], StreamUpdate)
    assert auto.info.source == "text"
    assert "auto: text1 is sending" in caplog.text
    # the loser's port was released
    from pitwire.sources.udp import UdpTransport

    probe = UdpTransport(host="127.0.0.1", port=ports[0])
    await asyncio.sleep(0.01)
    await probe.open()
    await probe.close()


async def test_ports_in_use_are_skipped_and_none_at_all_is_an_error() -> None:
    """A candidate whose port is taken is skipped; with nothing to open, auto says so."""
    holder = await UdpPeer.open()
    auto = AutoSource(CaptureOptions(bind="127.0.0.1"), games=_games(holder.port))
    with pytest.raises(SourceError, match="no port or map could be opened"):
        async for _ in auto:
            pass
    holder.close()


def test_replay_raw_needs_a_named_source() -> None:
    """auto cannot replay a capture: the capture names its source."""
    from pathlib import Path

    with pytest.raises(SourceError, match="--source NAME"):
        AutoSource(CaptureOptions(replay_raw=Path("x.pwraw")))


async def test_record_raw_under_auto_starts_with_what_decided_the_race(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--record-raw with auto keeps the datagrams that chose the source, then the rest."""
    from pitwire.sources.rawcapture import read

    port = free_udp_port()
    path = tmp_path / "auto.pwraw"
    auto = AutoSource(CaptureOptions(bind="127.0.0.1", record_raw=path), games=_games(port))
    game = await UdpPeer.open()
    frames = 0

    async def consume() -> None:
        nonlocal frames
        async for item in auto:
            if isinstance(item, tuple):
                frames += item[1].n
                if frames >= 3:
                    return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    for i in range(3):
        game.send(b"car %d 1 %d" % (i, i), port)
        await asyncio.sleep(0.05)
    async with asyncio.timeout(5):
        await task
    game.close()
    meta, records = read(path)
    assert meta["source"] == "text"
    assert [r.data for r in records] == [b"car 0 1 0", b"car 1 1 1", b"car 2 1 2"]


async def test_cancelling_auto_while_it_waits_closes_every_candidate() -> None:
    """Stopping the agent before any game sent anything releases every port."""
    from pitwire.sources.udp import UdpTransport

    ports = free_udp_port(), free_udp_port()
    auto = AutoSource(CaptureOptions(bind="127.0.0.1"), games=_games(*ports))

    async def consume() -> None:
        async for _ in auto:
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.01)
    for port in ports:
        probe = UdpTransport(host="127.0.0.1", port=port)
        await probe.open()
        await probe.close()
