"""Source registry: name → how to build it. A new game is a decoder module, a manifest and
one :class:`Game` entry here; nothing in the agent or server changes.

Every game source is a :class:`~pitwire.sources.live.DecoderSource`: the game's decoder on
the transport its feed arrives by (a UDP port, shared memory, or a raw capture played back
with ``replay_raw``). ``auto`` listens on every known port and map at once and keeps the
first source that produces data.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pitwire.sources.base import Decoder, Source, SourceError, Transport
from pitwire.sources.shm import Page


@dataclass(frozen=True, slots=True)
class Game:
    """How a game's feed arrives and which decoder reads it."""

    name: str
    decoder: str | Callable[..., Decoder]
    """``module:Class`` under ``pitwire.sources`` (imported on use), or a factory."""
    kind: Literal["udp", "udp-client", "shm"]
    """udp: pitwire listens where the game sends; udp-client: pitwire asks the game
    (handshake) and listens for the answers; shm: pitwire polls the game's memory maps."""
    description: str
    port: int = 0
    """udp: the game's default send port; udp-client: the game's listening port."""
    hint: str = ""
    pages: tuple[Page, ...] = ()
    reader: str = ""
    """shm: the decoder method that copies pieces out of the maps (large maps only)."""
    auto: bool = True
    """Part of ``--source auto``."""

    def make_decoder(self, **kwargs: Any) -> Decoder:
        if callable(self.decoder):
            return self.decoder(**kwargs)
        module, _, cls = self.decoder.partition(":")
        decoder_type = getattr(importlib.import_module(f"pitwire.sources.{module}"), cls)
        decoder: Decoder = decoder_type(**kwargs)
        return decoder


_KUNOS_HINT = (
    "Is the game running and on track? On Linux/Proton the maps appear as "
    "/dev/shm/acpmf_*; elsewhere pass --map-file."
)


def _kunos_pages(physics: int, graphics: int, static: int) -> tuple[Page, ...]:
    # Mapped at least 1 KiB: readers disagree on the static page's size (formats.md A.3).
    # Static first, then graphics, then physics: a physics frame decodes with what the
    # other pages said in the same tick.
    return (
        Page("static", "Local\\acpmf_static", max(static, 1024)),
        Page("graphics", "Local\\acpmf_graphics", max(graphics, 1024)),
        Page("physics", "Local\\acpmf_physics", max(physics, 1024)),
    )


GAMES: dict[str, Game] = {
    g.name: g
    for g in [
        Game(
            "f1",
            "f1:F1Decoder",
            "udp",
            "EA F1 23/24/25 UDP telemetry (all cars of the session)",
            port=20777,
            hint="In the game: Settings > Telemetry Settings > UDP Telemetry On, UDP port "
            "{port}, UDP IP address: this machine's.",
        ),
        Game(
            "forza",
            "forza:ForzaDecoder",
            "udp",
            "Forza Motorsport 7/2023, Forza Horizon 4/5 Data Out",
            port=5300,
            hint="In the game: HUD and Gameplay > Data Out On, Data Out IP Address: this "
            "machine's, Data Out IP Port {port}.",
        ),
        Game(
            "outgauge",
            "outgauge:OutGaugeDecoder",
            "udp",
            "Live for Speed and BeamNG OutGauge (and OutSim / MotionSim)",
            port=4444,
            hint="LFS: OutGauge Mode 1, OutGauge IP this machine's, OutGauge Port {port} in "
            "cfg.txt; BeamNG: Options > Other > Protocols > OutGauge, port {port}.",
        ),
        Game(
            "ac-udp",
            "acudp:AcUdpDecoder",
            "udp-client",
            "Assetto Corsa remote telemetry (UDP 9996 handshake)",
            port=9996,
            hint="Assetto Corsa answers on UDP {port} while you are driving; check --game-host.",
        ),
        Game(
            "acc",
            "kunos:AccDecoder",
            "shm",
            "Assetto Corsa Competizione shared memory",
            hint=_KUNOS_HINT,
            pages=_kunos_pages(800, 1588, 820),
        ),
        Game(
            "ac",
            "kunos:AcDecoder",
            "shm",
            "Assetto Corsa shared memory",
            hint=_KUNOS_HINT,
            pages=_kunos_pages(580, 296, 684),
            auto=False,  # same maps as acc: auto tells them apart from the static page
        ),
        Game(
            "iracing",
            "iracing:IRacingDecoder",
            "shm",
            "iRacing live memory map (or an .ibt file with --ibt)",
            hint="Is iRacing running and in the car? Elsewhere pass --map-file.",
            pages=(Page("map", "Local\\IRSDKMemMapFileName", 780 * 1024),),  # irsdk_defines.h
            reader="snapshot",
            auto=sys.platform == "win32",
        ),
    ]
}


