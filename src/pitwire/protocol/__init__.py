"""Wire protocol v1, sans-I/O (spec/protocol.md).

``messages``: JSON control messages as tagged structs. ``frames``: binary data frames.
``peer``: connection state machines you feed bytes/text and drain events and outgoing data.
Nothing in here touches a socket or a clock.
"""

PROTOCOL_VERSION = 1
SUBPROTOCOL = "pitwire.v1"
