"""open_store: from a URL to a store implementation."""

from __future__ import annotations

from pathlib import Path

import pytest

from pitwire.store import StoreError, open_store
from pitwire.store.base import Store
from pitwire.store.memory import MemoryStore
from pitwire.store.sqlite import SqliteStore


def test_memory_url() -> None:
    """memory:// gives a MemoryStore."""
    assert isinstance(open_store("memory://"), MemoryStore)


def test_sqlite_urls() -> None:
    """sqlite:/// (relative) and sqlite://// (absolute) give a SqliteStore on that path."""
    rel = open_store("sqlite:///data/pitwire.db")
    assert isinstance(rel, SqliteStore)
    assert rel.path == Path("data/pitwire.db")
    absolute = open_store("sqlite:////tmp/x/pitwire.db")
    assert isinstance(absolute, SqliteStore)
    assert absolute.path == Path("/tmp/x/pitwire.db")
    assert isinstance(absolute, Store)


async def test_opened_store_works(tmp_path: Path) -> None:
    """The returned store is unopened; ``async with`` opens and closes it."""
    async with open_store(f"sqlite:///{tmp_path}/p.db") as store:
        assert await store.list_sessions() == []


@pytest.mark.parametrize(
    "url", ["postgresql://user:hunter2@db/pitwire", "data/pitwire.db", "mysql://x", ""]
)
def test_unsupported_urls_list_the_supported_schemes(url: str) -> None:
    """Other URLs raise StoreError listing the supported schemes, without echoing secrets."""
    with pytest.raises(StoreError, match="supported: memory://") as info:
        open_store(url)
    assert "sqlite:///" in str(info.value)
    assert "hunter2" not in str(info.value)
