import math
import random
import struct as pystruct

import numpy as np
import pytest

from pitwire.sources.acudp import (
    DISMISS,
    HANDSHAKE,
    HANDSHAKER,
    HANDSHAKER_RESPONSE,
    RT_CAR_INFO,
    RT_LAP,
    SUBSCRIBE_SPOT,
    SUBSCRIBE_UPDATE,
    AcUdpDecoder,
)
from pitwire.sources.base import (
    DecodeError,
    Notice,
    Sample,
    Send,
    SessionChange,
    SessionStarted,
    SourceError,
    StreamSeen,
    StreamUpdate,
)
from pitwire.sources.framer import Framer
from pitwire.sources.layout import build

T0 = 1_700_000_000_000_000_000


def _response(
    car: str = "ks_mazda_mx5_cup%",
    driver: str = "Ann Example%",
    track: str = "magione%",
    config: str = "%",
    identifier: int = 4242,
) -> bytes:
    return build(
        HANDSHAKER_RESPONSE,
        {
            "carName": car,
            "driverName": driver,
            "identifier": identifier,
            "version": 1,
            "trackName": track,
            "trackConfig": config,
        },
    )


def _car_info(**values: float) -> bytes:
    return build(RT_CAR_INFO, {"_identifier": b"a", "size": 328, **values})


def _lap(car_id: int, lap: int, driver: str, car: str, time_ms: int) -> bytes:
    return build(
        RT_LAP,
        {
            "carIdentifierNumber": car_id,
            "lap": lap,
            "driverName": driver,
            "carName": car,
            "time": time_ms,
        },
    )


def test_datagrams_have_the_documented_sizes() -> None:
    """handshaker 12, handshakerResponse 408 (UTF-16 names), RTCarInfo 328, RTLap 212 bytes."""
    sizes = [x.itemsize for x in (HANDSHAKER, HANDSHAKER_RESPONSE, RT_CAR_INFO, RT_LAP)]
    assert sizes == [12, 408, 328, 212]


def test_car_info_fields_sit_at_the_documented_offsets() -> None:
    """Built RTCarInfo bytes hold each field where the natural C alignment puts it."""
    data = _car_info(
        speed_Kmh=123.5,
        isAbsEnabled=1,
        isEngineLimiterOn=1,
        accG_vertical=0.25,
        lapTime=83456,
        lapCount=7,
        gas=0.5,
        engineRPM=7400.0,
        gear=3,
        cgHeight=0.3,
        **{"wheelAngularSpeed[0]": 99.0, "suspensionHeight[3]": 0.125},
        carPositionNormalized=0.75,
        **{"carCoordinates[2]": -512.5},
    )
    assert pystruct.unpack_from("<c3xif", data, 0) == (b"a", 328, 123.5)
    assert pystruct.unpack_from("<6B", data, 20) == (1, 0, 0, 0, 0, 1)
    assert pystruct.unpack_from("<f", data, 28) == (0.25,)
    assert pystruct.unpack_from("<iiiif", data, 40) == (83456, 0, 0, 7, 0.5)
    assert pystruct.unpack_from("<f", data, 68) == (7400.0,)
    assert pystruct.unpack_from("<if", data, 76) == (3, pytest.approx(0.3))
    assert pystruct.unpack_from("<f", data, 84) == (99.0,)
    assert pystruct.unpack_from("<f", data, 304) == (0.125,)
    assert pystruct.unpack_from("<f", data, 308) == (0.75,)
    assert pystruct.unpack_from("<f", data, 324) == (-512.5,)


def test_handshake_response_and_lap_strings_sit_at_their_offsets() -> None:
    """The wchar_t[50] names take 100 bytes each; the ints sit between and after them."""
    data = _response("car%", "drv%", "trk%", "cfg%")
    assert data[0:8].decode("utf-16-le") == "car%"
    assert data[100:108].decode("utf-16-le") == "drv%"
    assert pystruct.unpack_from("<ii", data, 200) == (4242, 1)
    assert data[208:216].decode("utf-16-le") == "trk%"
    assert data[308:316].decode("utf-16-le") == "cfg%"
    lap = _lap(3, 5, "Bo", "abarth", 91234)
    assert pystruct.unpack_from("<ii", lap, 0) == (3, 5)
    assert lap[8:12].decode("utf-16-le") == "Bo"
    assert lap[108:120].decode("utf-16-le") == "abarth"
    assert pystruct.unpack_from("<i", lap, 208) == (91234,)


