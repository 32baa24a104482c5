import math
import random
import struct as pystruct
from typing import Any

import numpy as np
import pytest

from pitwire.model.frames import FrameBatch
from pitwire.sources.base import DecodeError, Sample, SourceError, StreamSeen
from pitwire.sources.framer import Framer
from pitwire.sources.layout import build
from pitwire.sources.outgauge import (
    MOTIONSIM,
    OSO_DISTANCE,
    OSO_DRIVE,
    OSO_HEADER,
    OSO_ID,
    OSO_INPUTS,
    OSO_MAIN,
    OSO_TIME,
    OSO_WHEELS,
    OUTGAUGE,
    OUTGAUGE_ID,
    OUTSIM,
    OUTSIM_ID,
    OutGaugeDecoder,
    outsim_pack2,
)

T0 = 1_700_000_000_000_000_000


def _values(layout: np.dtype[Any], rng: random.Random) -> dict[str, float]:
    """A value for every numeric field of ``layout`` that fits its type."""
    values: dict[str, float] = {}
    for name in layout.names:
        dtype = layout.fields[name][0]
        if name.startswith("_") or dtype.kind == "S":
            continue
        if dtype.kind == "f":
            values[name] = float(np.float32(rng.uniform(-1e3, 1e3)))
        else:
            info = np.iinfo(dtype)
            values[name] = float(rng.randint(int(info.min), int(info.max)))
    return values


def _sample(decoder: OutGaugeDecoder, data: bytes) -> Sample:
    [sample] = [e for e in decoder.feed(data, T0) if isinstance(e, Sample)]
    return sample


def _batch(decoder: OutGaugeDecoder, datagrams: list[bytes]) -> FrameBatch:
    framer = Framer(decoder.manifest)
    for i, data in enumerate(datagrams):
        framer.add(decoder.feed(data, T0 + i))
    [batch] = [item[1] for item in framer.drain() if isinstance(item, tuple)]
    return batch


def test_datagrams_have_the_documented_sizes() -> None:
    """OutGauge 92/96, OutSim 64/68, MotionSim 88, OutSimPack2 272 for 0xff and 280 for 0x1ff."""
    sizes = [x.itemsize for x in (OUTGAUGE, OUTGAUGE_ID, OUTSIM, OUTSIM_ID, MOTIONSIM)]
    assert sizes == [92, 96, 64, 68, 88]
    assert outsim_pack2(0xFF).itemsize == 272
    assert outsim_pack2(0x1FF).itemsize == 280
    assert outsim_pack2(OSO_MAIN).itemsize == 60


def test_outgauge_fields_sit_at_the_documented_offsets() -> None:
    """Built OutGauge bytes hold each field where InSim.txt puts it."""
    data = build(
        OUTGAUGE_ID,
        {
            "Time": 123456,
            "Car": "XRT",
            "Flags": 16384 | 8192,
            "Gear": 3,
            "PLID": 7,
            "Speed": 30.5,
            "RPM": 6500.0,
            "Fuel": 0.25,
            "DashLights": 1 | 1024,
            "ShowLights": 1024,
            "Throttle": 1.0,
            "Clutch": 0.5,
            "Display1": "Fuel 25%",
            "ID": -4,
        },
    )
    assert pystruct.unpack_from("<I4sHBBff", data, 0) == (
        123456,
        b"XRT\0",
        24576,
        3,
        7,
        30.5,
        6500.0,
    )
    assert pystruct.unpack_from("<f", data, 28) == (0.25,)
    assert pystruct.unpack_from("<IIf", data, 40) == (1025, 1024, 1.0)
    assert pystruct.unpack_from("<f16s", data, 56) == (0.5, b"Fuel 25%".ljust(16, b"\0"))
    assert pystruct.unpack_from("<i", data, 92) == (-4,)


def test_outsim_and_motionsim_fields_sit_at_the_documented_offsets() -> None:
    """Legacy OutSim ends with the int position (and ID); MotionSim is BNG1 and 21 floats."""
    outsim = build(
        OUTSIM_ID, {"Time": 9, "Heading": 1.5, "AccelX": 2.0, "VelZ": 3.0, "PosX": -65536, "ID": 5}
    )
    assert pystruct.unpack_from("<I", outsim, 0) == (9,)
    assert pystruct.unpack_from("<f", outsim, 16) == (1.5,)
    assert pystruct.unpack_from("<f", outsim, 28) == (2.0,)
    assert pystruct.unpack_from("<f", outsim, 48) == (3.0,)
    assert pystruct.unpack_from("<iiii", outsim, 52) == (-65536, 0, 0, 5)
    motion = build(
        MOTIONSIM, {"_magic": "BNG1", "posX": 1.0, "accX": 2.0, "upZ": 1.0, "yawAcc": 4.0}
    )
    assert pystruct.unpack_from("<4sf", motion, 0) == (b"BNG1", 1.0)
    assert pystruct.unpack_from("<f", motion, 28) == (2.0,)
    assert pystruct.unpack_from("<f", motion, 48) == (1.0,)
    assert pystruct.unpack_from("<f", motion, 84) == (4.0,)


