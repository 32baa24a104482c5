"""Shared fixtures (helpers live in tests/support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from support import RunningServer, running_server


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    """A real server on 127.0.0.1 port 0 with the in-memory store."""
    async with running_server() as srv:
        yield srv
