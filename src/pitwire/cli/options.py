"""Options shared by the commands that run a source (``agent``, ``record``): their flags as
typed annotations, and the checks that turn them into ``CaptureOptions``; the agent's spool
flags."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

Cars = Annotated[int, typer.Option(help="Simulated cars (sim).", min=1, max=64)]
Seed = Annotated[int, typer.Option(help="Random seed (sim).")]
Rate = Annotated[float, typer.Option(help="Frames per second per car (sim).", min=1, max=1000)]
Bind = Annotated[
    str,
    typer.Option(help="Address to listen on for UDP games (0.0.0.0: consoles and other PCs too)."),
]
UdpPort = Annotated[
    int | None,
    typer.Option(
        help="UDP port (default: the game's: f1 20777, forza 5300, outgauge 4444; "
        "ac-udp: the game's port 9996).",
        min=0,
        max=65535,
    ),
]
Forward = Annotated[
    list[str] | None,
    typer.Option(
        help="Re-send every raw datagram to HOST:PORT (repeat for several), so other apps keep "
        "working."
    ),
]
GameHost = Annotated[str, typer.Option(help="ac-udp: the machine Assetto Corsa runs on.")]
RecordRaw = Annotated[
    Path | None,
    typer.Option(help="Keep every received datagram/snapshot with receive times in FILE."),
]
ReplayRaw = Annotated[
    Path | None,
    typer.Option(help="Read a --record-raw capture instead of the game (same decode path)."),
]
MapFile = Annotated[
    list[str] | None,
    typer.Option(
        help="Shared-memory games: a file or folder standing in for the named map(s) "
        "(Linux/Proton, copies); TAG=PATH per page."
    ),
]
PollRate = Annotated[float, typer.Option(help="Shared-memory poll rate (Hz).", min=1, max=1000)]
Ibt = Annotated[
    Path | None, typer.Option(help="iracing: read this .ibt file instead of the live map.")
]
AcSubscribe = Annotated[
    str | None,
    typer.Option(
        help="ac-udp: update (car telemetry, default) or spot (lap completions of every car)."
    ),
]
OutsimOpts = Annotated[
    str | None, typer.Option(help="outgauge: the OutSim Opts hex value set in LFS (OutSimPack2).")
]


def source_options(source: str, file: Path | None, **flags: Any) -> Any:
    """``CaptureOptions`` from a command's capture flags (``bind``, ``port``, ``forward``,
    ``game_host``, ``record_raw``, ``replay_raw``, ``replay_speed``, ``map_file``,
    ``poll_rate``, ``ibt``, ``outsim_opts``, ``ac_subscribe``); ValueError names a bad one."""
    check_replay(source, file)
    flags["forward"] = flags["forward"] or []
    flags["map_files"] = flags.pop("map_file") or []
    return capture_options(source, **flags)


def check_replay(source: str, file: Path | None) -> None:
    """--file goes with --source replay, and --source replay needs it (ValueError)."""
    if file is not None and source != "replay":
        raise ValueError("--file is for --source replay")
    if source == "replay" and file is None:
        raise ValueError("--source replay needs --file FILE.pwr (the session file to play)")


def capture_options(source: str, **o: Any) -> Any:
    """The game-source options from the agent's flags; ValueError names a bad one."""
    from pitwire.sources.registry import GAMES, CaptureOptions
    from pitwire.sources.udp import parse_address

    game = GAMES.get(source)
    if o["ibt"] is not None and source != "iracing":
        raise ValueError("--ibt reads iRacing files: use it with --source iracing")
    if o["outsim_opts"] is not None and source != "outgauge":
        raise ValueError("--outsim-opts is for --source outgauge")
    if o["replay_raw"] is not None and o["record_raw"] is not None:
        raise ValueError("--replay-raw and --record-raw cannot be combined")
    if o["replay_speed"] < 0:
        raise ValueError(f"--replay-speed must be >= 0, not {o['replay_speed']}")
    if game is None and source != "auto":
        for flag in ("record_raw", "replay_raw"):
            if o[flag] is not None:
                raise ValueError(f"--{flag.replace('_', '-')} needs a game source, not {source}")
    kind = game.kind if game is not None else source  # udp, udp-client, shm, auto, sim
    given = {
        "--bind": o["bind"] != "0.0.0.0",
        "--port": o["port"] is not None,
        "--forward": bool(o["forward"]),
        "--map-file": bool(o["map_files"]),
        "--poll-rate": o["poll_rate"] != 60.0,
        "--ac-subscribe": o["ac_subscribe"] is not None,
    }
    applies = {
        "--bind": {"udp", "udp-client", "auto"},
        "--port": {"udp", "udp-client"},
        "--forward": {"udp", "udp-client", "auto"},
        "--map-file": {"shm", "auto"},
        "--poll-rate": {"shm", "auto"},
        "--ac-subscribe": set(),
    }
    if source == "ac-udp":
        applies["--ac-subscribe"] = {"udp-client"}
    for flag, was_given in given.items():
        if was_given and kind not in applies[flag]:
            what = "UDP games" if "udp" in applies[flag] else "shared-memory games"
            if flag == "--ac-subscribe":
                what = "--source ac-udp"
            elif flag == "--port" and kind == "auto":
                what = "a named --source (auto uses each game's default port)"
            raise ValueError(f"{flag} applies to {what}, not --source {source}")
    if o["ibt"] is not None or o["replay_raw"] is not None:
        for flag in ("--forward", "--bind", "--map-file", "--record-raw"):
            if given.get(flag) or (flag == "--record-raw" and o["record_raw"] is not None):
                source_flag = "--ibt" if o["ibt"] is not None else "--replay-raw"
                raise ValueError(f"{flag} does not apply when reading {source_flag}")
    decoder_options: dict[str, Any] = {}
    if o["outsim_opts"] is not None:
        try:
            decoder_options["outsim_opts"] = int(o["outsim_opts"], 16)
        except ValueError:
            raise ValueError(f"--outsim-opts {o['outsim_opts']!r} is not a hex number") from None
    if o["ibt"] is not None:
        decoder_options["ibt"] = o["ibt"]
    if o["ac_subscribe"] is not None:
        if o["ac_subscribe"] not in ("update", "spot"):
            raise ValueError(f"--ac-subscribe must be update or spot, not {o['ac_subscribe']!r}")
        decoder_options["subscribe"] = o["ac_subscribe"]
    return CaptureOptions(
        bind=o["bind"],
        port=o["port"],
        forward=[parse_address(f) for f in o["forward"]],
        game_host=o["game_host"],
        record_raw=o["record_raw"],
        replay_raw=o["replay_raw"],
        replay_speed=o["replay_speed"],
        map_files=o["map_files"],
        poll_rate=o["poll_rate"],
        decoder_options=decoder_options,
    )