def test_outsim_pack2_blocks_sit_at_the_documented_offsets() -> None:
    """With Opts 0x1ff the blocks follow each other as OutSimPack.txt lists them."""
    layout = outsim_pack2(0x1FF)
    data = build(
        layout,
        {
            "_Header": "LFST",
            "ID": 3,
            "Time": 1000,
            "Heading": 0.5,
            "PosZ": 65536,
            "Throttle": 0.75,
            "Gear": 4,
            "EngineAngVel": 600.0,
            "IndexedDistance": 812.5,
            "OSWheels[1].AirTemp": 85,
            "OSWheels[3].TanSlipAngle": 0.125,
            "SteerTorque": 12.0,
        },
    )
    assert pystruct.unpack_from("<4siI", data, 0) == (b"LFST", 3, 1000)
    assert pystruct.unpack_from("<f", data, 12 + 12) == (0.5,)
    assert pystruct.unpack_from("<i", data, 12 + 56) == (65536,)
    assert pystruct.unpack_from("<f", data, 72) == (0.75,)
    assert pystruct.unpack_from("<Bxxxf", data, 92) == (4, 600.0)
    assert pystruct.unpack_from("<f", data, 108) == (812.5,)
    assert data[112 + 40 + 28] == 85
    assert pystruct.unpack_from("<f", data, 112 + 3 * 40 + 36) == (0.125,)
    assert pystruct.unpack_from("<f", data, 272) == (12.0,)


@pytest.mark.parametrize(
    ("layout", "car"),
    [
        (OUTGAUGE, "XRT"),
        (OUTGAUGE_ID, "beam"),
        (OUTSIM, None),
        (OUTSIM_ID, None),
        (MOTIONSIM, None),
    ],
)
def test_fixed_datagrams_round_trip(layout: np.dtype[Any], car: str | None) -> None:
    """Spec-built OutGauge, OutSim and MotionSim bytes decode to the values they were built from."""
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    values = _values(layout, random.Random(seed))
    strings = {"Car": car} if car else {"_magic": "BNG1"} if layout is MOTIONSIM else {}
    sample = _sample(OutGaugeDecoder(), build(layout, {**values, **strings}))
    assert (sample.stream, sample.t_ns) == ("car", T0)
    assert dict(sample.values) == values


@pytest.mark.parametrize(
    "opts", [0x1FF, 0xFF, OSO_HEADER | OSO_WHEELS, OSO_ID | OSO_DRIVE | OSO_DISTANCE]
)
def test_outsim_pack2_round_trips(opts: int) -> None:
    """An OutSimPack2 built for the configured Opts decodes to its values, and only those."""
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    layout = outsim_pack2(opts)
    values = _values(layout, random.Random(seed))
    header = {"_Header": "LFST"} if opts & OSO_HEADER else {}
    sample = _sample(OutGaugeDecoder(outsim_opts=opts), build(layout, {**values, **header}))
    assert dict(sample.values) == values


def test_a_one_way_feed_sends_no_greeting() -> None:
    """OutGauge, OutSim and MotionSim need no handshake: the greeting is empty."""
    assert OutGaugeDecoder().greeting() == []


def test_outgauge_car_is_announced_when_it_changes() -> None:
    """The OutGauge Car name becomes StreamSeen's car, once per change."""
    decoder = OutGaugeDecoder()
    seen = [
        [
            e.car
            for e in decoder.feed(build(OUTGAUGE, {"Car": car}), T0)
            if isinstance(e, StreamSeen)
        ]
        for car in ("XRT", "XRT", "FZ5")
    ]
    assert seen == [["XRT"], [], ["FZ5"]]


@pytest.mark.parametrize("size", [0, 4, 63, 65, 72, 89, 93, 97, 272, 1000])
def test_other_lengths_raise_decode_error(size: int) -> None:
    """A datagram of no known length is a DecodeError naming the length."""
    with pytest.raises(DecodeError, match=f"a {size}-byte datagram"):
        OutGaugeDecoder().feed(bytes(size), T0)


def test_wrong_magic_raises_decode_error() -> None:
    """88 bytes without BNG1, or an OutSimPack2 without its LFST header, are DecodeErrors."""
    with pytest.raises(DecodeError, match="do not start with BNG1"):
        OutGaugeDecoder().feed(bytes(88), T0)
    decoder = OutGaugeDecoder(outsim_opts=0xFF)
    with pytest.raises(DecodeError, match="without the LFST header"):
        decoder.feed(bytes(272), T0)


