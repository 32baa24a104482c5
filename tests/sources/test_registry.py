import contextlib

import pytest

from pitwire.model.channels import STANDARD
from pitwire.sources.base import SourceError
from pitwire.sources.live import DecoderSource
from pitwire.sources.registry import GAMES, SOURCE_NAMES, CaptureOptions, make_source
from pitwire.sources.shm import MapTransport
from pitwire.sources.udp import UdpTransport


@pytest.mark.parametrize("name", sorted(GAMES))
def test_every_game_has_a_decoder_and_a_manifest_mapping_standard_channels(name: str) -> None:
    """Each registered game builds its decoder, named after it, whose manifest maps at least
    speed, rpm and gear into the standard channels with the standard units."""
    decoder = GAMES[name].make_decoder()
    assert decoder.name == name
    channels = decoder.manifest.channels
    for std in ("speed", "rpm", "gear"):
        mapped, standard = channels[std], STANDARD[std]
        assert (mapped.unit, mapped.resolution, mapped.lo, mapped.hi) == (
            standard.unit,
            standard.resolution,
            standard.lo,
            standard.hi,
        )


@pytest.mark.parametrize("name", sorted(GAMES))
def test_make_source_puts_each_game_on_its_transport(name: str) -> None:
    """UDP games get a UDP transport on their default port, map games a map poller."""
    source = make_source(name, capture=CaptureOptions())
    assert isinstance(source, DecoderSource)
    game = GAMES[name]
    if game.kind == "shm":
        assert isinstance(source.transport, MapTransport)
    else:
        assert isinstance(source.transport, UdpTransport)
        if game.kind == "udp":
            assert source.transport.port == game.port
        else:
            assert source.transport.game == ("127.0.0.1", game.port)


def test_options_reach_the_transport() -> None:
    """--bind, --port and --forward configure the UDP transport."""
    source = make_source(
        "f1", capture=CaptureOptions(bind="127.0.0.1", port=20999, forward=[("10.0.0.2", 20777)])
    )
    assert isinstance(source, DecoderSource)
    t = source.transport
    assert isinstance(t, UdpTransport)
    assert (t.host, t.port, t.forward) == ("127.0.0.1", 20999, [("10.0.0.2", 20777)])


def test_unknown_sources_are_named() -> None:
    """An unknown source name lists every known one."""
    with pytest.raises(SourceError, match="known sources: sim, f1") as info:
        make_source("gran-turismo")
    assert all(name in str(info.value) for name in SOURCE_NAMES)


@pytest.mark.parametrize("name", sorted(GAMES))
def test_random_bytes_only_ever_raise_decode_error(name: str) -> None:
    """Garbage of any length (and of each format's own lengths) never escapes a decoder as
    anything but DecodeError, whatever state earlier packets left it in."""
    import random

    from pitwire.sources.base import DecodeError

    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    decoder = GAMES[name].make_decoder()
    tags = {"acc": ["physics", "graphics", "static"], "ac": ["physics", "graphics", "static"]}
    tags["iracing"] = ["header", "vars", "yaml", "row"]
    lengths = [0, 1, 3, 24, 29, 45, 64, 88, 92, 96, 232, 311, 324, 331, 408, 580, 800, 1349, 1352]
    for _ in range(3000):
        size = rng.choice(lengths) + rng.choice([0, 0, 0, 1, -1])
        data = rng.randbytes(max(size, 0))
        tag = rng.choice(tags.get(name, [""]))
        with contextlib.suppress(DecodeError):
            decoder.feed(data, 1_700_000_000_000_000_000, tag)


def _kunos_pages(folder, game: str, packet: int) -> None:  # type: ignore[no-untyped-def]
    """Write the three pages as the Proton bridge exposes them (files named after the maps)."""
    from pitwire.sources import kunos_layouts as layouts
    from pitwire.sources.layout import build

    acc = game == "acc"
    static = {
        "smVersion": "1.9" if acc else "1.7",
        "acVersion": "1.9" if acc else "1.16",
        "carModel": "ferrari_488_gt3" if acc else "ks_mazda_mx5_cup",
        "track": "monza",
        "playerName": "Ada",
        "playerSurname": "Lovelace",
        "trackSPlineLength": 5793.0,
    }
    if acc:
        static |= {"isOnline": 0, "dryTyresName": "DHF", "wetTyresName": "WH"}
    graphics = {"packetId": packet, "status": 2, "session": 2, "completedLaps": 3}
    physics = {"packetId": packet, "gear": 4, "rpms": 7200, "speedKmh": 201.5}
    for tag, values in (("static", static), ("graphics", graphics), ("physics", physics)):
        (folder / f"acpmf_{tag}").write_bytes(build(layouts.LAYOUTS[game][tag], values))


@pytest.mark.parametrize("game", ["acc", "ac"])
async def test_shared_memory_games_read_map_files_into_frames(game: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--source acc/ac --map-file DIR polls the page files: the car is announced with its
    driver and car, the session with its track, and frames come in channel units."""
    import asyncio

    from pitwire.sources.base import SessionChange, StreamUpdate

    _kunos_pages(tmp_path, game, 1)
    source = make_source(game, capture=CaptureOptions(map_files=[str(tmp_path)], poll_rate=200))
    items = []
    async with asyncio.timeout(5):
        async for item in source:
            items.append(item)
            if isinstance(item, tuple):
                break
    change = next(i for i in items if isinstance(i, SessionChange))
    update = next(i for i in items if isinstance(i, StreamUpdate))
    _, batch = items[-1]
    assert change.track.startswith("monza")
    assert update.info.driver == "Ada Lovelace" and update.info.car
    assert batch.columns["speed"][0] == pytest.approx(201.5)
    assert batch.columns["gear"][0] == 3 and batch.columns["lap"][0] == 3


@pytest.mark.parametrize("game", ["acc", "ac"])
async def test_auto_tells_ac_from_acc_by_the_static_page(game: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """auto polls the Kunos maps once for both games and keeps the one the pages are from."""
    import asyncio

    from pitwire.sources.auto import AutoSource

    _kunos_pages(tmp_path, game, 1)
    auto = AutoSource(
        CaptureOptions(map_files=[str(tmp_path)], poll_rate=200),
        games={name: GAMES[name] for name in ("acc", "ac")},
    )
    async with asyncio.timeout(5):
        async for item in auto:
            if isinstance(item, tuple):
                break
    assert auto.info.source == game
