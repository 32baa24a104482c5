"""Storage: the Store protocol and its implementations (memory, sqlite)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pitwire.store.base import (
    SessionSummary,
    Store,
    StoreError,
    StoreUnavailable,
    StreamSummary,
    UnknownSession,
)

__all__ = [
    "SessionSummary",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StreamSummary",
    "UnknownSession",
    "open_store",
]

SCHEMES = ("memory://", "sqlite:///relative/path.db", "sqlite:////absolute/path.db")


def open_store(url: str) -> Store:
    """The store ``url`` names, not yet opened (``await store.open()``, or ``async with``).

    ``memory://`` is the in-process fake; ``sqlite:///relative/path.db`` and
    ``sqlite:////absolute/path.db`` an SQLite file. Anything else raises StoreError.
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from pitwire.store.memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        from pitwire.store.sqlite import SqliteStore

        return SqliteStore.from_url(url)
    # Name only the scheme: the rest of a URL may hold a password.
    shown = f"scheme {scheme!r}" if scheme else "a URL without a scheme"
    raise StoreError(
        f"unsupported store URL ({shown}); supported: {', '.join(SCHEMES)} "
        "(postgresql:// comes later)"
    )