def test_colliding_outsim_opts_need_the_header() -> None:
    """Opts whose packets have another datagram's size but not its layout refuse to start."""
    with pytest.raises(SourceError, match=r"0xa gives 64-byte packets, the size of OutSim;"):
        OutGaugeDecoder(outsim_opts=OSO_ID | OSO_MAIN)
    with pytest.raises(SourceError, match=r"96-byte packets, the size of OutGauge with ID"):
        OutGaugeDecoder(outsim_opts=OSO_TIME | OSO_MAIN | OSO_INPUTS | OSO_DRIVE)
    with pytest.raises(SourceError, match=r"add the header block \(Opts 0xf\)"):
        OutGaugeDecoder(outsim_opts=OSO_ID | OSO_TIME | OSO_MAIN)  # 68 bytes, ID first
    with_header = OutGaugeDecoder(outsim_opts=OSO_HEADER | OSO_ID | OSO_TIME | OSO_MAIN)
    outgauge = _sample(with_header, build(OUTGAUGE_ID, {"Car": "XRT", "RPM": 900}))
    assert outgauge.values["RPM"] == 900
    same_as_legacy = OutGaugeDecoder(outsim_opts=OSO_TIME | OSO_MAIN)
    assert _sample(same_as_legacy, build(OUTSIM, {"PosX": 65536})).values["PosX"] == 65536
    for bad in (0x200, -1):
        with pytest.raises(SourceError, match="OutSim Opts"):
            OutGaugeDecoder(outsim_opts=bad)


def test_manifest_converts_units_to_the_standard_channels() -> None:
    """m/s, LFS gear codes, 1/65536 m and world accelerations become km/h, -1/0/n, m and g."""
    decoder = OutGaugeDecoder(outsim_opts=0x1FF)
    pack2 = outsim_pack2(0x1FF)
    g = 9.80665
    batch = _batch(
        decoder,
        [
            build(OUTGAUGE, {"Car": "XRT", "Speed": 30, "Gear": 0, "Fuel": 0.5, "EngTemp": 90}),
            build(OUTGAUGE, {"Car": "XRT", "Gear": 1, "Throttle": 1, "ShowLights": 1024}),
            build(OUTGAUGE, {"Car": "XRT", "Gear": 2, "RPM": 7000}),
            build(OUTSIM, {"PosX": 65536 * 10, "PosY": -32768, "PosZ": 65536, "AccelY": 2 * g}),
            build(
                pack2,
                {"_Header": "LFST", "Heading": math.pi / 2, "AccelY": -g, "IndexedDistance": 99},
            ),
            build(MOTIONSIM, {"_magic": "BNG1", "posX": 1.5, "posY": 2.5, "posZ": 3.5}),
        ],
    )
    c = batch.columns
    assert c["speed"][0] == pytest.approx(108.0)
    assert list(c["gear"][:3]) == [-1.0, 0.0, 1.0]
    assert (c["fuel_fraction"][0], c["engine_temp"][0], c["rpm"][2]) == (0.5, 90.0, 7000.0)
    assert (c["throttle"][1], c["show_lights"][1]) == (1.0, 1024.0)
    assert [c[a][3] for a in "xyz"] == [10.0, -0.5, 1.0]
    assert [c[a][5] for a in "xyz"] == [1.5, 2.5, 3.5]
    assert (c["g_lon"][3], c["g_lat"][3]) == (pytest.approx(2.0), pytest.approx(0.0, abs=1e-6))
    # facing world -X (heading 90° anticlockwise), accelerating towards world -Y: to the left
    assert (c["g_lat"][4], c["g_lon"][4]) == (pytest.approx(1.0), pytest.approx(0.0, abs=1e-6))
    assert c["lap_distance"][4] == 99.0


def test_fields_of_other_datagrams_are_nan() -> None:
    """An OutGauge frame has no position and a MotionSim frame no speed: both NaN."""
    c = _batch(
        OutGaugeDecoder(),
        [build(OUTGAUGE, {"Speed": 10}), build(MOTIONSIM, {"_magic": "BNG1", "posX": 4})],
    ).columns
    assert math.isnan(c["x"][0]) and c["x"][1] == 4.0
    assert c["speed"][0] == 36.0 and math.isnan(c["speed"][1])
    assert math.isnan(c["g_lat"][0]) and math.isnan(c["g_lat"][1])


def test_every_mapped_raw_field_is_one_the_decoder_produces() -> None:
    """The manifest reads only fields some OutGauge, OutSim or MotionSim datagram has."""
    layouts = [OUTGAUGE_ID, OUTSIM_ID, MOTIONSIM, outsim_pack2(0x1FF)]
    produced = {n for layout in layouts for n in layout.names if not n.startswith("_")}
    assert set(OutGaugeDecoder.manifest.raw_fields) <= produced
    assert OutGaugeDecoder.manifest.name == "outgauge"