def default_spool_dir() -> Path:
    """The per-user folder for the agent's spool: ``$XDG_STATE_HOME/pitwire/spool``
    (``~/.local/state/pitwire/spool``) on Linux, ``~/Library/Application Support/pitwire/
    spool`` on macOS, ``%LOCALAPPDATA%\\pitwire\\spool`` on Windows."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        state = os.environ.get("XDG_STATE_HOME", "")
        base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "pitwire" / "spool"


SpoolDir = Annotated[
    str | None,  # not a Path: typer would turn "" into "." (the current folder)
    typer.Option(
        help="Keep the frames the server has not acknowledged yet in this folder, one "
        "subfolder per session: they survive a restart or crash of the agent and are sent "
        "when it runs again. Default: a per-user folder (~/.local/state/pitwire/spool on "
        "Linux).",
        envvar="PITWIRE_SPOOL_DIR",
        show_default=False,
    ),
]
NoSpool = Annotated[
    bool,
    typer.Option(
        "--no-spool",
        help="Keep unacknowledged frames in memory only (lost when the agent stops).",
    ),
]
SpoolMax = Annotated[
    str,
    typer.Option(
        help="Disk bound of each session's spool, e.g. 512MB or 2GB (at least 16MB); past it "
        "the oldest unacknowledged frames are dropped (a gap in the session unless the "
        "server acknowledges them later)."
    ),
]
DEFAULT_SPOOL_MAX = "1GB"

MIN_SPOOL_BYTES = 16 * 10**6
"""The smallest --spool-max [bytes]: about 30 s of 20 cars at 60 Hz, so that frames waiting
for their ack (a second or so) are not dropped."""
_UNITS = {"": 1, "b": 1} | {
    unit: base**power
    for power, prefix in enumerate("kmgt", 1)
    for unit, base in ((prefix, 1024), (prefix + "b", 1000), (prefix + "ib", 1024))
}


def parse_size(text: str) -> int:
    """Bytes from a size such as ``512MB``, ``2GB``, ``100MiB``, ``1.5G`` or ``4096``: KB, MB,
    GB and TB are powers of 1000; KiB..TiB and K, M, G, T powers of 1024 (as ``serve
    --spool-max``); ValueError if malformed."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*", text)
    if m is None or m[2].lower() not in _UNITS:
        raise ValueError(f"{text!r} is not a size (examples: 512MB, 2GB, 100MiB)")
    return int(float(m[1]) * _UNITS[m[2].lower()])


def spool_options(
    spool_dir: str | os.PathLike[str] | None, no_spool: bool, spool_max: str, transport: str
) -> tuple[Path | None, int]:
    """The agent's spool folder (None: memory) and bound [bytes] from its flags; ValueError
    names a bad one."""
    if isinstance(spool_dir, str):
        if not spool_dir.strip():
            raise ValueError(
                "--spool-dir is empty: give a folder, or leave the option out for the "
                "per-user default"
            )
        spool_dir = Path(spool_dir)
    elif spool_dir is not None:
        spool_dir = Path(spool_dir)
    try:
        max_bytes = parse_size(spool_max)
    except ValueError as exc:
        raise ValueError(f"--spool-max: {exc}") from None
    if max_bytes < MIN_SPOOL_BYTES:
        raise ValueError(
            f"--spool-max must be at least 16MB (about 30 s of 20 cars at 60 Hz, so that "
            f"frames waiting for their acknowledgement are not dropped), not {spool_max!r}"
        )
    if no_spool and spool_dir is not None:
        raise ValueError("--no-spool and --spool-dir (or PITWIRE_SPOOL_DIR) cannot be combined")
    if transport != "ws":
        if spool_dir is not None:
            raise ValueError("--spool-dir applies to --transport ws (http has no acknowledgements)")
        return None, max_bytes
    if no_spool:
        return None, max_bytes
    return (spool_dir if spool_dir is not None else default_spool_dir()), max_bytes


def stop_on_signals(on_first: Callable[[], None]) -> None:
    """Ctrl+C/SIGTERM call ``on_first`` once; a second one cancels the running task (quit at
    once). Call from inside the task to stop."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    seen: list[bool] = []

    def handler() -> None:
        if seen and task is not None:
            task.cancel()
            return
        seen.append(True)
        on_first()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows loops have no signal handlers
            loop.add_signal_handler(sig, handler)