def test_greeting_and_dismiss_are_handshakers() -> None:
    """greeting() is one HANDSHAKE handshaker (1, 1, 0); dismiss() is DISMISS (1, 1, 3)."""
    decoder = AcUdpDecoder()
    assert decoder.greeting() == [pystruct.pack("<iii", 1, 1, HANDSHAKE)]
    assert decoder.dismiss() == pystruct.pack("<iii", 1, 1, DISMISS)


def test_handshake_subscribe_update_dismiss_sequence() -> None:
    """The response starts a session, names car and driver, subscribes; updates become frames."""
    decoder = AcUdpDecoder()
    framer = Framer(decoder.manifest)
    events = decoder.feed(_response(), T0)
    assert events == [
        SessionStarted(key="ac-udp:magione:ks_mazda_mx5_cup:Ann Example", track="magione"),
        StreamSeen("car", driver="Ann Example", car="ks_mazda_mx5_cup"),
        Send(pystruct.pack("<iii", 1, 1, SUBSCRIBE_UPDATE)),
    ]
    framer.add(events)
    for i in range(3):
        framer.add(decoder.feed(_car_info(speed_Kmh=100.0 + i, gear=2, lapCount=1), T0 + i))
    items = framer.drain()
    assert framer.sends == [pystruct.pack("<iii", 1, 1, SUBSCRIBE_UPDATE)]
    assert isinstance(items[0], SessionChange) and items[0].track == "magione"
    assert isinstance(items[1], StreamUpdate)
    assert (items[1].info.driver, items[1].info.car) == ("Ann Example", "ks_mazda_mx5_cup")
    stream, batch = items[2]
    assert stream == "car" and list(batch.t_ns) == [T0, T0 + 1, T0 + 2]
    assert list(batch.columns["speed"]) == [100.0, 101.0, 102.0]
    assert decoder.dismiss()[8:] == pystruct.pack("<i", DISMISS)


def test_a_repeated_response_resubscribes_without_a_new_session() -> None:
    """The same car, driver and track again (after silence) only subscribes again."""
    decoder = AcUdpDecoder()
    decoder.feed(_response(), T0)
    again = decoder.feed(_response(), T0)
    assert [type(e) for e in again] == [StreamSeen, Send]
    other = decoder.feed(_response(track="monza%", config="junior%"), T0)
    assert other[0] == SessionStarted(
        key="ac-udp:monza (junior):ks_mazda_mx5_cup:Ann Example", track="monza (junior)"
    )


def test_spot_subscription_and_laps_of_every_car() -> None:
    """subscribe='spot' asks for SUBSCRIBE_SPOT; RTLap of the own car is car, others car-N."""
    decoder = AcUdpDecoder(subscribe="spot")
    assert decoder.feed(_response(), T0)[-1] == Send(pystruct.pack("<iii", 1, 1, SUBSCRIBE_SPOT))
    own = decoder.feed(_lap(0, 3, "Ann Example", "ks_mazda_mx5_cup", 90500), T0)
    assert own == [Sample("car", T0, {"lap": 3.0, "time": 90500.0})]
    other = decoder.feed(_lap(4, 2, "Bo", "abarth500", 95000), T0 + 1)
    assert other == [
        StreamSeen("car-4", driver="Bo", car="abarth500"),
        Sample("car-4", T0 + 1, {"lap": 2.0, "time": 95000.0}),
    ]
    assert [type(e) for e in decoder.feed(_lap(4, 3, "Bo", "abarth500", 94000), T0)] == [Sample]


def test_an_unexpected_identifier_is_noticed() -> None:
    """A response whose identifier is not 4242 still subscribes, with a notice."""
    events = AcUdpDecoder().feed(_response(identifier=7), T0)
    assert isinstance(events[0], Notice) and "identifier 7" in events[0].message
    assert isinstance(events[-1], Send)


