import contextlib
import math
import mmap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pitwire.model.manifest import Manifest
from pitwire.sources import kunos_layouts as L
from pitwire.sources.base import DecodeError, Notice, Sample, SessionStarted, StreamSeen
from pitwire.sources.framer import Framer
from pitwire.sources.kunos import (
    STATIC_WAIT,
    AccDecoder,
    AcDecoder,
    _KunosDecoder,
    detect,
    flat_fields,
    read_static,
)
from pitwire.sources.layout import build

PSI = 6.894757293168361
LIVE, OFF, REPLAY, PAUSE = 2, 0, 1, 3


def static(game: str = "acc", **values: Any) -> bytes:
    base: dict[str, Any] = {
        "smVersion": "1.9" if game == "acc" else "1.7",
        "acVersion": "1.9" if game == "acc" else "1.16",
        "carModel": "ferrari_488_gt3" if game == "acc" else "ks_mazda_mx5_cup",
        "track": "monza",
        "trackConfiguration": "",
        "playerName": "Ada",
        "playerSurname": "Lovelace",
        "trackSPlineLength": 5793.0,
        "carSkin": "00_official",
        "maxRpm": 9000,
    }
    if game == "acc":
        base.update(isOnline=0, dryTyresName="DHF", wetTyresName="WH")
    base.update(values)
    return build(L.LAYOUTS[game]["static"], base)


def graphics(game: str = "acc", **values: Any) -> bytes:
    base: dict[str, Any] = {
        "packetId": 1,
        "status": LIVE,
        "session": 2,
        "completedLaps": 3,
        "position": 4,
        "iCurrentTime": 61234,
        "normalizedCarPosition": 0.25,
        "currentSectorIndex": 1,
    }
    if game == "acc":
        coords = [[0.0, 0.0, 0.0]] * 60
        coords[1] = [100.0, 5.0, -200.0]
        base.update(
            activeCars=3,
            carCoordinates=coords,
            carID=[7, 42, 9] + [0] * 57,
            playerCarID=42,
            TC=3,
            sessionIndex=0,
        )
    else:
        base.update(carCoordinates=[100.0, 5.0, -200.0])
    base.update(values)
    return build(L.LAYOUTS[game]["graphics"], base)


def physics(game: str = "acc", **values: Any) -> bytes:
    base: dict[str, Any] = {
        "packetId": 10,
        "gas": 0.8,
        "brake": 0.0,
        "clutch": 0.0,
        "fuel": 55.5,
        "gear": 4,
        "rpms": 7200,
        "steerAngle": -0.25,
        "speedKmh": 201.5,
        "accG": [0.5, 1.0, -0.25],
        "wheelsPressure": [27.5, 27.6, 26.9, 27.0],
        "tyreCoreTemperature": [80.0, 81.0, 78.0, 79.0],
        "brakeBias": 0.575,
    }
    base.update(values)
    return build(L.LAYOUTS[game]["physics"], base)


