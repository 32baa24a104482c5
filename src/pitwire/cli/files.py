"""``pitwire inspect``, ``export``, ``import`` and ``watch``: session files."""

from __future__ import annotations

import asyncio
import contextlib
import inspect as _inspect
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from pitwire.cli import DEFAULT_DB, LogLevel, _logging, app, console
from pitwire.cli.options import stop_on_signals

# -- session files: record, inspect, export, import, watch ----------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def _reflowed(func: F) -> F:
    """``func`` with its docstring's paragraphs each on one line, so that --help wraps them
    to the terminal (typer's rich help keeps a docstring's hard line breaks)."""
    doc = _inspect.cleandoc(func.__doc__ or "")
    func.__doc__ = "\n\n".join(" ".join(p.split()) for p in doc.split("\n\n"))
    return func


def _fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as an error; the Exit to raise."""
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def _frames_bar(transient: bool = False) -> Any:
    """A rich progress bar counting frames."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        TaskProgressColumn(),
        TextColumn("{task.fields[note]}"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


@contextlib.contextmanager
def _frames_progress(
    description: str, total: int | None = None, *, transient: bool = False
) -> Iterator[tuple[Any, Any]]:
    """A frames bar with one task: ``(bar, task)``. When the block ends with an error the
    bar is cleared instead of being left behind (no empty ``0/? frames`` after a message)."""
    bar = _frames_bar(transient=transient)
    with bar:
        task = bar.add_task(description, total=total, note="")
        try:
            yield bar, task
        except BaseException:
            bar.live.transient = True
            raise


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """``logger``'s warnings silenced for the block (what the command prints itself)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _open_session_file(path: Path) -> Any:
    """A SessionReader of ``path``; a missing or foreign file ends the command (exit 2), an
    empty one too (exit 1: nothing readable)."""
    from pitwire import sessionfile

    if not path.exists():
        hint = "" if path.suffix else "; for a stored session add --db URL or --server URL"
        raise _fail(f"no such file: {path}{hint}")
    if path.is_dir():
        raise _fail(f"{path} is a folder, not a session file (.pwr)")
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            raise _fail(f"nothing readable: {path} is empty (0 bytes)", 1)
    try:
        return sessionfile.open(path)
    except sessionfile.SessionFileError as exc:
        raise _fail(str(exc)) from None


def _clock(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9)) if ns else "-"


def _lap_time(seconds: float | None) -> str:
    """``m:ss.sss``; ``-`` when there is no time, ``—`` when it is NaN or infinite."""
    if seconds is None:
        return "-"
    if not math.isfinite(seconds):
        return "—"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:06.3f}"


def _json_ready(value: Any) -> Any:
    """``value`` with every NaN or infinite float as None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


@app.command()
@_reflowed
def inspect(
    target: Annotated[
        str,
        typer.Argument(
            metavar="FILE|SESSION",
            help="A session file (.pwr), or a stored session's id with --db or --server.",
        ),
    ],
    db: Annotated[
        str | None,
        typer.Option(
            help="Read SESSION from this store (sqlite:///path.db, postgresql://...).",
            rich_help_panel="Stored sessions",
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            help="Ask this running server about SESSION (http://host:port or host:port).",
            rich_help_panel="Stored sessions",
        ),
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (machine output).")
    ] = False,
    gaps: Annotated[int, typer.Option(help="Gaps to list per stream.", min=0)] = 5,
) -> None:
    """Show what a session holds: streams, laps, completeness and damage.

    For a session file: the streams with their channels, frames, duration and completeness
    (frames against the median rate, gaps), the laps, the state of the index and the damage
    found. Exits 1 when nothing in the file is readable.

    For a stored session (--db or --server): per stream the frames received against those
    expected, and each gap: missing seqs (frames numbered by the agent that never arrived) or
    pauses in time (frames never sampled), with the laps they fall in.

    In --json, a number that is NaN or infinite (a lap time the game got wrong) is null."""
    import json

    if db is not None or server is not None:
        from pitwire.cli import stored

        if db is not None and server is not None:
            raise _fail("give --db or --server, not both")
        try:
            detail = (
                stored.from_db(db, target)
                if db is not None
                else stored.from_server(server or "", target)
            )
        except stored.InspectError as exc:
            raise _fail(str(exc), exc.code) from None
        if json_:
            typer.echo(json.dumps(_json_ready(detail), indent=1, allow_nan=False))
        else:
            stored.show(detail, gaps)
        return

    from pitwire.sources.record import describe

    file = Path(target)
    with _quiet("pitwire.sessionfile"), _open_session_file(file) as reader:  # damage: listed
        if json_:
            d = describe(reader)
        else:
            with _frames_progress("reading", reader.frames_total or None, transient=True) as (
                bar,
                task,
            ):
                d = describe(reader, progress=lambda n: bar.advance(task, n))
    if json_:
        typer.echo(json.dumps(_json_ready(d), indent=1, allow_nan=False))
    else:
        _print_description(d, gaps)
    if not d["readable"]:
        first = d["problems"][0] if d["problems"] else "no readable data"
        raise _fail(f"nothing readable: {first}", 1)


def _print_description(d: dict[str, Any], gaps: int) -> None:
    """``inspect``'s tables (``d`` from ``pitwire.sources.record.describe``)."""
    from rich.markup import escape
    from rich.table import Table

    from pitwire.sources.record import INDEX_STATES

    out = Console(width=None if sys.stdout.isatty() else 140)
    s = d["session"]
    out.print(f"[bold]{escape(d['path'])}[/]  (written by {escape(d['writer'] or 'unknown')})")
    if d.get("session_id_from_file_name"):
        out.print(
            f"session unknown ({escape(s['session_id'])} is taken from the file name: the "
            "file's own records are unreadable)"
        )
    else:
        out.print(
            f"session [bold]{escape(s['session_id'])}[/]  track {escape(s['track'] or '-')}  "
            f"source {escape(s['source'] or '-')}  started {_clock(s['started_ns'])}"
        )
    out.print(
        f"{len(d['streams'])} streams, {d['frames']} frames, duration {d['duration_s']:.1f} s "
        f"({_clock(d['t0_ns'])} to {_clock(d['t1_ns'])})"
    )
    table = Table("stream", "driver", "car", "channels", "frames", "from \\[s]", "length \\[s]")
    for name in ("rate \\[Hz]", "expected", "complete", "gaps"):
        table.add_column(name, justify="right")
    for st in d["streams"]:
        span = (st["t1_ns"] - st["t0_ns"]) / 1e9 if st["frames"] else 0.0
        start = (st["t0_ns"] - d["t0_ns"]) / 1e9 if st["frames"] else 0.0
        table.add_row(
            escape(st["stream_id"]),
            escape(st["driver"]),
            escape(st["car"]),
            str(st["channels"]),
            str(st["frames"]),
            f"{start:.1f}",
            f"{span:.1f}",
            f"{st['rate_hz']:.1f}" if st["rate_hz"] else "-",
            str(st["expected"]),
            f"{100 * st['completeness']:.1f}%",
            str(st["gaps"]),
        )
    out.print(table if d["streams"] else "streams: none readable")
    for st in d["streams"]:
        for g in st["gap_list"][:gaps]:
            out.print(
                f"  gap in {escape(st['stream_id'])}: at {g['at_s']:.2f} s, "
                f"{g['length_s']:.2f} s long (~{g['missing']} frames missing)"
            )
        if st["gaps"] > gaps:
            out.print(f"  ... {st['gaps'] - gaps} more gaps in {st['stream_id']} (--gaps N)")
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for lap in d["laps"]:
        by_stream.setdefault(lap["stream_id"], []).append(lap)
    if by_stream:
        title = "laps" + (" (from the lap channel)" if d["laps_derived"] else "")
        laps = Table("stream", "laps", "best", "lap times", title=title, title_justify="left")
        for stream, items in by_stream.items():
            times = [
                lap["lap_time"]
                for lap in items
                if lap["lap_time"] is not None and math.isfinite(lap["lap_time"])
            ]
            laps.add_row(
                escape(stream),
                str(len(items)),
                _lap_time(min(times)) if times else "-",
                "  ".join(f"{lap['lap']}: {_lap_time(lap['lap_time'])}" for lap in items),
            )
        out.print(laps)
    else:
        out.print("laps: none completed")
    out.print(f"index: {INDEX_STATES.get(d['index'], d['index'])}")
    if d["problems"]:
        what = "what precedes them is readable" if d["readable"] else "nothing is readable"
        out.print(f"[yellow]damaged:[/] {len(d['problems'])} problem(s); {what}")
        for p in d["problems"]:
            out.print(f"  {escape(p)}")
    else:
        out.print("damage: none found")


def _names(text: str | None, flag: str) -> list[str] | None:
    """A comma-separated option as a list (None when not given; exit 2 when empty)."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise _fail(f"{flag} needs at least one name (a,b,...)")
    return names


@app.command()
def export(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The session file (.pwr).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="csv, parquet, jsonl or ld (MoTeC i2).")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder to write to, or the file (its suffix the format's: .csv, .parquet, "
            ".jsonl, .ld) (default: the session file's folder)."
        ),
    ] = None,
    streams: Annotated[
        str | None, typer.Option(help="Streams to export, comma-separated (default: all).")
    ] = None,
    channels: Annotated[
        str | None, typer.Option(help="Channels to export, comma-separated (default: all).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace output files that exist.")] = False,
) -> None:
    """Export a session file to CSV, Parquet, JSON Lines or MoTeC i2 (.ld)."""
    from pitwire.export import ExportError, get_writer
    from pitwire.export.base import is_dir_target, planned_paths, select

    wanted_streams = _names(streams, "--streams")
    wanted_channels = _names(channels, "--channels")
    try:
        writer = get_writer(format)
    except ExportError as exc:
        raise _fail(str(exc)) from None
    if out is not None and not is_dir_target(out) and out.suffix.lower() != writer.suffix:
        raise _fail(
            f"--out {out}: a {writer.name} export writes {writer.suffix} files; name a file "
            f"ending in {writer.suffix}, or a folder"
        )
    dest = out if out is not None else file.parent
    with _open_session_file(file) as reader:
        try:  # the names, before anything is written
            select(reader, wanted_streams, wanted_channels)
            planned = planned_paths(
                writer, reader, dest, streams=wanted_streams, channels=wanted_channels
            )
        except ExportError as exc:
            raise _fail(str(exc)) from None
        total = sum(
            s.frames
            for s in reader.summary()
            if wanted_streams is None or s.stream_id in wanted_streams
        )
        if not total:
            raise _nothing_to_export(file, reader.problems, wanted_streams is not None)
        existing = [p for p in planned or [] if p.exists()]
        if existing and not overwrite:
            names = ", ".join(str(p) for p in existing[:3]) + (" ..." if len(existing) > 3 else "")
            verb = "exists" if len(existing) == 1 else "exist"
            raise _fail(f"{names} {verb}; pass --overwrite to replace, or choose another --out")
        exported = [0]
        try:
            with _frames_progress(f"export {writer.name}", total) as (bar, task):

                def progress(n: int) -> None:
                    exported[0] += n
                    bar.advance(task, n)

                written = writer.write(
                    reader,
                    dest,
                    streams=wanted_streams,
                    channels=wanted_channels,
                    progress=progress,
                )
        except ExportError as exc:
            raise _fail(str(exc)) from None
        except OSError as exc:
            raise _fail(f"cannot write the export: {exc}") from None
        problems = list(reader.problems)
    if not exported[0]:  # the index promised frames, the blocks held none readable
        for path in written:
            path.unlink(missing_ok=True)
        raise _nothing_to_export(file, problems, wanted_streams is not None)
    for path in written:
        console.print(f"wrote {path}")
    if problems:
        console.print(f"[yellow]warning:[/] {file} is damaged; exported what was readable")


def _nothing_to_export(file: Path, problems: list[str], selected: bool) -> typer.Exit:
    """The error (exit 1) of an export without a readable frame; nothing is written."""
    if problems:
        return _fail(f"nothing readable: no frame of {file} can be read ({problems[0]})", 1)
    what = f"the selected streams of {file} hold" if selected else f"{file} holds"
    return _fail(f"nothing to export: {what} no frames; nothing written", 1)


@app.command("import")
@_reflowed
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE",
            help="Session files (.pwr) or Parquet files from export; or the word fastf1 to "
            "import a historical F1 session (with --year --event --session).",
        ),
    ],
    server: Annotated[
        str, typer.Option(help="Server URL (HOST:PORT alone means ws://HOST:PORT).")
    ] = "ws://127.0.0.1:8000",
    session: Annotated[
        str,
        typer.Option(
            help="Session id on the server (default: each file's own). With fastf1: the F1 "
            "session, R, Q, S, SQ, FP1-FP3."
        ),
    ] = "",
    timeout: Annotated[
        float, typer.Option(help="Give up after this long without an acknowledgement (s).", min=1)
    ] = 30.0,
    year: Annotated[int | None, typer.Option(help="fastf1: the season, e.g. 2024.")] = None,
    event: Annotated[str, typer.Option(help="fastf1: event name, location or round.")] = "",
    db: Annotated[str, typer.Option(help="fastf1: the store to write to.")] = DEFAULT_DB,
    cache: Annotated[Path | None, typer.Option(help="fastf1: its cache folder.")] = None,
    id_: Annotated[
        str, typer.Option("--id", help="fastf1: session id (default f1-YEAR-LOCATION-SESSION).")
    ] = "",
    log_level: LogLevel = "warning",
) -> None:
    """Import recorded sessions into a server, exactly once.

    Frames go through the agent's acknowledged path. Importing a file again adds only frames
    newer than what the server already stores of each stream.

    pitwire import fastf1 --year 2024 --event Monza --session R loads a historical F1
    session with FastF1 (the f1 extra) and writes it straight into the store --db, once."""
    _logging(log_level)
    if files and str(files[0]) == "fastf1" and not files[0].exists():
        from pitwire.cli.f1 import import_fastf1

        import_fastf1(year=year, event=event, session=session, db=db, cache=cache, session_id=id_)
        return
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    from pitwire.agent.uplink import UplinkError
    from pitwire.model.ids import ID_PATTERN
    from pitwire.sources.base import SourceError
    from pitwire.sources.importer import ImportFailed, import_recording
    from pitwire.sources.replay import Recording

    if session and not ID_PATTERN.match(session):
        raise _fail(
            "--session must be 1-64 letters, digits or ._:- starting with a letter or digit"
        )
    for path in files:  # every file checked before anything is imported (Parquet: read whole)
        try:
            Recording(path).close()
        except SourceError as exc:
            raise _fail(str(exc)) from None
    failed = 0
    for path in files:
        with _frames_progress(path.name) as (bar, task):

            def progress(
                done: int, acked: int, total: int, task: Any = task, bar: Any = bar
            ) -> None:
                bar.update(task, completed=done, total=total or None, note=f"{acked} stored")

            try:
                report = asyncio.run(
                    import_recording(
                        path,
                        server=server,
                        session=session or None,
                        progress=progress,
                        stall_timeout=timeout,
                    )
                )
            except SourceError as exc:
                raise _fail(str(exc)) from None
            except UplinkError as exc:
                raise _fail(str(exc)) from None
            except ImportFailed as exc:
                raise _fail(str(exc), 1) from None
            except KeyboardInterrupt:
                raise _fail("import interrupted; run it again to import the rest", 130) from None
        rate = report.frames_acked / report.seconds if report.seconds else 0.0
        console.print(
            f"{path} → session [bold]{report.session}[/]: {report.frames_acked} frames stored"
            + (f", {report.frames_skipped} already there" if report.frames_skipped else "")
            + (f", {report.duplicates} repeats dropped" if report.duplicates else "")
            + f" in {report.seconds:.1f} s ({rate:.0f} frames/s)"
        )
        if report.problems:
            console.print(f"[yellow]warning:[/] {path} is damaged; imported what was readable")
        if not report.complete:
            failed += report.unacked + report.dropped
            console.print(
                f"[red]error:[/] {report.unacked + report.dropped} frames of {path} were not "
                "acknowledged by the server; run the import again (stored frames are skipped)"
            )
    if failed:
        raise typer.Exit(1)


@app.command()
@_reflowed
def watch(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="The folder to watch.")],
    server: Annotated[
        str, typer.Option(help="Server URL (HOST:PORT alone means ws://HOST:PORT).")
    ] = "ws://127.0.0.1:8000",
    recursive: Annotated[bool, typer.Option(help="Watch sub-folders too.")] = False,
    pattern: Annotated[str, typer.Option(help="File names to import (glob).")] = "*.pwr",
    settle: Annotated[
        float,
        typer.Option(help="Import a file once it has not changed for this long (s).", min=0),
    ] = 2.0,
    poll: Annotated[
        float, typer.Option(help="Look at the folder this often (s).", min=0.05, max=60)
    ] = 0.5,
    log_level: LogLevel = "info",
) -> None:
    """Import new and modified session files from a folder into a server, each once.

    Files are imported once they stop changing; a file still being written is imported as
    far as it goes. A file that changes again (a session that grew) is imported again and
    only its new frames are added. What was imported is kept in
    FOLDER/.pitwire-imported.json, so a restart does not import it again."""
    _logging(log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    from pitwire.sources.base import SourceError
    from pitwire.sources.importer import ImportReport
    from pitwire.sources.watch import Watcher

    def on_import(name: str, r: ImportReport) -> None:
        console.print(
            f"imported {name} → session [bold]{r.session}[/]: {r.frames_acked} frames"
            + (f" ({r.frames_skipped} already there)" if r.frames_skipped else "")
        )

    try:
        watcher = Watcher(
            folder,
            server=server,
            pattern=pattern,
            recursive=recursive,
            settle_s=settle,
            poll_s=poll,
            on_import=on_import,
        )
    except SourceError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"watch: {folder}{' and sub-folders' if recursive else ''} ({pattern}) → {server}; "
        "Ctrl+C to stop"
    )

    async def run() -> None:
        def stop() -> None:
            console.print(
                "watch: stopping (after the import in progress; Ctrl+C again to quit now)"
            )
            watcher.stop()

        stop_on_signals(stop)
        await watcher.run()

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(run())
    console.print(f"watch: stopped; {watcher.imports} imports, {watcher.failures} failures")
