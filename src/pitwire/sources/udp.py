"""UDP transport: listen where a game sends, forward every datagram unchanged, reply.

Datagrams are taken in the protocol callback and stamped with the receive time at once;
forwards go out from the same callback, before any decoding, so other apps on the chain see
the game's feed with no added delay. ``receive`` hands over whatever arrived since the last
call. The queue is bounded (``max_pending`` datagrams); past it the oldest are dropped and
counted, which only happens when the consumer stalls for many seconds.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections import deque

from pitwire.sources.base import Received, SourceError

log = logging.getLogger("pitwire.sources")

Address = tuple[str, int]


def parse_address(text: str, *, default_port: int | None = None) -> Address:
    """``host:port`` (or ``host`` with ``default_port``) → (host, port); ValueError if bad."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, ""
    if not port_text:
        if default_port is None:
            raise ValueError(f"{text!r} is not host:port (e.g. 127.0.0.1:20778)")
        port_text = str(default_port)
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{text!r}: port {port_text!r} is not a number") from None
    if not 0 < port < 65536:
        raise ValueError(f"{text!r}: port {port} is outside 1-65535")
    return host, port


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.owner._arrived(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a forward target that is not listening (yet): harmless.
        log.debug("udp: %s", exc)


class UdpTransport:
    """Listen on ``host:port``; forward datagrams to ``forward``; send replies to ``game``
    (or to whoever sent last)."""

    def __init__(
        self,
        *,
        host: str = "0.0.0.0",
        port: int,
        forward: list[Address] | None = None,
        game: Address | None = None,
        hint: str = "",
        max_pending: int = 100_000,
    ) -> None:
        self.host = host
        self.port = port
        self.forward = list(forward or [])
        self.game = game
        self.hint = hint
        self.max_pending = max_pending
        self.describe = f"udp {host}:{port}"
        self.datagrams = 0
        self.dropped = 0
        self.looped = 0
        self._forward_hosts = {host for host, _ in self.forward}
        self._queue: deque[Received] = deque()
        self._wake = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None
        self._last_sender: Address | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._check_forward(self.port)
        sock = socket.socket(
            socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM
        )
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.bind((self.host, self.port))
            self._check_forward(sock.getsockname()[1])
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                advice = (
                    "Another program is using the port: stop it, choose another --port, or "
                    "let pitwire take the port and pass the feed on with --forward HOST:PORT"
                )
            else:
                advice = "Check --bind: it must be an address of this machine (or 0.0.0.0)"
            raise SourceError(
                f"cannot listen on UDP {self.host}:{self.port}: {exc.strerror or exc}. {advice}"
            ) from None
        except SourceError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self.describe = f"udp {self.host}:{self.port}"
        if self.game is not None:
            self.describe += f" (asking {self.game[0]}:{self.game[1]})"
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._transport = transport

    def _check_forward(self, port: int) -> None:
        own = {("127.0.0.1", port), ("localhost", port), (self.host, port)}
        for target in self.forward:
            if port and target in own:
                raise SourceError(
                    f"--forward {target[0]}:{target[1]} is pitwire's own port: that would loop"
                )

    def _arrived(self, data: bytes, addr: Address) -> None:
        recv_ns = time.time_ns()
        if addr[1] == self.port and (
            addr[0] in self._forward_hosts or addr[0].startswith("127.") or addr[0] == "::1"
        ):
            self.looped += 1  # our own forward came back (forwarded to this machine's port)
            return
        transport = self._transport
        if transport is not None:
            for target in self.forward:
                transport.sendto(data, target)
        self._last_sender = addr[:2]
        self.datagrams += 1
        self._queue.append(Received(data, recv_ns))
        if len(self._queue) > self.max_pending:
            self._queue.popleft()
            self.dropped += 1
        self._wake.set()

    async def receive(self, wait_s: float) -> list[Received]:
        if not self._queue:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait_s)
            except TimeoutError:
                return []
        out = list(self._queue)
        self._queue.clear()
        return out

    def send(self, data: bytes) -> None:
        target = self.game or self._last_sender
        if self._transport is not None and target is not None:
            self._transport.sendto(data, target)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