@contextlib.contextmanager
def mapped(tmp_path: Path, pages: dict[str, bytes]) -> Iterator[dict[str, mmap.mmap]]:
    """Page files written as the Proton bridge exposes them, mapped read-only."""
    with contextlib.ExitStack() as stack:
        maps = {}
        for tag, data in pages.items():
            path = tmp_path / f"acpmf_{tag}"
            path.write_bytes(data + bytes(max(1024 - len(data), 0)))
            f = stack.enter_context(open(path, "rb"))
            maps[tag] = stack.enter_context(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
        yield maps


def feed_all(dec: _KunosDecoder, pages: list[tuple[str, bytes]], t0: int = 1000) -> list[Any]:
    events: list[Any] = []
    for i, (tag, data) in enumerate(pages):
        events += dec.feed(data, t0 + i, tag)
    return events


def of(events: list[Any], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def start(dec: _KunosDecoder, game: str = "acc") -> list[Any]:
    return feed_all(dec, [("static", static(game)), ("graphics", graphics(game))])


@pytest.mark.parametrize(("decoder", "game"), [(AccDecoder, "acc"), (AcDecoder, "ac")])
def test_file_backed_maps_decode_through_the_manifest(
    tmp_path: Path, decoder: type[_KunosDecoder], game: str
) -> None:
    """Pages written with the documented layouts to 1024-byte map files decode to channels."""
    dec = decoder()
    framer = Framer(dec.manifest)
    pages = {"static": static(game), "graphics": graphics(game), "physics": physics(game)}
    with mapped(tmp_path, pages) as maps:
        for tag in ("static", "graphics", "physics"):
            view = maps[tag]
            assert len(view) == max(L.LAYOUTS[game][tag].itemsize, 1024)
            framer.add(dec.feed(view[:], 5_000, tag))
    items = framer.drain()
    assert items[0].key.startswith(f"{game}:monza:RACE:")
    assert items[0].track == "monza"
    assert items[1].info.driver == "Ada Lovelace"
    sid, batch = items[-1]
    assert sid == "car" and batch.n == 1 and batch.t_ns[0] == 5_000
    c = {k: float(v[0]) for k, v in batch.columns.items()}
    assert c["packet_id"] == 10
    assert c["speed"] == pytest.approx(201.5)
    assert c["gear"] == 3  # 4 = 3rd gear (0 R, 1 N)
    assert c["rpm"] == 7200 and c["fuel"] == pytest.approx(55.5)
    assert c["throttle"] == pytest.approx(0.8)
    assert c["steer_input"] == pytest.approx(-0.25) and "steer" not in c
    assert c["lap"] == 3 and c["position"] == 4
    assert c["lap_time"] == pytest.approx(61.234)
    assert c["lap_fraction"] == pytest.approx(0.25)
    assert c["lap_distance"] == pytest.approx(0.25 * 5793.0)
    assert (c["x"], c["y"], c["z"]) == (100.0, 200.0, 5.0)  # y = -z_game, z = y_game
    assert (c["g_lat"], c["g_vert"], c["g_lon"]) == (0.5, 1.0, -0.25)
    assert c["tyre_press_fl"] == pytest.approx(27.5 * PSI, rel=1e-6)
    assert c["tyre_press_rr"] == pytest.approx(27.0 * PSI, rel=1e-6)
    assert c["tyre_temp_rl"] == 78.0
    assert c["brake_bias"] == pytest.approx(0.575)
    assert c["sector"] == 1


def test_repeated_packet_id_gives_one_sample() -> None:
    """A physics page whose packetId did not change is skipped; a new one is a sample."""
    dec = AccDecoder()
    start(dec)
    first = dec.feed(physics(packetId=5), 1, "physics")
    again = dec.feed(physics(packetId=5, speedKmh=99.0), 2, "physics")
    then = dec.feed(physics(packetId=6), 3, "physics")
    assert len(of(first, Sample)) == 1 and again == [] and len(of(then, Sample)) == 1
    assert then[0].t_ns == 3 and then[0].values["packetId"] == 6


def test_samples_carry_the_latest_graphics_values() -> None:
    """Each sample has the graphics values of the latest graphics page."""
    dec = AccDecoder()
    start(dec)
    dec.feed(graphics(completedLaps=5, iCurrentTime=1000), 2, "graphics")
    (sample,) = dec.feed(physics(packetId=11), 3, "physics")
    assert sample.values["completedLaps"] == 5 and sample.values["iCurrentTime"] == 1000
    assert sample.values["carCoordinates[0]"] == 100.0


def test_first_live_graphics_starts_a_session_with_the_static_track_and_driver() -> None:
    """Static then live graphics: SessionStarted (static track) then StreamSeen (driver, car)."""
    dec = AccDecoder()
    events = feed_all(dec, [("static", static(trackConfiguration="")), ("graphics", graphics())])
    assert [type(e) for e in events] == [SessionStarted, StreamSeen]
    assert events[0].track == "monza"
    assert events[1] == StreamSeen("car", driver="Ada Lovelace", car="ferrari_488_gt3")


@pytest.mark.parametrize(
    ("change", "new_session"),
    [
        ({"session": 1}, True),  # race -> qualifying
        ({"sessionIndex": 1}, True),
        ({"completedLaps": 0}, True),  # laps went backwards: a restart
        ({"completedLaps": 4}, False),
        ({"iCurrentTime": 5}, False),
    ],
)
def test_session_changes_are_detected_from_graphics(
    change: dict[str, int], new_session: bool
) -> None:
    """A new session type or index, or completedLaps going backwards, starts a new session."""
    dec = AccDecoder()
    start(dec)
    events = dec.feed(graphics(**change), 2, "graphics")
    assert bool(of(events, SessionStarted)) is new_session
    if new_session:
        assert of(events, StreamSeen) == [StreamSeen("car", "Ada Lovelace", "ferrari_488_gt3")]


def test_status_off_then_live_starts_a_new_session_but_pause_does_not() -> None:
    """Back from OFF (menus) is a new session; back from PAUSE or REPLAY is the same one."""
    dec = AcDecoder()
    start(dec, "ac")
    for status in (PAUSE, LIVE, REPLAY, LIVE):
        assert not of(dec.feed(graphics("ac", status=status), 1, "graphics"), SessionStarted)
    dec.feed(graphics("ac", status=OFF), 2, "graphics")
    assert of(dec.feed(graphics("ac", status=LIVE), 3, "graphics"), SessionStarted)


@pytest.mark.parametrize("status", [OFF, REPLAY, PAUSE])
def test_no_samples_unless_live_with_a_notice_on_change(status: int) -> None:
    """OFF, REPLAY and PAUSE give no samples, and each status change is a Notice."""
    dec = AccDecoder()
    start(dec)
    events = dec.feed(graphics(status=status), 2, "graphics")
    assert [type(e) for e in events] == [Notice]
    assert L.STATUS_NAMES[status] in events[0].message
    assert dec.feed(physics(packetId=50), 3, "physics") == []
    back = dec.feed(graphics(status=LIVE), 4, "graphics")
    assert of(back, Notice) and "LIVE" in back[0].message
    assert of(dec.feed(physics(packetId=51), 5, "physics"), Sample)


def test_static_change_of_driver_is_a_stream_seen_and_of_track_a_new_session() -> None:
    """Mid-session: a new driver or car in static is StreamSeen; a new track a new session."""
    dec = AccDecoder()
    start(dec)
    events = dec.feed(static(playerName="Grace", playerSurname="Hopper"), 2, "static")
    assert events == [StreamSeen("car", driver="Grace Hopper", car="ferrari_488_gt3")]
    assert dec.feed(static(playerName="Grace", playerSurname="Hopper"), 3, "static") == []
    events = dec.feed(static(track="spa", trackConfiguration="gp"), 4, "static")
    assert [type(e) for e in events] == [SessionStarted, StreamSeen]
    assert events[0].track == "spa/gp"


def test_physics_before_graphics_and_static_is_held_back_not_lost() -> None:
    """A physics page fed before the others is emitted after the session starts."""
    dec = AccDecoder()
    events = feed_all(
        dec, [("physics", physics(packetId=3)), ("graphics", graphics()), ("static", static())]
    )
    assert [type(e) for e in events] == [SessionStarted, StreamSeen, Sample]
    assert events[2].t_ns == 1000 and events[2].values["packetId"] == 3


def test_samples_flow_without_a_static_page_after_a_while() -> None:
    """With no static page, samples start after STATIC_WAIT physics pages, with a Notice."""
    dec = AccDecoder()
    dec.feed(graphics(), 0, "graphics")
    events = []
    for i in range(STATIC_WAIT + 2):
        events += dec.feed(physics(packetId=100 + i), i, "physics")
    assert len(of(events, Notice)) == 1 and "static" in of(events, Notice)[0].message
    assert of(events, SessionStarted)[0].track == ""
    assert len(of(events, Sample)) == 4  # the last held-back page, then the 60th on


def test_acc_player_not_among_active_cars_has_no_coordinates() -> None:
    """ACC coordinates come from the player's carID row; a missing player gives NaN."""
    dec = AccDecoder()
    feed_all(dec, [("static", static()), ("graphics", graphics(playerCarID=5))])
    (sample,) = dec.feed(physics(packetId=1), 1, "physics")
    assert all(math.isnan(sample.values[f"carCoordinates[{i}]"]) for i in range(3))


@pytest.mark.parametrize("game", ["ac", "acc"])
def test_static_track_configuration_33_and_15_read_the_same(game: str) -> None:
    """A.3: pages written with trackConfiguration[33] and [15] give the same fields."""
    common = {
        "smVersion": "1.7",
        "carModel": "ks_porsche_911_gt3_r",
        "track": "ks_nordschleife",
        "trackConfiguration": "endurance",
        "playerName": "Ada",
        "carSkin": "02_yellow",
        "ersMaxJ": 0.0,
        "isTimedRace": 1,
        "PitWindowEnd": 12,
    }
    if game == "acc":
        common.update(isOnline=1, dryTyresName="DHF")
    full = L.STATIC_ACC if game == "acc" else L.STATIC_AC
    short = L.STATIC_ACC_TC15 if game == "acc" else L.STATIC_AC_TC15
    page33 = build(full, common)
    page15 = build(short, common) + bytes(1024 - short.itemsize)  # a 1024-byte map
    a, b = read_static(page33, game), read_static(page15, game)  # type: ignore[arg-type]
    assert (a.variant, b.variant) == (33, 15)
    for info in (a, b):
        assert info.track_name == "ks_nordschleife/endurance"
        assert info.car_skin == "02_yellow"
        assert info.values["isTimedRace"] == 1 and info.values["PitWindowEnd"] == 12
    if game == "acc":
        assert a.values["isOnline"] == b.values["isOnline"] == 1
    assert detect(page33) == detect(page15) == game


def test_a_15_variant_page_gives_a_notice_once() -> None:
    """The decoder reads a [15] static page and says so once."""
    dec = AccDecoder()
    page = build(
        L.STATIC_ACC_TC15,
        {
            "smVersion": "1.9",
            "track": "monza",
            "carSkin": "x",
            "trackConfiguration": "gp",
            "dryTyresName": "DHF",
        },
    )
    events = dec.feed(page, 1, "static")
    assert len(of(events, Notice)) == 1 and "[15]" in events[0].message
    assert dec.feed(page[:-4] + b"\1\0\0\0", 2, "static") == []  # changed, no new notice


def test_leftover_text_after_a_short_configuration_is_not_mistaken_for_15() -> None:
    """Non-zero units after the terminator that do not look like [15] fields stay [33]."""
    page = bytearray(static("ac", trackConfiguration="gp"))
    leftover = "xtra_long_leftover".encode("utf-16-le")  # 18 units after "gp\0"
    page[524 + 2 * 3 : 524 + 2 * 21] = leftover
    assert len(page) == 684 and read_static(bytes(page), "ac").variant == 33


def test_detect_tells_the_games_apart() -> None:
    """detect: ACC fills its tail after 684 bytes, AC does not; no version string is None."""
    assert detect(static("acc")) == "acc"
    assert detect(static("ac")) == "ac"
    assert detect(static("ac") + bytes(340)) == "ac"  # a 1024-byte map of AC
    assert detect(static("acc")[:684]) == "ac"  # ACC's tail missing: cannot tell, AC
    assert detect(bytes(1024)) is None
    assert detect(b"\xff" * 1024) is None
    assert detect(static("acc")[:100]) is None


@pytest.mark.parametrize(
    ("tag", "data", "problem"),
    [
        ("physics", physics()[:799], "physics page of 799 bytes"),
        ("graphics", graphics()[:1000], "graphics page of 1000 bytes"),
        ("static", static()[:700], "static page of 700 bytes"),
        ("motion", physics(), "unknown page tag"),
        ("graphics", graphics(status=7), "status 7"),
    ],
)
def test_bad_pages_raise_decode_error(tag: str, data: bytes, problem: str) -> None:
    """Short pages, unknown tags and undocumented status values raise DecodeError."""
    with pytest.raises(DecodeError, match=problem.replace("[", r"\[")):
        AccDecoder().feed(data, 0, tag)


def test_ac_pages_are_too_short_for_acc() -> None:
    """An AC physics page (580 bytes) fed to the ACC decoder is a DecodeError."""
    with pytest.raises(DecodeError, match="needs 800"):
        AccDecoder().feed(physics("ac"), 0, "physics")


@pytest.mark.parametrize("decoder", [AccDecoder, AcDecoder])
def test_every_manifest_raw_field_is_produced(decoder: type[_KunosDecoder]) -> None:
    """Every raw field the shipped manifest maps appears in a live sample."""
    dec = decoder()
    start(dec, decoder.game)
    (sample,) = dec.feed(physics(decoder.game), 0, "physics")
    assert set(dec.manifest.raw_fields) <= set(sample.values)
    assert dec.greeting() == []
    assert dec.name == dec.manifest.name == decoder.game


def test_a_manifest_naming_unknown_fields_is_refused() -> None:
    """A custom manifest mapping a field the pages do not have fails at construction."""
    text = '[source]\nname = "x"\n[[field]]\nraw = "turboPressure"\nchannel = "boost"\nunit = ""'
    with pytest.raises(ValueError, match="turboPressure"):
        AccDecoder(Manifest.loads(text))


def test_flat_fields_name_array_elements_and_skip_strings() -> None:
    """flat_fields lists numbers element-wise with word indexes and leaves strings out."""
    fields = {name: (i, kind) for name, i, kind in flat_fields(L.PHYSICS_AC)}
    assert fields["packetId"] == (0, "i") and fields["accG[2]"] == (13, "f")
    assert fields["tyreContactPoint[1][2]"] == (110, "f")
    names = {name for name, _, _ in flat_fields(L.STATIC_AC)}
    assert "carModel" not in names and "maxRpm" in names and not any("_pad" in n for n in names)
    assert len(flat_fields(L.PHYSICS_ACC)) * 4 == L.PHYSICS_ACC.itemsize


def test_zero_track_length_gives_nan_lap_distance() -> None:
    """Where the static page leaves trackSPlineLength 0, lap_distance is NaN, not 0."""
    dec = AccDecoder()
    framer = Framer(dec.manifest)
    framer.add(feed_all(dec, [("static", static(trackSPlineLength=0.0)), ("graphics", graphics())]))
    framer.add(dec.feed(physics(), 0, "physics"))
    _, batch = framer.drain()[-1]
    assert np.isnan(batch.columns["lap_distance"][0]) and np.isnan(batch.columns["track_length"][0])
