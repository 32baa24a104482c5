"""Historical Formula 1: ``pitwire import fastf1 ...`` (called from ``pitwire import``) and
``pitwire f1-replay``. docs/f1.md is the user guide."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from pitwire.cli import LogLevel, _logging, app, console
from pitwire.cli.files import _fail, _frames_progress, _reflowed
from pitwire.cli.options import stop_on_signals

if TYPE_CHECKING:
    from pitwire.model.frames import FrameBatch
    from pitwire.model.records import SessionInfo, StreamInfo
    from pitwire.sources.fastf1 import F1Session

CHUNK_FRAMES = 2000
"""Frames per stored chunk."""

F1_SESSION_HELP = "F1 session: R, Q, S, SQ, FP1, FP2, FP3 (or its name, e.g. 'Race')."


def load(year: int, event: str | int, session: str, cache: Path | None) -> Any:
    """The loaded fastf1 session (the one place that reaches fastf1; tests replace it)."""
    import importlib.util

    from pitwire.sources.fastf1 import F1Unavailable, load_session

    if importlib.util.find_spec("fastf1") is None:
        raise F1Unavailable("historical F1 needs the f1 extra: pip install 'pitwire[f1]'")
    console.print(f"loading F1 {year} {event} {session} (FastF1: the first time downloads it) ...")
    return load_session(year, event, session, cache)


def _event(event: str) -> str | int:
    """A round number when ``event`` is digits, else the event name FastF1 fuzzy-matches."""
    return int(event) if event.strip().isdigit() else event


def fetch(
    year: int | None, event: str, session: str, cache: Path | None, session_id: str
) -> F1Session:
    """Load and convert one F1 session; a usage error exits 2, anything else 1."""
    from pitwire.sources import fastf1 as f1

    if year is None or not event or not session:
        raise _fail("historical F1 needs --year, --event and --session (e.g. R)")
    try:
        loaded = load(year, _event(event), session, cache)
    except f1.F1Unavailable as exc:
        raise _fail(escape(str(exc)), 2) from None
    except f1.F1LoadError as exc:
        hint = "offline? the first load of a session needs the network"
        raise _fail(f"{escape(str(exc))} ({hint})", 1) from None
    try:
        converted = f1.convert(loaded, session_id=session_id or None)
    except f1.F1DataError as exc:
        raise _fail(escape(str(exc)), 1) from None
    for problem in converted.problems:
        console.print(f"[yellow]warning:[/] {escape(problem)}")
    return converted


def import_fastf1(
    *,
    year: int | None,
    event: str,
    session: str,
    db: str,
    cache: Path | None,
    session_id: str,
) -> None:
    """``pitwire import fastf1``: load, convert and store one F1 session, exactly once."""
    from pitwire.model.ids import ID_PATTERN
    from pitwire.store import StoreError, safe_url

    if session_id and not ID_PATTERN.match(session_id):
        raise _fail("--id must be 1-64 letters, digits or ._:- starting with a letter or digit")
    converted = fetch(year, event, session, cache, session_id)
    total = converted.frames
    with _frames_progress(converted.info.session_id, total) as (bar, task):

        def progress(done: int, new: int) -> None:
            bar.update(task, completed=done, note=f"{new} new")

        try:
            new = asyncio.run(store_session(db, converted, progress))
        except StoreError as exc:
            raise _fail(escape(str(exc)), 1) from None
        except KeyboardInterrupt:
            raise _fail("import interrupted; run it again to store the rest", 130) from None
    drivers = len(converted.streams) - 1
    console.print(
        f"F1 → session [bold]{converted.info.session_id}[/] in {safe_url(db)}: {drivers} "
        f"drivers, {len(converted.laps)} laps, {new} frames stored"
        + (f", {total - new} already there" if total - new else "")
    )


async def store_session(db: str, converted: F1Session, progress: Any = None) -> int:
    """Write ``converted`` to the store ``db``: session, streams, frames in chunks of
    ``CHUNK_FRAMES`` numbered from seq 0 (so a second import stores nothing twice), laps.
    The number of frames newly stored."""
    from pitwire.model.ids import SessionId, StreamId
    from pitwire.store import open_store

    session_id = SessionId(converted.info.session_id)
    done = new = 0
    store = open_store(db)
    await store.open()
    try:
        await store.put_session(converted.info)
        for info, batch in converted.streams:
            await store.put_stream(session_id, info)
            for first in range(0, batch.n, CHUNK_FRAMES):
                piece = batch.slice(first, first + CHUNK_FRAMES)
                new += await store.write_chunk(
                    session_id=session_id,
                    stream_id=StreamId(info.stream_id),
                    first_seq=first,
                    batch=piece,
                )
                done += piece.n
                if progress is not None:
                    progress(done, new)
        for lap in converted.laps:
            await store.put_lap(session_id, lap)
    finally:
        await store.close()
    return new


async def stored_session(
    db: str, session_id: str
) -> tuple[SessionInfo, list[tuple[StreamInfo, FrameBatch]]]:
    """A session already in the store ``db``: its info and every stream's frames."""
    from pitwire.model.ids import SessionId, StreamId
    from pitwire.store import open_store

    store = open_store(db, create=False)
    await store.open()
    try:
        summary = await store.get_session(SessionId(session_id))
        streams = [
            (
                s.info,
                await store.read_frames(
                    session_id=SessionId(session_id), stream_id=StreamId(s.info.stream_id)
                ),
            )
            for s in summary.streams
        ]
    finally:
        await store.close()
    return summary.info, streams


