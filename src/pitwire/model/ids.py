"""Identifier types.

They are distinct types so that a session id can never be passed where a stream id is
expected; functions that take two of them take them by keyword.
"""

import re
from typing import NewType

SessionId = NewType("SessionId", str)
"""A session, chosen by whoever starts it (``--session``): letters, digits, ``-_.:``."""

StreamId = NewType("StreamId", str)
"""One car/driver inside a session, e.g. ``car-3``."""

ChannelId = NewType("ChannelId", int)
"""Index of a channel in an advertised channel table (wire protocol)."""

GroupId = NewType("GroupId", int)
"""Server-assigned id of a subscriber group: one stream + one channel selection + one rate."""


ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
"""What a session or stream id may be: 1-64 letters, digits or ``._:-``, starting with a
letter or digit (safe in URLs, file names and SQL)."""
