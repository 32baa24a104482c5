"""Storage: the Store protocol and its implementations (memory, sqlite, postgres)."""

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
    "safe_url",
]

SCHEMES = (
    "memory://",
    "sqlite:///relative/path.db",
    "sqlite:////absolute/path.db",
    "postgresql://user@host:5432/database",
)


def open_store(url: str, *, create: bool = True) -> Store:
    """The store ``url`` names, not yet opened (``await store.open()``, or ``async with``).

    ``create=False`` opens only an existing store (readers such as ``pitwire inspect``):
    StoreError, on open, when the file or pitwire's tables are not there.

    ``memory://`` is the in-process fake; ``sqlite:///relative/path.db`` and
    ``sqlite:////absolute/path.db`` an SQLite file; ``postgresql://user@host:5432/database``
    (or ``postgres://``, options such as ``?schema=pitwire`` in pitwire.store.postgres) a
    PostgreSQL database. Anything else raises StoreError.
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from pitwire.store.memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        from pitwire.store.sqlite import SqliteStore

        store = SqliteStore.from_url(url)
        store.create = create
        return store
    if scheme in ("postgresql", "postgres"):
        from pitwire.store.postgres import PostgresStore

        pg = PostgresStore.from_url(url)
        pg.create = create
        return pg
    # Name only the scheme: the rest of a URL may hold a password.
    shown = f"scheme {scheme!r}" if scheme else "a URL without a scheme"
    raise StoreError(f"unsupported store URL ({shown}); supported: {', '.join(SCHEMES)}")


def safe_url(url: str) -> str:
    """``url`` without a password (in the user part or a ``password=`` query option): safe
    to print or write down."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = parts.query
    if "pass" in query.lower():
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if "pass" in k.lower() else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # geturl() would drop the '//' of sqlite:///relative.db
    return parts._replace(netloc=netloc, query=query).geturl()
