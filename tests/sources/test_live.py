import asyncio
import contextlib
import logging

import numpy as np
import pytest

from pitwire.model.frames import FrameBatch
from pitwire.sources.base import SessionChange, SourceItem, StreamUpdate
from pitwire.sources.live import DecoderSource
from pitwire.sources.rawcapture import RawReplayTransport
from pitwire.sources.udp import UdpTransport
from support import TextDecoder, UdpPeer


async def _collect(source: DecoderSource, until, seconds: float = 5.0) -> list[SourceItem]:  # type: ignore[no-untyped-def]
    """Items from ``source`` until ``until(items)`` is true."""
    items: list[SourceItem] = []
    async with asyncio.timeout(seconds):
        async for item in source:
            items.append(item)
            if until(items):
                break
    return items


def _frames(items: list[SourceItem]) -> int:
    return sum(it[1].n for it in items if isinstance(it, tuple))


@pytest.fixture
async def game():
    peer = await UdpPeer.open()
    yield peer
    peer.close()


async def _started(source: DecoderSource) -> int:
    """Wait until the source's UDP transport is bound; its port."""
    assert isinstance(source.transport, UdpTransport)
    async with asyncio.timeout(5):
        while source.transport._transport is None:  # noqa: ASYNC110 - set by the iterator task
            await asyncio.sleep(0.005)
    return source.transport.port


async def test_datagrams_become_stream_updates_and_converted_frames(game: UdpPeer) -> None:
    """Datagrams over real UDP come out as a stream announcement and frames in channel units."""
    source = DecoderSource(TextDecoder(), UdpTransport(host="127.0.0.1", port=0))
    task = asyncio.create_task(_collect(source, lambda items: _frames(items) >= 3))
    port = await _started(source)
    for i in range(3):
        game.send(b"car %d 3 %d" % (10 * (i + 1), i), port)
    items = await task
    assert isinstance(items[0], StreamUpdate) and items[0].info.stream_id == "car"
    speeds = np.concatenate([it[1].columns["speed"] for it in items if isinstance(it, tuple)])
    assert np.allclose(speeds, [36, 72, 108])
    assert source.info.source == "text" and [s.stream_id for s in source.info.streams] == ["car"]


