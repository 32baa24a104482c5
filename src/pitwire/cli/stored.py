"""``pitwire inspect SESSION --db URL`` or ``--server URL``: a stored session's completeness.

Both give the JSON of ``GET /api/sessions/{id}`` (``server.rest.session_detail``): from the
database directly, or from a running server.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


class InspectError(Exception):
    """The session cannot be shown; the message says why and what to do."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def from_db(url: str, session_id: str) -> dict[str, Any]:
    """The session's detail read from the store at ``url``."""
    from pitwire.model.ids import SessionId
    from pitwire.server.rest import session_detail
    from pitwire.store import StoreError, UnknownSession, open_store, safe_url

    async def read() -> dict[str, Any]:
        async with open_store(url, create=False) as store:  # type: ignore[attr-defined]
            s = await store.get_session(SessionId(session_id))
            index = await store.chunk_index(SessionId(session_id))
        return session_detail(s, index, live=False)

    try:
        return asyncio.run(read())
    except UnknownSession:
        raise InspectError(f"no session {session_id!r} in {safe_url(url)}") from None
    except StoreError as exc:
        raise InspectError(f"cannot read {safe_url(url)}: {exc}", 1) from None


def from_server(url: str, session_id: str) -> dict[str, Any]:
    """The session's detail from a running server's REST API. Messages show the server's
    URL without its password."""
    from urllib.parse import urlsplit

    import httpx

    from pitwire.store import safe_url

    base = url if "://" in url else f"http://{url}"
    base = base.replace("ws://", "http://").replace("wss://", "https://").rstrip("/")
    shown = safe_url(base)
    try:
        password = urlsplit(base).password
    except ValueError:  # a malformed port: httpx says what is wrong
        password = None

    def masked(text: str) -> str:
        text = text.replace(base, shown)
        return text.replace(password, "***") if password else text

    try:
        r = httpx.get(f"{base}/api/sessions/{session_id}", timeout=10)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise InspectError(
            f"cannot reach the server at {shown}: {masked(str(exc))}; is it running?", 1
        ) from None
    if r.status_code == 404:
        raise InspectError(f"no session {session_id!r} on {shown}")
    if r.status_code != 200:
        raise InspectError(f"{shown} answered {r.status_code}: {masked(r.text[:200])}", 1)
    detail: dict[str, Any] = r.json()
    return detail


def _clock(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9)) if ns else "-"


def show(d: dict[str, Any], gaps: int) -> None:
    """Print a session's streams with their completeness, its gaps and per-lap figures."""
    out = Console(width=None if sys.stdout.isatty() else 140)
    c = d["completeness"]
    t0 = d["time_range"]["t0_ns"]
    out.print(
        f"session [bold]{escape(d['session_id'])}[/]  track {escape(d['track'] or '-')}  "
        f"source {escape(d['source'] or '-')}  started {_clock(d['started_ns'])}"
    )
    duration = (d["time_range"]["t1_ns"] - t0) / 1e9 if d["frames"] else 0.0
    out.print(
        f"{len(d['streams'])} streams, {d['frames']} frames, duration {duration:.1f} s; "
        f"complete {100 * c['ratio']:.2f}% ({c['received']} of {c['expected']} frames)"
    )
    figures = {s["stream_id"]: s for s in c["streams"]}
    table = Table("stream", "driver", "car", "frames", "seqs")
    for name in ("rate \\[Hz]", "expected", "complete", "gaps"):
        table.add_column(name, justify="right")
    for st in d["streams"]:
        f = figures.get(st["stream_id"])
        seqs = f"{st['first_seq']}-{st['last_seq']}" if st["frames"] else "-"
        rate = f"{1e9 / f['period_ns']:.1f}" if f and f["period_ns"] else "-"
        table.add_row(
            escape(st["stream_id"]),
            escape(st["driver"]),
            escape(st["car"]),
            str(st["frames"]),
            seqs,
            rate,
            str(f["expected"]) if f else "0",
            f"{100 * f['ratio']:.1f}%" if f else "-",
            str(len(f["gaps"])) if f else "0",
        )
    out.print(table if d["streams"] else "streams: none")
    for f in c["streams"]:
        for g in f["gaps"][:gaps]:
            what = (
                f"seqs {g['first_seq']}-{g['last_seq']} never arrived"
                if g["kind"] == "seq"
                else "no frames sampled"
            )
            out.print(
                f"  gap in {escape(f['stream_id'])}: at {(g['t0_ns'] - t0) / 1e9:.2f} s, "
                f"{(g['t1_ns'] - g['t0_ns']) / 1e9:.2f} s long, {g['missing']} frames missing "
                f"({what})"
            )
        if len(f["gaps"]) > gaps:
            out.print(f"  ... {len(f['gaps']) - gaps} more gaps in {f['stream_id']} (--gaps N)")
    short = [
        (f["stream_id"], lap)
        for f in c["streams"]
        for lap in f["laps"]
        if lap["received"] < lap["expected"]
    ]
    if short:
        laps = Table("stream", "lap", "received", "expected", title="incomplete laps")
        for stream, lap in short:
            laps.add_row(
                escape(stream), str(lap["lap"]), str(lap["received"]), str(lap["expected"])
            )
        out.print(laps)
    elif d["laps"]:
        out.print(f"laps: {len(d['laps'])}, every one complete")
