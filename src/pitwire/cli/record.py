"""``pitwire record``: capture a source to a session file, without a server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from pitwire.cli import LogLevel, _logging, app, console
from pitwire.cli.files import _fail
from pitwire.cli.options import (
    AcSubscribe,
    Bind,
    Cars,
    Forward,
    GameHost,
    Ibt,
    MapFile,
    OutsimOpts,
    PollRate,
    Rate,
    RecordRaw,
    ReplayRaw,
    Seed,
    UdpPort,
    source_options,
    stop_on_signals,
)


@app.command()
def record(
    out: Annotated[
        Path,
        typer.Option(
            help="Session file to write (.pwr), or an existing folder to write <session>.pwr "
            "in; a game's next sessions go to FILE-2.pwr, FILE-3.pwr ..."
        ),
    ],
    source: Annotated[
        str,
        typer.Option(
            help="Where frames come from: sim, f1, forza, acc, ac, ac-udp, iracing, outgauge, "
            "auto (as for agent), or replay (a session file, --file: e.g. to re-encode it)."
        ),
    ] = "sim",
    session: Annotated[
        str,
        typer.Option(
            help="Session id kept in the file (default: <source>-<time>; replay: the recorded one)."
        ),
    ] = "",
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl+C).", min=0)
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace FILE if it exists.")] = False,
    cars: Cars = 6,
    seed: Seed = 0,
    rate: Rate = 60.0,
    bind: Bind = "0.0.0.0",
    port: UdpPort = None,
    forward: Forward = None,
    game_host: GameHost = "127.0.0.1",
    record_raw: RecordRaw = None,
    replay_raw: ReplayRaw = None,
    replay_speed: Annotated[
        float | None,
        typer.Option(
            help="--replay-raw and --source replay pace: 1 = as recorded, 0 = as fast as "
            "possible (default: 1; --source replay: 0)."
        ),
    ] = None,
    map_file: MapFile = None,
    poll_rate: PollRate = 60.0,
    ibt: Ibt = None,
    ac_subscribe: AcSubscribe = None,
    outsim_opts: OutsimOpts = None,
    file: Annotated[
        Path | None,
        typer.Option(
            help="replay: the session file (.pwr, or Parquet from pitwire export) to record "
            "again (at --replay-speed)."
        ),
    ] = None,
    log_level: LogLevel = "info",
) -> None:
    """Capture a source to a session file (.pwr) on this machine, without a server."""
    _logging(log_level)
    from pitwire import sessionfile
    from pitwire.export.base import file_part
    from pitwire.model.ids import ID_PATTERN
    from pitwire.sources.base import SourceError
    from pitwire.sources.record import Recorder
    from pitwire.sources.registry import make_source

    if replay_speed is None:
        replay_speed = 0.0 if source == "replay" else 1.0
    try:
        capture = source_options(
            source,
            file,
            bind=bind,
            port=port,
            forward=forward,
            game_host=game_host,
            record_raw=record_raw,
            replay_raw=replay_raw,
            replay_speed=replay_speed,
            map_file=map_file,
            poll_rate=poll_rate,
            ibt=ibt,
            outsim_opts=outsim_opts,
            ac_subscribe=ac_subscribe,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    bad_session = "--session must be 1-64 letters, digits or ._:- starting with a letter or digit"
    if session and not ID_PATTERN.match(session):
        raise _fail(bad_session)
    if file is not None and not out.is_dir() and _same_file(out, file):
        raise _fail(f"--out {out} is the --file being replayed; write to another file")
    try:
        src = make_source(
            source, capture=capture, cars=cars, seed=seed, rate=rate, duration=duration, file=file
        )
    except SourceError as exc:
        raise _fail(str(exc)) from None
    replayed = getattr(src, "recorded", None) if source == "replay" else None
    if not session:
        session = (
            replayed.session_id
            if replayed is not None and ID_PATTERN.match(replayed.session_id)
            else f"{source}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
    if not ID_PATTERN.match(session):
        _close(src)
        raise _fail(bad_session)
    if out.is_dir():  # an existing folder: a file named after the session in it
        out = out / f"{file_part(session)}.pwr"
    elif not out.suffix:
        out = out.with_suffix(".pwr")
    try:
        recorder = Recorder(
            out,
            session=session,
            source=src.info.source,
            track=src.info.track,
            streams=list(src.info.streams),
            overwrite=overwrite,
            started_ns=int(getattr(src.info, "started_ns", 0) or 0),
            laps=list(getattr(src, "laps", None) or []) if source == "replay" else None,
        )
    except sessionfile.SessionFileError as exc:
        _close(src)
        raise _fail(f"{exc} (or pass --overwrite)" if out.exists() else str(exc)) from None
    console.print(f"record: source {source} → [bold]{out}[/] session [bold]{session}[/]")
    ended: list[bool] = []

    async def run() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop.set)

        async def pump() -> None:
            async for item in src:
                recorder.take(item)
            ended.append(True)

        task = asyncio.create_task(pump())
        stopping = asyncio.create_task(stop.wait())
        limit = None if source == "sim" else duration  # sim stops by itself after --duration
        started = time.monotonic()
        with console.status("") as status:
            while not task.done() and not stop.is_set():
                left = 0.25 if limit is None else limit - (time.monotonic() - started)
                if left <= 0:
                    break
                await asyncio.wait({task, stopping}, timeout=min(left, 0.25))
                status.update(
                    f"recording to {recorder.path}: {recorder.frames} frames written, "
                    f"{time.monotonic() - started:.0f} s (Ctrl+C to stop)"
                )
        stopping.cancel()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # re-raises a source that could not start

    try:
        asyncio.run(run())
    except SourceError as exc:
        recorder.close()
        if not recorder.frames:  # nothing recorded: leave no empty file behind
            for path in recorder.files:
                path.unlink(missing_ok=True)
        raise _fail(str(exc)) from None
    except (KeyboardInterrupt, asyncio.CancelledError):  # a second Ctrl+C: stop at once
        pass
    finally:
        recorder.close()
    files = ", ".join(str(f) for f in recorder.files)
    console.print(
        f"record: {'source ended' if ended else 'stopped'}. {recorder.frames} frames written "
        f"to {files} (repeats dropped {recorder.duplicates})"
    )


def _same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name the same existing file."""
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _close(source: Any) -> None:
    """Close a source that was made but will not run (a replay holds its file open)."""
    close = getattr(source, "close", None)
    if callable(close):
        close()
