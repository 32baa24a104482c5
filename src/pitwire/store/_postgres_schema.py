"""PostgresStore's schema: the migrations, and applying them.

Every migration qualifies its tables with ``{s}``, the quoted schema name (statements never
depend on ``search_path``). ``migrate`` applies the missing ones under an advisory lock, so
servers starting together apply each once; ``require_current`` is for readers that must not
create or migrate anything.
"""

from __future__ import annotations

import zlib
from typing import Any

from pitwire import __version__
from pitwire.store.base import StoreError

Connection = Any
"""An ``asyncpg.Connection`` (asyncpg ships no type information)."""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # v1. Text keys use the "C" collation, so ORDER BY sorts like Python (and SQLite).
        # streams.channels: JSON list of Channel; chunks.stats: JSON {channel: [lo, hi, NaN
        # count]}; non-finite floats as "inf"/"-inf"/"nan". chunks.t0_ns/t1_ns are the min/max
        # frame time; period_ns the median frame interval and holes the time gaps inside the
        # chunk (JSON [[t0_ns, t1_ns, missing], ...]). The chunks primary key carries the
        # columns of the summary and seq queries, which thus never read the table; blobs are
        # already compressed, so they are stored out of line without a second compression.
        """CREATE TABLE {s}.sessions (
            id text COLLATE "C" NOT NULL,
            track text NOT NULL,
            source text NOT NULL,
            started_ns bigint NOT NULL,
            started_at timestamptz GENERATED ALWAYS AS (to_timestamp(started_ns / 1e9)) STORED,
            PRIMARY KEY (id))""",
        "CREATE INDEX sessions_started ON {s}.sessions (started_ns DESC, id)",
        """CREATE TABLE {s}.streams (
            session text COLLATE "C" NOT NULL REFERENCES {s}.sessions (id),
            stream text COLLATE "C" NOT NULL,
            driver text NOT NULL,
            car text NOT NULL,
            channels jsonb NOT NULL,
            PRIMARY KEY (session, stream))""",
        """CREATE TABLE {s}.laps (
            session text COLLATE "C" NOT NULL,
            stream text COLLATE "C" NOT NULL,
            lap integer NOT NULL,
            t0_ns bigint NOT NULL,
            t1_ns bigint NOT NULL,
            frames bigint NOT NULL,
            lap_time double precision,
            PRIMARY KEY (session, stream, lap),
            FOREIGN KEY (session, stream) REFERENCES {s}.streams (session, stream))""",
        """CREATE TABLE {s}.chunks (
            session text COLLATE "C" NOT NULL,
            stream text COLLATE "C" NOT NULL,
            first_seq bigint NOT NULL,
            last_seq bigint NOT NULL,
            t0_ns bigint NOT NULL,
            t1_ns bigint NOT NULL,
            n integer NOT NULL,
            codec smallint NOT NULL,
            stats jsonb NOT NULL,
            period_ns bigint NOT NULL DEFAULT 0,
            holes jsonb NOT NULL DEFAULT '[]',
            blob bytea NOT NULL,
            PRIMARY KEY (session, stream, first_seq) INCLUDE (last_seq, n, t0_ns, t1_ns),
            FOREIGN KEY (session, stream) REFERENCES {s}.streams (session, stream),
            CHECK (first_seq <= last_seq))""",
        "ALTER TABLE {s}.chunks ALTER COLUMN blob SET STORAGE EXTERNAL",
        "CREATE INDEX chunks_time ON {s}.chunks (session, stream, t1_ns) INCLUDE (t0_ns)",
    ),
    (  # v2. Lap details (historical F1 and any source that reports them): sectors is a JSON
        # array of sector times [s] (null for a sector without a time, [] when not reported);
        # compound, stint and tyre_life describe the tyres. A stream's display colour
        # ('#rrggbb', '' = let the UI pick). Rows from v1 read with the defaults, which are
        # exactly what LapInfo/StreamInfo default to.
        """ALTER TABLE {s}.laps
            ADD COLUMN sectors jsonb NOT NULL DEFAULT '[]',
            ADD COLUMN compound text NOT NULL DEFAULT '',
            ADD COLUMN stint integer,
            ADD COLUMN tyre_life integer,
            ADD COLUMN pit_in boolean NOT NULL DEFAULT false,
            ADD COLUMN pit_out boolean NOT NULL DEFAULT false""",
        "ALTER TABLE {s}.streams ADD COLUMN colour text NOT NULL DEFAULT ''",
    ),
)
"""Schema migrations: entry i takes the schema from version i to i + 1 (``{s}``: the schema)."""

_LOCK_CLASS = 0x70697477  # "pitw": the advisory lock namespace of pitwire migrations


def quote(name: str) -> str:
    """``name`` as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lock_key(schema: str) -> tuple[int, int]:
    """The advisory lock (two int4) that serializes migrations of ``schema``."""
    crc = zlib.crc32(schema.encode())
    return (_LOCK_CLASS, crc - 2**32 if crc >= 2**31 else crc)


async def migrate(conn: Connection, schema: str, where: str) -> int:
    """Create ``schema`` and apply the missing migrations, each in its own transaction under
    an advisory lock, so servers starting together apply each one once; the version reached.
    StoreError when the schema is newer than this pitwire."""
    s = quote(schema)
    key = lock_key(schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *key)
        # Check before creating: CREATE ... IF NOT EXISTS still needs the CREATE privilege.
        if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema) is None:
            await conn.execute(f"CREATE SCHEMA {s}")
        if await conn.fetchval("SELECT to_regclass($1)", f"{s}.pitwire_schema") is None:
            await conn.execute(
                f"""CREATE TABLE {s}.pitwire_schema (
                    version integer PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now(),
                    applied_by text NOT NULL)"""
            )
        version = await _version(conn, s)
    if version > len(MIGRATIONS):
        raise StoreError(
            f"postgresql {where} schema {schema!r}: schema v{version} is newer than this "
            f"pitwire supports (v{len(MIGRATIONS)}); upgrade pitwire"
        )
    for target in range(version + 1, len(MIGRATIONS) + 1):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *key)
            if await _version(conn, s) >= target:
                continue  # another server migrated meanwhile
            for statement in MIGRATIONS[target - 1]:
                await conn.execute(statement.format(s=s))
            await conn.execute(
                f"INSERT INTO {s}.pitwire_schema (version, applied_by) VALUES ($1, $2)",
                target,
                f"pitwire {__version__}",
            )
    return len(MIGRATIONS)


async def require_current(conn: Connection, schema: str, where: str) -> None:
    """StoreError unless ``schema`` holds pitwire's tables at this pitwire's version (for
    readers that must not create or migrate anything)."""
    s = quote(schema)
    if await conn.fetchval("SELECT to_regclass($1)", f"{s}.pitwire_schema") is None:
        raise StoreError(f"postgresql {where}: no pitwire tables in schema {schema!r}")
    version = await _version(conn, s)
    if version != len(MIGRATIONS):
        raise StoreError(
            f"postgresql {where} schema {schema!r} is at v{version}, this pitwire reads "
            f"v{len(MIGRATIONS)}; run 'pitwire serve' on it once to upgrade, or upgrade pitwire"
        )


async def _version(conn: Connection, s: str) -> int:
    version: int = await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {s}.pitwire_schema")
    return version