@app.command("f1-replay")
@_reflowed
def f1_replay(
    year: Annotated[int | None, typer.Option(help="Season, e.g. 2024.")] = None,
    event: Annotated[str, typer.Option(help="Event name or location (Monza) or round.")] = "",
    session: Annotated[str, typer.Option(help=F1_SESSION_HELP)] = "",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    hz: Annotated[float, typer.Option(help="Messages per second to each client.", min=0.1)] = 50,
    speed: Annotated[float, typer.Option(help="Replay speed (2 = twice real time).", min=0.01)] = 1,
    start: Annotated[
        float | None,
        typer.Option(help="Session time to start at [s] (default: the first frame)."),
    ] = None,
    cache: Annotated[
        Path | None, typer.Option(help="FastF1 cache folder (default ~/.cache/pitwire/fastf1).")
    ] = None,
    db: Annotated[str, typer.Option(help="Replay a session imported into this store.")] = "",
    id_: Annotated[
        str, typer.Option("--id", help="The stored session to replay (with --db).")
    ] = "",
    log_level: LogLevel = "warning",
) -> None:
    """Serve a historical F1 session as if live: per-driver JSON over WebSocket.

    Every client connecting to ws://HOST:PORT gets one JSON message per tick at --hz with
    every driver's telemetry at the shared clock's session time (docs/f1.md). Load the
    session with FastF1 (--year --event --session) or from a store it was imported into
    (--db --id, no network). Ctrl+C closes every client (1001) and exits."""
    _logging(log_level)
    from pitwire.server.f1feed import F1Feed, FeedData

    if db or id_:
        if not (db and id_):
            raise _fail("replaying a stored session needs both --db and --id")
        if year is not None or event or session:
            raise _fail(
                "give either --db and --id (a stored session) or --year, --event and "
                "--session (FastF1), not both"
            )
        from pitwire.store import StoreError

        try:
            info, streams = asyncio.run(stored_session(db, id_))
        except StoreError as exc:
            raise _fail(escape(str(exc)), 1) from None
    else:
        converted = fetch(year, event, session, cache, "")
        info, streams = converted.info, converted.streams
    try:
        data = FeedData(info, streams)
        feed = F1Feed(data, host=host, port=port, hz=hz, speed=speed, start_s=start)
    except ValueError as exc:
        raise _fail(escape(str(exc)), 1) from None

    async def run() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop.set)  # the second Ctrl+C quits at once
        try:
            await feed.start()
        except OSError as exc:
            raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 1) from None
        console.print(
            f"[bold green]f1-replay[/]: session [bold]{info.session_id}[/], "
            f"{len(data.drivers)} drivers, {hz:g} Hz, speed {speed:g}; Ctrl+C to stop"
        )
        print(f"listening on {feed.url}", flush=True)
        try:
            ended = asyncio.create_task(feed.ended.wait())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if ended.done() and not stop.is_set():
                console.print('session ended; clients get {"end": true}. Ctrl+C to stop.')
                await stopping
            ended.cancel()
        finally:
            await feed.stop()

    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(run())
    print("f1-replay stopped.", flush=True)
