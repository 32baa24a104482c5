"""``pitwire import``: a recording into a server through the agent path, exactly once.

:func:`import_recording` runs a :class:`~pitwire.sources.replay.ReplaySource` at speed 0
through the :class:`~pitwire.agent.run.Agent` (the acked WebSocket uplink: frames are kept
until the server says they are durably stored, re-sent after a reconnect, stored once by
(stream, seq)) into the recording's own session (or ``session``).

Importing a file again, e.g. a session file that has grown since (a recording that was
still being written), adds only what is new: before starting, the importer asks the server
for the last stored frame time of each stream and skips every frame up to it; the agent
then numbers the new frames after the stored ones. So a re-import never duplicates frames,
and importing the same unchanged file twice adds nothing.

Exceptions::

    Exception
     ├── SourceError       the file cannot be played (missing, not a session file)
     ├── UplinkError       the server URL is unusable
     └── ImportFailed      the server cannot be reached, refuses the session or does not
                           answer as a pitwire server (e.g. a web page instead of JSON)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pitwire.agent.uplink import check_server
from pitwire.model.ids import ID_PATTERN
from pitwire.sources.base import SourceError
from pitwire.sources.replay import ReplaySource
from pitwire.store import safe_url

log = logging.getLogger("pitwire.sources")


class ImportFailed(Exception):
    """The server cannot be reached, refuses the import or answers what is not a pitwire
    server's answer (the message says which)."""


@dataclass(slots=True)
class ImportReport:
    """What an import did, in frames of the recording's streams."""

    path: Path
    session: str
    frames_total: int = 0
    """Frames the recording holds (its index)."""
    frames_skipped: int = 0
    """Frames the server already had (an earlier import of this file)."""
    frames_read: int = 0
    frames_sent: int = 0
    frames_acked: int = 0
    """Frames the server acknowledged as durably stored."""
    duplicates: int = 0
    """Repeated packets dropped, as the live path drops them."""
    unacked: int = 0
    dropped: int = 0
    problems: list[str] = field(default_factory=list)
    """Damage found in the file (what precedes it was imported)."""
    index_rebuilt: bool = False
    """The file had no index (still being written, or its writer stopped)."""
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """Every frame sent was acknowledged as stored."""
        return self.unacked == 0 and self.dropped == 0


def server_url(server: str) -> str:
    """The URL the agent connects to: ``server`` itself, or ``ws://`` + it when it has no
    scheme (``127.0.0.1:8000`` → ``ws://127.0.0.1:8000``)."""
    server = server.strip()
    return server if "://" in server else "ws://" + server


def http_base(server: str) -> str:
    """``ws://host:port[/ws/ingest]`` → ``http://host:port`` (the REST side of a server)."""
    base = server.rstrip("/").removesuffix("/ws/ingest")
    for ws, http in (("ws://", "http://"), ("wss://", "https://")):
        if base.startswith(ws):
            return http + base[len(ws) :]
    return base if "://" in base else "http://" + base


async def stored_until(server: str, session: str) -> dict[str, int]:
    """Per stream of ``session``, the time of the last frame ``server`` stores [ns since
    epoch] (empty for an unknown session). Errors name ``server`` as given, without a
    password."""
    try:
        check_server(server)
    except ValueError as exc:
        raise ImportFailed(f"bad server URL: {exc}") from None
    url = f"{http_base(server)}/api/sessions/{session}"
    shown_url = safe_url(url)
    server = safe_url(server)
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(url)
    except httpx.InvalidURL as exc:
        raise ImportFailed(f"bad server URL {safe_url(server)!r}: {exc}") from None
    except httpx.HTTPError as exc:
        raise ImportFailed(
            f"cannot reach the server at {server} ({exc or type(exc).__name__}); is it running?"
        ) from None
    if response.status_code == 404:
        return {}
    if response.status_code != 200:
        raise ImportFailed(f"the server answered {response.status_code} to GET {shown_url}")
    try:
        streams = response.json().get("streams", [])
        return {str(s["stream_id"]): int(s["t1_ns"]) for s in streams if s.get("frames")}
    except (ValueError, TypeError, KeyError, AttributeError):
        kind = response.headers.get("content-type") or "no content type"
        raise ImportFailed(
            f"the server at {server} answered GET {shown_url} with something that is not "
            f"a pitwire session ({kind}, {len(response.content)} bytes); is that URL a "
            "pitwire server?"
        ) from None


Progress = Callable[[int, int, int], None]
"""Called with (frames done, frames acknowledged, frames total) as an import goes."""


async def import_recording(
    path: str | os.PathLike[str],
    *,
    server: str,
    session: str | None = None,
    progress: Progress | None = None,
    stall_timeout: float = 30.0,
    window: int = 100_000,
) -> ImportReport:
    """Import the recording at ``path`` into ``session`` (default: its own) on ``server``
    (``ws://host:port``; ``host:port`` without a scheme means ``ws://``).

    At most ``window`` frames wait for acknowledgement at a time; no acknowledgement for
    ``stall_timeout`` [s] ends the import, the frames not acknowledged counted in the report.
    """
    from pitwire.agent.run import Agent

    started = time.monotonic()
    source = ReplaySource(path, speed=0)
    try:
        sid = session or source.recorded.session_id
        if not ID_PATTERN.match(sid):
            raise SourceError(
                f"{path}: its session id {sid!r} cannot be used on a server; give a session id "
                "(1-64 letters, digits or ._:-)"
            )
        source.after_ns = await stored_until(server, sid)
    except BaseException:
        source.close()
        raise
    agent = Agent(source, server=server_url(server), session=sid)

    async def gate() -> None:
        # Polled: the agent signals no event on acks.
        while agent.peer.unacked_frames >= window:  # noqa: ASYNC110
            await asyncio.sleep(0.002)

    source.gate = gate
    # No drain deadline of the agent's own: the watchdog below ends a stalled import.
    run = asyncio.create_task(agent.run(drain_timeout=float("inf")))
    stalled = False
    last_acked, last_change = -1, time.monotonic()
    try:
        while not run.done():
            await asyncio.wait({run}, timeout=0.1)
            r = agent.report()
            acked = r.frames_sent - r.unacked - r.dropped
            if progress is not None:
                progress(r.frames_in + source.frames_skipped, acked, source.frames_total)
            now = time.monotonic()
            if acked != last_acked or r.unacked == 0:
                last_acked, last_change = acked, now
            elif now - last_change > stall_timeout and not run.done():
                log.warning("no acknowledgement from the server for %.0f s", stall_timeout)
                stalled = True
                run.cancel()
        if stalled:
            with contextlib.suppress(asyncio.CancelledError):
                await run
        else:
            await run  # re-raises an uplink error (a bad URL)
    finally:
        if not run.done():
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
        source.close()
    r = agent.report()
    acked = r.frames_sent - r.unacked - r.dropped
    if progress is not None:
        progress(r.frames_in + source.frames_skipped, acked, source.frames_total)
    return ImportReport(
        path=Path(path),
        session=sid,
        frames_total=source.frames_total,
        frames_skipped=source.frames_skipped,
        frames_read=r.frames_in,
        frames_sent=r.frames_sent,
        frames_acked=acked,
        duplicates=r.duplicates,
        unacked=r.unacked,
        dropped=r.dropped,
        problems=list(source.problems),
        index_rebuilt=source.index_rebuilt,
        seconds=time.monotonic() - started,
    )
