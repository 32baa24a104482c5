"""open_store: from a URL to a store implementation."""

from __future__ import annotations

from pathlib import Path

import pytest

from pitwire.store import StoreError, open_store, safe_url
from pitwire.store.base import Store
from pitwire.store.memory import MemoryStore
from pitwire.store.postgres import PostgresStore
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


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgresql_urls(scheme: str) -> None:
    """postgresql:// and postgres:// give an unopened PostgresStore with the URL's options."""
    store = open_store(f"{scheme}://pit:hunter2@db.example:6543/league?schema=s1&pool_size=3")
    assert isinstance(store, PostgresStore)
    assert isinstance(store, Store)
    assert (store.schema, store.pool_size, store.where) == ("s1", 3, "db.example:6543/league")
    assert "hunter2" not in repr(store)


async def test_opened_store_works(tmp_path: Path) -> None:
    """The returned store is unopened; ``async with`` opens and closes it."""
    async with open_store(f"sqlite:///{tmp_path}/p.db") as store:
        assert await store.list_sessions() == []


@pytest.mark.parametrize(
    "url", ["mysql://user:hunter2@db/pitwire", "data/pitwire.db", "mysql://x", ""]
)
def test_unsupported_urls_list_the_supported_schemes(url: str) -> None:
    """Other URLs raise StoreError listing the supported schemes, without echoing secrets."""
    with pytest.raises(StoreError, match="supported: memory://") as info:
        open_store(url)
    assert "sqlite:///" in str(info.value)
    assert "postgresql://" in str(info.value)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ann:hunter2@db:5432/p?schema=x", "postgresql://ann:***@db:5432/p?schema=x"),
        (
            "postgresql://db/p?password=hunter2&schema=x",
            "postgresql://db/p?password=***&schema=x",
        ),
        ("sqlite:///data/p.db", "sqlite:///data/p.db"),
    ],
)
def test_safe_url_hides_passwords(url, shown):
    """safe_url masks a password in the user part or a password= option, and only that."""
    assert safe_url(url) == shown


async def test_create_false_opens_only_what_exists(tmp_path, pg_url):
    """open_store(create=False) refuses a missing SQLite file or PostgreSQL schema, and
    creates neither (a reader such as pitwire inspect must not)."""
    missing = tmp_path / "nowhere" / "p.db"
    with pytest.raises(StoreError, match="no database"):
        await open_store(f"sqlite:///{missing}", create=False).open()
    assert not missing.parent.exists()
    store = open_store(pg_url, create=False)
    with pytest.raises(StoreError, match="no pitwire tables"):
        await store.open()
    await store.close()
    async with open_store(pg_url) as made:  # type: ignore[attr-defined]
        await made.list_sessions()
    async with open_store(pg_url, create=False) as reader:  # type: ignore[attr-defined]
        assert await reader.list_sessions() == []
