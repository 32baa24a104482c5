"""The fan-out fast path: write a pre-framed WebSocket message straight to a viewer's
transport.

A server → client WebSocket frame is a 2-10 byte header and the unmasked payload (RFC 6455
§5.2), so the hub's one encoded buffer per group can be framed once and the same bytes
written to every socket of the group. The uvicorn protocol class below only exposes itself
in the ASGI scope; the handshake, reads, pings and closing stay with uvicorn and the
websockets library. Writers respect flow control (``writable``) and never write once a close
is under way. Without this protocol class (another server), ``DirectWriter.of`` returns
None and the adapter falls back to ASGI sends.
"""

from __future__ import annotations

import struct
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

SCOPE_KEY = "pitwire.ws_protocol"


class PitwireWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, reachable from the app through the scope."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope[SCOPE_KEY] = self


def frame(payload: bytes, *, binary: bool) -> bytes:
    """One unfragmented, unmasked server frame carrying ``payload``."""
    first = 0x82 if binary else 0x81
    n = len(payload)
    if n < 126:
        head = bytes((first, n))
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + payload


class DirectWriter:
    __slots__ = ("_proto",)

    def __init__(self, proto: PitwireWebSocketProtocol) -> None:
        self._proto = proto

    @classmethod
    def of(cls, scope: Any) -> DirectWriter | None:
        proto = scope.get(SCOPE_KEY)
        return cls(proto) if isinstance(proto, PitwireWebSocketProtocol) else None

    @property
    def open(self) -> bool:
        p = self._proto
        return not p.close_sent and p.conn.state is State.OPEN and not p.transport.is_closing()

    def abort(self) -> None:
        """Drop the connection at once, whatever is still buffered."""
        self._proto.transport.abort()

    async def write(self, framed: bytes) -> bool:
        """Write one framed message; False when the connection is closing or closed."""
        p = self._proto
        if not p.writable.is_set():
            await p.writable.wait()
        if not self.open:
            return False
        p.transport.write(framed)
        return True
