import asyncio

import pytest

from pitwire.sources.base import SourceError
from pitwire.sources.udp import UdpTransport, parse_address
from support import UdpPeer, free_udp_port


@pytest.fixture
async def game():
    peer = await UdpPeer.open()
    yield peer
    peer.close()


async def test_datagrams_arrive_in_order_with_receive_times(game: UdpPeer) -> None:
    """Every datagram sent to the bound port comes out of receive, in order, time-stamped."""
    t = UdpTransport(host="127.0.0.1", port=0)
    await t.open()
    try:
        for i in range(50):
            game.send(b"packet %d" % i, t.port)
        got = []
        async with asyncio.timeout(5):
            while len(got) < 50:
                got += await t.receive(1.0)
        assert [r.data for r in got] == [b"packet %d" % i for i in range(50)]
        times = [r.recv_ns for r in got]
        assert times == sorted(times) and times[0] > 1_600_000_000 * 10**9
        assert await t.receive(0.05) == []
    finally:
        await t.close()


async def test_forward_resends_every_datagram_unchanged_to_each_target(game: UdpPeer) -> None:
    """--forward targets receive byte-identical copies of every datagram, before decoding."""
    a, b = await UdpPeer.open(), await UdpPeer.open()
    t = UdpTransport(
        host="127.0.0.1", port=0, forward=[("127.0.0.1", a.port), ("127.0.0.1", b.port)]
    )
    await t.open()
    try:
        sent = [bytes([i]) * (1 + i * 7) for i in range(20)]
        for d in sent:
            game.send(d, t.port)
        await a.wait_for(20)
        await b.wait_for(20)
        assert [d for d, _ in a.got] == sent
        assert [d for d, _ in b.got] == sent
    finally:
        await t.close()
        a.close()
        b.close()


async def test_replies_go_to_the_game_or_the_last_sender(game: UdpPeer) -> None:
    """send() answers whoever sent last, or the configured game address."""
    t = UdpTransport(host="127.0.0.1", port=0)
    await t.open()
    other = await UdpPeer.open()
    try:
        game.send(b"hello", t.port)
        await t.receive(2.0)
        t.send(b"reply")
        await game.wait_for(1)
        assert game.got[0][0] == b"reply"
        t.game = ("127.0.0.1", other.port)
        t.send(b"to the game")
        await other.wait_for(1)
        assert other.got[0][0] == b"to the game"
    finally:
        await t.close()
        other.close()


async def test_a_port_in_use_is_a_clear_source_error(game: UdpPeer) -> None:
    """Binding a port another program holds fails with advice, not a traceback."""
    t = UdpTransport(host="127.0.0.1", port=game.port)
    with pytest.raises(SourceError, match=r"cannot listen on UDP 127\.0\.0\.1:\d+.*--forward"):
        await t.open()


async def test_forwarding_to_itself_is_refused() -> None:
    """A forward target equal to pitwire's own port would loop and is refused."""
    port = free_udp_port()
    t = UdpTransport(host="127.0.0.1", port=port, forward=[("127.0.0.1", port)])
    with pytest.raises(SourceError, match="own port"):
        await t.open()


async def test_the_queue_is_bounded_and_counts_what_it_drops(game: UdpPeer) -> None:
    """Past max_pending unread datagrams the oldest are dropped and counted."""
    t = UdpTransport(host="127.0.0.1", port=0, max_pending=10)
    await t.open()
    try:
        for i in range(30):
            game.send(b"%d" % i, t.port)
        async with asyncio.timeout(5):
            while t.datagrams < 30:  # noqa: ASYNC110 - polling a counter the callback bumps
                await asyncio.sleep(0.01)
        got = await t.receive(0.1)
        assert [r.data for r in got] == [b"%d" % i for i in range(20, 30)]
        assert t.dropped == 20
    finally:
        await t.close()


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("127.0.0.1:20778", None, ("127.0.0.1", 20778)),
        ("192.168.1.5", 20777, ("192.168.1.5", 20777)),
        ("[::1]:9000", None, ("::1", 9000)),
        (":5301", None, ("127.0.0.1", 5301)),
    ],
)
def test_parse_address(text: str, default: int | None, expected: tuple[str, int]) -> None:
    """host:port, host with a default port, IPv6 in brackets and a bare :port all parse."""
    assert parse_address(text, default_port=default) == expected


@pytest.mark.parametrize("text", ["host", "host:port", "host:0", "host:70000"])
def test_parse_address_rejects_bad_input(text: str) -> None:
    """A missing, non-numeric or out-of-range port is a ValueError naming the input."""
    with pytest.raises(ValueError, match="host"):
        parse_address(text)


async def test_a_forward_back_to_this_machine_does_not_loop(game: UdpPeer) -> None:
    """Forwarding to this machine's own port under another address is not re-received
    forever: datagrams that come back from pitwire's own port are dropped and counted."""
    port = free_udp_port()
    t = UdpTransport(host="0.0.0.0", port=port, forward=[("127.0.0.2", port)])
    await t.open()
    try:
        game.send(b"once", port)
        got = await t.receive(1.0)
        await asyncio.sleep(0.2)
        got += await t.receive(0.05)
        assert [r.data for r in got] == [b"once"]
        assert t.looped == 1
    finally:
        await t.close()