@dataclass(slots=True)
class CaptureOptions:
    """How to run a game source (the agent's command-line options)."""

    bind: str = "0.0.0.0"
    port: int | None = None
    forward: list[tuple[str, int]] = field(default_factory=list)
    game_host: str = "127.0.0.1"
    record_raw: Path | None = None
    replay_raw: Path | None = None
    replay_speed: float = 1.0
    map_files: list[str] = field(default_factory=list)
    poll_rate: float = 60.0
    decoder_options: dict[str, Any] = field(default_factory=dict)


def make_transport(game: Game, decoder: Decoder, opts: CaptureOptions) -> Transport:
    """The transport ``game``'s feed arrives by, configured by ``opts``."""
    from pitwire.sources.rawcapture import RawReplayTransport
    from pitwire.sources.shm import MapTransport, map_files
    from pitwire.sources.udp import UdpTransport

    if opts.replay_raw is not None:
        return RawReplayTransport(opts.replay_raw, source=game.name, speed=opts.replay_speed)
    if game.kind == "udp":
        port = game.port if opts.port is None else opts.port
        hint = game.hint.format(port=port)
        return UdpTransport(host=opts.bind, port=port, forward=opts.forward, hint=hint)
    if game.kind == "udp-client":
        game_port = game.port if opts.port is None else opts.port
        return UdpTransport(
            host=opts.bind,
            port=0,
            forward=opts.forward,
            game=(opts.game_host, game_port),
            hint=game.hint.format(port=game_port),
        )
    reader: Callable[..., Any] | None = None
    if game.reader:
        method = getattr(decoder, game.reader)
        page = game.pages[0].tag
        reader = lambda views: method(views[page]) if page in views else []  # noqa: E731
    return MapTransport(
        list(game.pages),
        files=map_files(list(game.pages), opts.map_files),
        rate_hz=opts.poll_rate,
        reader=reader,
        hint=game.hint,
    )


def make_game_source(name: str, opts: CaptureOptions) -> Source:
    from pitwire.sources.live import DecoderSource

    game = GAMES[name]
    options = dict(opts.decoder_options)
    ibt = options.pop("ibt", None)
    if ibt is not None:
        from pitwire.sources.ibtsource import IbtSource

        return IbtSource(ibt, speed=opts.replay_speed)
    decoder = game.make_decoder(**options)
    transport = make_transport(game, decoder, opts)
    return DecoderSource(decoder, transport, record=opts.record_raw)


def _sim(**opts: Any) -> Source:
    from pitwire.sources.sim import SimSource

    return SimSource(
        cars=opts.get("cars", 6),
        seed=opts.get("seed", 0),
        rate_hz=opts.get("rate", 60.0),
        duration=opts.get("duration"),
        realtime=opts.get("realtime", True),
    )


SOURCE_NAMES = ["sim", *GAMES, "auto", "replay"]


def make_source(name: str, *, capture: CaptureOptions | None = None, **opts: Any) -> Source:
    """Build the source called ``name``; raise SourceError naming the known ones."""
    if name == "sim":
        return _sim(**opts)
    if name in GAMES:
        return make_game_source(name, capture or CaptureOptions())
    if name == "auto":
        from pitwire.sources.auto import AutoSource

        return AutoSource(capture or CaptureOptions())
    if name == "replay":
        from pitwire.sources.replay import ReplaySource

        if opts.get("file") is None:
            raise SourceError("the replay source needs a session file (file=...)")
        speed = (capture or CaptureOptions()).replay_speed
        return ReplaySource(opts["file"], speed=opts.get("speed", speed))
    raise SourceError(f"unknown source {name!r}; known sources: {', '.join(SOURCE_NAMES)}")
