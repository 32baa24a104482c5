"""The ``pitwire`` command line: serve, agent, demo here; record, inspect, export, import and
watch in ``pitwire.cli.files``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from pitwire import __version__
from pitwire.cli.options import (
    DEFAULT_SPOOL_MAX,
    AcSubscribe,
    Bind,
    Cars,
    Forward,
    GameHost,
    Ibt,
    MapFile,
    NoSpool,
    OutsimOpts,
    PollRate,
    Rate,
    RecordRaw,
    ReplayRaw,
    Seed,
    SpoolDir,
    SpoolMax,
    UdpPort,
    parse_size,
    source_options,
    spool_options,
    stop_on_signals,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

app = typer.Typer(
    name="pitwire",
    help="Real-time motorsport telemetry: live pit wall, storage and replay.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)

DEFAULT_DB = "sqlite:///data/pitwire.db"


def _logging(level: str) -> None:
    if level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        console.print(
            f"[red]error:[/] --log-level must be debug, info, warning or error, not {level!r}"
        )
        raise typer.Exit(2)
    logging.basicConfig(
        level=level.upper(),
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
    )


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pitwire {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """pitwire: capture, live pit wall, storage and replay of car telemetry."""


Host = Annotated[str, typer.Option(help="Address to bind (127.0.0.1 = this machine only).")]
Port = Annotated[int, typer.Option(help="TCP port (0 = any free port).", min=0, max=65535)]
Db = Annotated[
    str,
    typer.Option(
        help="Store URL: sqlite:///path.db, postgresql://user@host:5432/db[?schema=NAME] "
        "or memory://."
    ),
]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error.")]


def _make_app(db: str, **options: Any) -> FastAPI:
    """The server app on store ``db``; a bad store URL ends the command with a message."""
    from pitwire.server.app import create_app
    from pitwire.server.spool import SpoolError
    from pitwire.store.base import StoreError

    try:
        return create_app(db, **options)
    except (StoreError, SpoolError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _run(app_: FastAPI, host: str, port: int, ready: Callable[[str], None], hint: str) -> None:
    """Serve until Ctrl+C or SIGTERM; a port that cannot be bound ends with ``hint``."""
    from pitwire.server.app import serve as run_server
    from pitwire.store.base import StoreError

    try:
        asyncio.run(run_server(app_, host, port, on_ready=ready, log_level="warning"))
    except StoreError as exc:
        console.print(
            f"[red]error:[/] cannot open the store: {exc}. Check --db (is the database "
            "running and reachable, does it exist, may this user connect?)"
        )
        raise typer.Exit(2) from None
    except OSError as exc:
        console.print(
            f"[red]error:[/] cannot listen on {host}:{port}: {exc.strerror or exc}. {hint}"
        )
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass


def _size_option(flag: str, text: str) -> int:
    """A positive size like 500MB; a bad one ends the command with a message."""
    try:
        size = parse_size(text)
        if size <= 0:
            raise ValueError(f"{text!r} is not a positive size")
    except ValueError as exc:
        console.print(f"[red]error:[/] {flag}: {exc}")
        raise typer.Exit(2) from None
    return size


@app.command()
def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    db: Db = DEFAULT_DB,
    lag_limit: Annotated[
        float, typer.Option(help="Close a viewer that lags this long (seconds).", min=0.1)
    ] = 10.0,
    spool_dir: Annotated[
        str,
        typer.Option(
            help="Where frames wait on disk while the store is unavailable: a folder (one per "
            "server), 'auto' (beside an SQLite file: <db>.spool; for other stores "
            "~/.local/state/pitwire/server-spool/<store>; none for memory://) or 'off' "
            "(frames wait in memory)."
        ),
    ] = "auto",
    spool_max: Annotated[
        str,
        typer.Option(
            help="Largest spool on disk (e.g. 500MB, 4GB); past it frames stay unacknowledged "
            "and agents keep them."
        ),
    ] = "4GB",
    replay_cache: Annotated[
        str,
        typer.Option(
            help="Memory for decoded frames that replays share (e.g. 256MB, 1GB); a session "
            "that fits a quarter of it is read whole when first replayed."
        ),
    ] = "256MB",
    max_delay: Annotated[
        float,
        typer.Option(
            help="Longest delay delayed-live viewers may ask for (seconds); live sessions "
            "watched with a delay keep this much in memory.",
            min=1,
            max=86_400,
        ),
    ] = 600.0,
    log_level: LogLevel = "info",
) -> None:
    """Run the server: ingest, live fan-out, storage, replay, REST and the dashboard."""
    _logging(log_level)
    spool_bytes = _size_option("--spool-max", spool_max)
    cache_bytes = _size_option("--replay-cache", replay_cache)
    if cache_bytes < 1 << 20:
        console.print(f"[red]error:[/] --replay-cache must be at least 1MB, not {replay_cache}")
        raise typer.Exit(2)
    server_app = _make_app(
        db,
        lag_limit=lag_limit,
        spool_dir=None if spool_dir == "off" else spool_dir,
        spool_max=spool_bytes,
        replay_cache=cache_bytes,
        max_delay=max_delay,
    )

    def ready(url: str) -> None:
        spool = server_app.state.persistence.spool
        where = f", spool {spool.directory}" if spool is not None else ""
        from pitwire.store import safe_url

        console.print(
            f"pitwire {__version__} serving on [bold]{url}[/] (store {safe_url(db)}{where})"
        )
        console.print(f"  dashboard {url}/   API docs {url}/docs   agents ws{url[4:]}/ws/ingest")
        print(f"PITWIRE_URL={url}/", flush=True)

    _run(server_app, host, port, ready, "Choose another --port or stop what uses it.")


@app.command()
def agent(
    source: Annotated[
        str,
        typer.Option(
            help="Where frames come from: sim, f1, forza, acc, ac, ac-udp, iracing, outgauge, "
            "auto (listen on every known port and map, keep the first that sends), or replay "
            "(a recorded session file, --file)."
        ),
    ] = "sim",
    server: Annotated[
        str, typer.Option(help="Server URL: ws://, wss://, http://, https:// or host:port.")
    ] = "ws://127.0.0.1:8000",
    session: Annotated[
        str | None,
        typer.Option(
            help="Session id (default: <source>-<time>); a game's next sessions get -2, -3...",
            show_default=False,
        ),
    ] = None,
    cars: Cars = 6,
    seed: Seed = 0,
    rate: Rate = 60.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds of data (sim).", min=0)
    ] = None,
    bind: Bind = "0.0.0.0",
    port: UdpPort = None,
    forward: Forward = None,
    game_host: GameHost = "127.0.0.1",
    record_raw: RecordRaw = None,
    replay_raw: ReplayRaw = None,
    replay_speed: Annotated[
        float,
        typer.Option(
            help="--replay-raw and --source replay pace: 1 = as recorded, 0 = as fast as possible."
        ),
    ] = 1.0,
    map_file: MapFile = None,
    poll_rate: PollRate = 60.0,
    ibt: Ibt = None,
    ac_subscribe: AcSubscribe = None,
    outsim_opts: OutsimOpts = None,
    file: Annotated[
        Path | None,
        typer.Option(
            help="replay: the session file (.pwr, or Parquet from pitwire export) to play "
            "through the live path at --replay-speed."
        ),
    ] = None,
    transport: Annotated[
        str, typer.Option(help="ws (binary, acked) or http (POST batches).")
    ] = "ws",
    batch_ms: Annotated[
        float, typer.Option(help="Gather frames this long before sending (ms); 0 = at once.")
    ] = 0.0,
    spool_dir: SpoolDir = None,
    no_spool: NoSpool = False,
    spool_max: SpoolMax = DEFAULT_SPOOL_MAX,
    discard_spool: Annotated[
        str | None,
        typer.Option(
            help="Delete the spool of session ID (its frames are never sent) and exit: for "
            "spools left for a server that is gone. With --spool-dir if not the default.",
            metavar="ID",
            show_default=False,
        ),
    ] = None,
    log_level: LogLevel = "info",
) -> None:
    """Run a source and stream its frames to a server."""
    _logging(log_level)
    from pitwire.agent.run import Agent
    from pitwire.agent.spool import SpoolError, SpoolLocked
    from pitwire.agent.uplink import UplinkError, check_server
    from pitwire.model.ids import ID_PATTERN as SESSION_ID
    from pitwire.sources.base import SourceError
    from pitwire.sources.registry import make_source
    from pitwire.store import safe_url

    if discard_spool is not None:
        from pitwire.agent.spool import discard

        try:
            spool_path, _ = spool_options(spool_dir, False, spool_max, "ws")
            if spool_path is None or not SESSION_ID.match(discard_spool):
                raise ValueError(f"--discard-spool: {discard_spool!r} is not a session id")
            frames, for_server = discard(spool_path / discard_spool)
        except (SpoolError, ValueError) as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
        console.print(
            f"agent: discarded the spool {spool_path / discard_spool}: {frames} frames never "
            "sent" + (f" (for {for_server})" if for_server else "")
        )
        return
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
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if transport not in ("ws", "http"):
        console.print(f"[red]error:[/] --transport must be ws or http, not {transport!r}")
        raise typer.Exit(2)
    try:
        check_server(server)
    except ValueError as exc:
        console.print(f"[red]error:[/] --server {exc}")
        raise typer.Exit(2) from None
    try:
        spool_path, spool_bytes = spool_options(spool_dir, no_spool, spool_max, transport)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if session is not None and not session.strip():
        console.print(
            "[red]error:[/] --session is empty: give an id, or leave the option out for the "
            f"default ({source}-<date>-<time>)"
        )
        raise typer.Exit(2)
    session = session or f"{source}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not SESSION_ID.match(session):
        console.print(
            "[red]error:[/] --session must be 1-64 letters, digits or ._:- "
            "starting with a letter or digit"
        )
        raise typer.Exit(2)
    try:
        src = make_source(
            source,
            capture=capture,
            cars=cars,
            seed=seed,
            rate=rate,
            duration=duration,
            file=file,
        )
    except SourceError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    try:
        the_agent = Agent(
            src,
            server=server,
            session=session,
            transport=transport,  # type: ignore[arg-type]
            batch_ms=batch_ms,
            spool_dir=spool_path,
            spool_max=spool_bytes,
        )
    except SpoolLocked as exc:
        console.print(f"[red]error:[/] {exc} (two agents streaming the same --session?)")
        raise typer.Exit(2) from None
    except SpoolError as exc:
        console.print(
            f"[red]error:[/] {exc}; choose a folder the agent can write with --spool-dir "
            "(or PITWIRE_SPOOL_DIR), or --no-spool"
        )
        raise typer.Exit(2) from None
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console.print(
        f"agent: source {source} → {safe_url(server)} session [bold]{session}[/] over "
        f"{transport}" + (f", spool {spool_path}" if spool_path is not None else "")
    )

    ended: list[bool] = []

    stopped: list[bool] = []

    async def run() -> None:
        def on_signal() -> None:
            stopped.append(True)
            console.print("agent: stopping; sending what is left (Ctrl+C again to quit now)")
            the_agent.stop()

        stop_on_signals(on_signal)  # the second Ctrl+C quits at once
        with contextlib.suppress(asyncio.CancelledError):
            await the_agent.run()
            if not stopped:
                ended.append(True)

    try:
        asyncio.run(run())
    except (UplinkError, SourceError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    r = the_agent.report()
    stored = r.frames_sent + r.resent - r.unacked - r.dropped
    resent = (
        f"re-sent from the spool of earlier runs {r.resent}"
        + (f" (sessions {', '.join(r.resumed)})" if r.resumed else "")
        + ", "
        if r.resent
        else ""
    )
    console.print(
        f"agent: {'source ended' if ended else 'stopped'}. Sessions {', '.join(r.sessions)}; "
        f"frames read {r.frames_in}, repeats dropped {r.duplicates}, sent {r.frames_sent}, "
        f"{resent}acknowledged as stored {stored}, not acknowledged {r.unacked}, "
        f"dropped ({'spool' if r.spool else 'queue'} full) {r.dropped}"
    )
    if r.unacked and r.spool:
        console.print(
            f"agent: the {r.unacked} frames not acknowledged are kept in the spool {r.spool}; "
            f"the agent sends them when it runs again with --server {safe_url(server)}"
        )
    if stopped and (r.unacked or r.dropped):
        console.print(
            f"[yellow]warning:[/] {r.unacked + r.dropped} frames did not reach the server "
            "before the agent stopped"
        )
    if ended and (r.unacked or r.dropped):
        console.print(
            "[red]error:[/] the source ended but not every frame reached the server; "
            "check that the server is running and reachable, then run the agent again"
        )
        raise typer.Exit(1)


@app.command()
def demo(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    cars: Annotated[int, typer.Option(help="Simulated cars.", min=1, max=64)] = 6,
    db: Db = DEFAULT_DB,
    seed: Annotated[int, typer.Option(help="Random seed of the simulation.")] = 0,
    log_level: LogLevel = "warning",
) -> None:
    """Run the server and a simulated agent together; Ctrl+C stops both."""
    _logging(log_level)

    if db.startswith("sqlite:///"):
        Path(db.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    session = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    child: list[subprocess.Popen[bytes]] = []

    def stop_agent() -> None:
        # Runs in the server's shutdown, before uvicorn re-raises SIGTERM/SIGINT.
        for proc in child:
            if proc.poll() is None:
                # The server is going away: no point in the agent waiting for acks, so a
                # second SIGTERM after a moment makes it quit at once.
                for wait in (0.5, 5.0):
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=wait)
                        break
                    except subprocess.TimeoutExpired:
                        continue
                if proc.poll() is None:
                    proc.kill()

    server_app = _make_app(db, on_shutdown=stop_agent)

    def ready(url: str) -> None:
        ws_url = "ws" + url[4:]
        child.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pitwire",
                    "agent",
                    "--source",
                    "sim",
                    "--cars",
                    str(cars),
                    "--seed",
                    str(seed),
                    "--server",
                    ws_url,
                    "--session",
                    session,
                    "--no-spool",  # its last frames can never be stored: keep no leftovers
                    "--log-level",
                    "error",  # its reconnect warnings at shutdown are noise here,
                ],
                # Its frames in flight when the demo stops cannot be stored (the server is
                # going away): its report would only alarm, so the demo's agent is silent.
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                # --no-spool: a spool folder from the environment would contradict it.
                env={k: v for k, v in os.environ.items() if k != "PITWIRE_SPOOL_DIR"},
            )
        )
        from pitwire.store import safe_url

        console.print(
            f"\n[bold green]pitwire demo[/]: {cars} simulated cars, session "
            f"[bold]{session}[/], store {safe_url(db)}"
        )
        console.print(f"  Dashboard: [bold underline]{url}/[/]")
        console.print(f"  API docs:  {url}/docs\n  Press Ctrl+C to stop.\n")
        print(f"PITWIRE_URL={url}/", flush=True)

    try:
        _run(server_app, host, port, ready, "Try PORT=8001 make demo (or --port).")
    finally:
        stop_agent()
        console.print("pitwire demo stopped.")


from pitwire.cli import f1 as _f1  # noqa: E402,F401 - the same
from pitwire.cli import files as _files  # noqa: E402,F401 - registers its commands on ``app``
from pitwire.cli import record as _record  # noqa: E402,F401 - the same