async def test_garbage_is_counted_and_reported_and_the_source_carries_on(
    game: UdpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    """Undecodable datagrams are skipped with a warning; good ones still come through."""
    source = DecoderSource(TextDecoder(), UdpTransport(host="127.0.0.1", port=0))
    task = asyncio.create_task(_collect(source, lambda items: _frames(items) >= 2))
    port = await _started(source)
    with caplog.at_level(logging.WARNING):
        game.send(b"car 1 1", port)
        for junk in (b"\xff\xfe", b"car", b"car fast"):
            game.send(junk, port)
        game.send(b"car 2 1", port)
        items = await task
    assert _frames(items) == 2
    assert source.bad == 3
    assert "undecodable packet(s) from udp 127.0.0.1" in caplog.text  # the first at once
    assert "last: not a test datagram" in caplog.text


async def test_silence_is_reported_with_the_hint_and_the_greeting_repeated(
    game: UdpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    """A silent game gets one warning with the hint; a handshake game is greeted again."""
    transport = UdpTransport(host="127.0.0.1", port=0, hint="Turn on UDP in the game.")
    source = DecoderSource(TextDecoder(hello=b"HELLO"), transport, silence_s=0.3)
    transport.game = ("127.0.0.1", game.port)
    with caplog.at_level(logging.INFO):
        task = asyncio.create_task(_collect(source, lambda items: _frames(items) >= 1, 8))
        await game.wait_for(2, seconds=4)  # the first greeting and a repeat after silence
        assert {d for d, _ in game.got} == {b"HELLO"}
        game.send(b"car 1 1", source.transport.port)  # type: ignore[attr-defined]
        await task
    assert "no data from udp 127.0.0.1" in caplog.text
    assert "Turn on UDP in the game." in caplog.text
    assert caplog.text.count("no data from") == 1
    assert "data is flowing again" in caplog.text


async def test_record_raw_then_replay_gives_the_same_frames(game: UdpPeer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A raw capture replayed through the same decoder gives identical batches and events."""
    path = tmp_path / "session.pwraw"
    source = DecoderSource(TextDecoder(), UdpTransport(host="127.0.0.1", port=0), record=path)
    script = [b"car 10 1 0", b"junk", b"new S2", b"driver car Alice", b"car 20 2 1", b"car 30 3 2"]
    task = asyncio.create_task(_collect(source, lambda items: _frames(items) >= 3))
    port = await _started(source)
    for d in script:
        game.send(d, port)
        await asyncio.sleep(0.01)
    live = await task
    replayed = await _collect(
        DecoderSource(TextDecoder(), RawReplayTransport(path, source="text", speed=0)),
        lambda items: False,
    )
    assert [i for i in replayed if not isinstance(i, tuple)] == [
        i for i in live if not isinstance(i, tuple)
    ]
    # Batching follows arrival timing; the frames themselves are identical.
    live_frames = FrameBatch.concat([i[1] for i in live if isinstance(i, tuple)])
    replay_frames = FrameBatch.concat([i[1] for i in replayed if isinstance(i, tuple)])
    assert live_frames.equals(replay_frames) and live_frames.n == 3
    assert SessionChange("S2", "Test Ring") in replayed


async def test_closing_the_iterator_closes_the_transport() -> None:
    """Leaving the async for releases the UDP port."""
    source = DecoderSource(TextDecoder(), UdpTransport(host="127.0.0.1", port=0))
    gen = source.__aiter__()
    task = asyncio.create_task(gen.__anext__())
    port = await _started(source)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await gen.aclose()
    again = UdpTransport(host="127.0.0.1", port=port)
    await asyncio.sleep(0.01)
    await again.open()
    await again.close()


async def test_closing_dismisses_a_game_subscription(game: UdpPeer) -> None:
    """A decoder with dismiss() (AC remote telemetry) has it sent to the game on close."""

    class Subscribed(TextDecoder):
        def dismiss(self) -> bytes:
            return b"BYE"

    transport = UdpTransport(host="127.0.0.1", port=0, game=("127.0.0.1", game.port))
    source = DecoderSource(Subscribed(hello=b"HI"), transport)
    task = asyncio.create_task(_collect(source, lambda items: _frames(items) >= 1))
    port = await _started(source)
    game.send(b"car 1 1", port)
    await task
    await game.wait_for(2)
    assert [d for d, _ in game.got] == [b"HI", b"BYE"]


async def test_a_decoder_bug_is_logged_and_capture_goes_on(
    game: UdpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected exception in a decoder is logged with its traceback; later datagrams
    still decode."""

    class Buggy(TextDecoder):
        def feed(self, data: bytes, recv_ns: int, tag: str = ""):  # type: ignore[no-untyped-def]
            if data == b"boom":
                raise ZeroDivisionError("bug")
            return super().feed(data, recv_ns, tag)

    source = DecoderSource(Buggy(), UdpTransport(host="127.0.0.1", port=0))
    task = asyncio.create_task(_collect(source, lambda items: _frames(items) >= 1))
    port = await _started(source)
    with caplog.at_level(logging.ERROR):
        game.send(b"boom", port)
        await asyncio.sleep(0.05)
        game.send(b"car 1 1", port)
        await task
    assert "decoder error (please report it)" in caplog.text and "ZeroDivisionError" in caplog.text
    assert source.bad == 1


async def test_silence_with_packets_arriving_says_they_are_unusable(
    game: UdpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    """Packets that arrive but give no frame (paused game, wrong format) are reported as
    such, not as a game that sends nothing."""
    source = DecoderSource(
        TextDecoder(), UdpTransport(host="127.0.0.1", port=0, hint="HINT"), silence_s=0.3
    )
    task = asyncio.create_task(_collect(source, lambda items: _frames(items) >= 1, 8))
    port = await _started(source)
    with caplog.at_level(logging.WARNING):
        for _ in range(8):
            game.send(b"junk", port)
            await asyncio.sleep(0.1)
        game.send(b"car 1 1", port)
        await task
    assert "packets arrive on udp 127.0.0.1" in caplog.text
    assert "HINT" not in caplog.text