def test_car_info_round_trips() -> None:
    """Spec-built RTCarInfo bytes decode to the values they were built from."""
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    values: dict[str, float] = {}
    for name in RT_CAR_INFO.names:
        dtype = RT_CAR_INFO.fields[name][0]
        if name.startswith("_") or name == "size":
            continue
        if dtype.kind == "f":
            values[name] = float(np.float32(rng.uniform(-1e3, 1e3)))
        else:
            info = np.iinfo(dtype)
            values[name] = float(rng.randint(int(info.min), int(info.max)))
    [sample] = AcUdpDecoder().feed(_car_info(**values), T0)
    assert isinstance(sample, Sample) and sample.stream == "car"
    assert dict(sample.values) == values


def test_manifest_converts_units_to_the_standard_channels() -> None:
    """AC gear codes, ms lap times and Y-up coordinates become -1/0/n, s and x/y/z with z up."""
    decoder = AcUdpDecoder()
    framer = Framer(decoder.manifest)
    framer.add(decoder.feed(_response(), T0))
    framer.add(decoder.feed(_car_info(gear=0, lapTime=83456, speed_Kmh=250.0), T0))
    framer.add(decoder.feed(_car_info(gear=1, lastLap=90001, carPositionNormalized=0.5), T0 + 1))
    coordinates = {"carCoordinates[0]": 1.0, "carCoordinates[1]": 2.0, "carCoordinates[2]": 3.0}
    framer.add(decoder.feed(_car_info(gear=2, lapCount=4, accG_horizontal=1.5, **coordinates), T0))
    framer.add(decoder.feed(_lap(0, 9, "Ann Example", "ks_mazda_mx5_cup", 61000), T0 + 3))
    [(stream, batch)] = [item for item in framer.drain() if isinstance(item, tuple)]
    assert stream == "car" and batch.n == 4
    c = batch.columns
    assert list(c["gear"][:3]) == [-1.0, 0.0, 1.0]
    assert c["lap_time"][0] == pytest.approx(83.456)
    assert c["speed"][0] == 250.0
    assert c["last_lap_time"][1] == pytest.approx(90.001)
    assert c["lap_fraction"][1] == 0.5
    assert (c["x"][2], c["y"][2], c["z"][2], c["lap"][2], c["g_lat"][2]) == (1, -3, 2, 4, 1.5)
    assert c["spot_lap_time"][3] == 61.0 and math.isnan(c["speed"][3])


@pytest.mark.parametrize("size", [0, 12, 211, 213, 327, 329, 407, 409, 1024])
def test_other_lengths_raise_decode_error(size: int) -> None:
    """A datagram of no known length is a DecodeError naming the length."""
    with pytest.raises(DecodeError, match=f"a {size}-byte datagram"):
        AcUdpDecoder().feed(bytes(size), T0)


def test_malformed_car_info_raises_decode_error() -> None:
    """328 bytes without the 'a' identifier or with another size field are DecodeErrors."""
    with pytest.raises(DecodeError, match="identifier 'a'"):
        AcUdpDecoder().feed(bytes(328), T0)
    with pytest.raises(DecodeError, match="size is 100, not 328"):
        AcUdpDecoder().feed(build(RT_CAR_INFO, {"_identifier": b"a", "size": 100}), T0)


def test_every_mapped_raw_field_is_one_the_decoder_produces() -> None:
    """The manifest reads only RTCarInfo and RTLap fields."""
    produced = {n for n in RT_CAR_INFO.names if not n.startswith("_")} | {"lap", "time"}
    assert set(AcUdpDecoder.manifest.raw_fields) <= produced
    assert AcUdpDecoder.manifest.name == "ac-udp"


def test_an_unknown_subscription_refuses_to_start() -> None:
    """subscribe must be update or spot: anything else is a SourceError."""
    with pytest.raises(SourceError, match="subscribe must be 'update' or 'spot', not 'all'"):
        AcUdpDecoder(subscribe="all")  # type: ignore[arg-type]
