import csv
import math
import random
import struct as pystruct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pitwire.model.frames import FrameBatch
from pitwire.sources.base import DecodeError, Notice, Sample, StreamSeen, StreamUpdate
from pitwire.sources.forza import (
    DASH,
    FM2023,
    HORIZON,
    SLED,
    VARIANTS,
    ForzaDecoder,
    encode_dash,
    field_names,
    rows_from_csv,
)
from pitwire.sources.framer import Framer
from pitwire.sources.layout import build
from support import fixture

T0 = 1_700_000_000_000_000_000


def _random_values(layout: np.dtype[Any], rng: random.Random) -> dict[str, float]:
    """A value for every field of ``layout`` that fits its type, as the datagram carries it."""
    values: dict[str, float] = {}
    for name in layout.names:
        if name.startswith("_"):
            continue
        dtype = layout.fields[name][0]
        if dtype.kind == "f":
            values[name] = float(np.float32(rng.uniform(-1e4, 1e4)))
        else:
            info = np.iinfo(dtype)
            values[name] = float(rng.randint(int(info.min), int(info.max)))
    values["IsRaceOn"] = 1.0
    return values


def _batch(decoder: ForzaDecoder, datagrams: list[bytes]) -> FrameBatch:
    """The one batch the framer makes of ``datagrams``."""
    framer = Framer(decoder.manifest)
    for i, data in enumerate(datagrams):
        framer.add(decoder.feed(data, T0 + i))
    batches = [item[1] for item in framer.drain() if isinstance(item, tuple)]
    assert len(batches) == 1
    return batches[0]


def test_variants_have_the_documented_sizes() -> None:
    """Sled is 232 bytes, Dash 311, Horizon 324 and FM2023 Dash 331."""
    assert [SLED.itemsize, DASH.itemsize, HORIZON.itemsize, FM2023.itemsize] == [232, 311, 324, 331]
    assert {name: len(encode_dash({}, name)) for name in VARIANTS} == {
        "sled": 232,
        "dash": 311,
        "horizon": 324,
        "fm2023": 331,
    }


def test_dash_fields_sit_at_the_documented_offsets() -> None:
    """Built Dash bytes hold each field where the Turn 10 document puts it."""
    data = encode_dash(
        {
            "IsRaceOn": 1,
            "TimestampMS": 4_000_000_000,
            "CurrentEngineRpm": 7321.5,
            "WheelOnRumbleStripFrontLeft": 1,
            "CarOrdinal": 2352,
            "NumCylinders": 8,
            "PositionX": -12.5,
            "Speed": 41.25,
            "TireTempFrontLeft": 180.5,
            "Fuel": 0.75,
            "CurrentLap": 61.5,
            "LapNumber": 513,
            "RacePosition": 4,
            "Accel": 255,
            "Gear": 11,
            "Steer": -100,
            "NormalizedAIBrakeDifference": -3,
        }
    )
    assert pystruct.unpack_from("<iIf", data, 0)[:2] == (1, 4_000_000_000)
    assert pystruct.unpack_from("<f", data, 16) == (7321.5,)
    assert pystruct.unpack_from("<i", data, 116) == (1,)
    assert pystruct.unpack_from("<i", data, 212) == (2352,)
    assert pystruct.unpack_from("<i", data, 228) == (8,)
    assert pystruct.unpack_from("<ff", data, 232) == (-12.5, 0.0)
    assert pystruct.unpack_from("<f", data, 244) == (41.25,)
    assert pystruct.unpack_from("<f", data, 256) == (180.5,)
    assert pystruct.unpack_from("<f", data, 276) == (0.75,)
    assert pystruct.unpack_from("<f", data, 292) == (61.5,)
    assert pystruct.unpack_from("<HBB", data, 300) == (513, 4, 255)
    assert pystruct.unpack_from("<Bbbb", data, 307) == (11, -100, 0, -3)


def test_horizon_and_fm2023_fields_sit_at_their_offsets() -> None:
    """Horizon moves the Dash fields 12 bytes down; FM2023 appends tyre wear and the track."""
    horizon = encode_dash({"CarCategory": 5, "Speed": 20.5, "Gear": 3, "Steer": 7}, "horizon")
    assert pystruct.unpack_from("<i", horizon, 232) == (5,)
    assert pystruct.unpack_from("<f", horizon, 256) == (20.5,)
    assert pystruct.unpack_from("<Bb", horizon, 319) == (3, 7)
    assert horizon[323:] == b"\0"
    fm = encode_dash(
        {"TireWearFrontLeft": 0.25, "TireWearRearRight": 0.5, "TrackOrdinal": 860}, "fm2023"
    )
    assert pystruct.unpack_from("<ffffi", fm, 311) == (0.25, 0.0, 0.0, 0.5, 860)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_round_trips(variant: str) -> None:
    """Spec-built bytes of each variant decode to the values they were built from."""
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    layout = VARIANTS[variant]
    values = _random_values(layout, random.Random(seed))
    decoder = ForzaDecoder()
    for data in (build(layout, values), encode_dash(values, variant)):
        events = decoder.feed(data, T0)
        samples = [e for e in events if isinstance(e, Sample)]
        assert len(samples) == 1
        assert samples[0].stream == "car" and samples[0].t_ns == T0
        assert dict(samples[0].values) == values
        assert list(samples[0].values) == field_names(variant)


def test_a_one_way_feed_sends_no_greeting() -> None:
    """Forza needs no handshake: the greeting is empty."""
    assert ForzaDecoder().greeting() == []


def test_race_off_gives_no_samples_and_one_notice() -> None:
    """IsRaceOn 0 (menus, pause) yields nothing but a notice when the race stops."""
    decoder = ForzaDecoder()
    on = encode_dash({"IsRaceOn": 1, "Speed": 10})
    off = encode_dash({"IsRaceOn": 0, "Speed": 10})
    kinds = [[type(e) for e in decoder.feed(d, T0)] for d in (on, off, off, on, off)]
    assert kinds == [[StreamSeen, Sample], [Notice], [], [Sample], [Notice]]


def test_car_is_announced_when_its_ordinal_changes() -> None:
    """The car ordinal becomes StreamSeen's car, once per change."""
    decoder = ForzaDecoder()
    seen = [
        [
            e.car
            for e in decoder.feed(encode_dash({"IsRaceOn": 1, "CarOrdinal": o}), T0)
            if isinstance(e, StreamSeen)
        ]
        for o in (29, 29, 3001)
    ]
    assert seen == [["car ordinal 29"], [], ["car ordinal 3001"]]


@pytest.mark.parametrize("size", [0, 1, 231, 233, 310, 312, 323, 325, 330, 332, 1500])
def test_other_lengths_raise_decode_error(size: int) -> None:
    """A datagram of no known length is a DecodeError naming the length."""
    with pytest.raises(DecodeError, match=f"a {size}-byte datagram"):
        ForzaDecoder().feed(bytes(size), T0)


def test_manifest_converts_units_to_the_standard_channels() -> None:
    """m/s, °F, 0-255 pedals, Forza gear codes and m/s² become km/h, °C, 0-1, -1/0/n and g."""
    rows = [
        {"Speed": 30, "TireTempFrontLeft": 212, "TireTempRearRight": 32, "Gear": 0, "Accel": 255},
        {"Gear": 11, "Brake": 51, "Steer": 127, "AccelerationX": 9.80665, "Fuel": 0.5},
        {"Gear": 3, "AccelerationZ": -19.6133, "PositionX": 1, "PositionY": 2, "PositionZ": 3},
        {"LapNumber": 2, "CurrentLap": 12.5, "RacePosition": 3, "TimestampMS": 4_294_967_295},
    ]
    batch = _batch(ForzaDecoder(), [encode_dash({"IsRaceOn": 1, **r}) for r in rows])
    c = batch.columns
    assert c["speed"][0] == pytest.approx(108.0)
    assert c["tyre_temp_fl"][0] == pytest.approx(100.0)
    assert c["tyre_temp_rr"][0] == pytest.approx(0.0, abs=1e-5)
    assert list(c["gear"]) == [-1.0, 0.0, 3.0, -1.0]
    assert c["throttle"][0] == pytest.approx(1.0)
    assert c["brake"][1] == pytest.approx(0.2)
    assert c["steer_input"][1] == pytest.approx(-1.0)  # full right lock is -1 (positive = left)
    assert c["g_lat"][1] == pytest.approx(-1.0)  # accelerating to the right
    assert c["g_lon"][2] == pytest.approx(-2.0)
    assert (c["x"][2], c["y"][2], c["z"][2]) == (1.0, 3.0, 2.0)
    assert c["fuel_fraction"][1] == 0.5
    assert (c["lap"][3], c["lap_time"][3], c["position"][3]) == (2.0, 12.5, 3.0)
    assert c["packet_id"].dtype == np.float64 and c["packet_id"][3] == 4_294_967_295


def test_sled_frames_leave_the_dash_channels_nan() -> None:
    """A Sled datagram fills the motion channels; speed, gear and lap are NaN (not known)."""
    batch = _batch(ForzaDecoder(), [encode_dash({"IsRaceOn": 1, "CurrentEngineRpm": 5000}, "sled")])
    assert batch.columns["rpm"][0] == 5000
    assert all(math.isnan(batch.columns[n][0]) for n in ("speed", "gear", "lap", "tyre_wear_fl"))


def test_every_mapped_raw_field_is_one_the_decoder_produces() -> None:
    """The manifest reads only fields some Forza variant has."""
    produced = {name for variant in VARIANTS for name in field_names(variant)}
    assert set(ForzaDecoder.manifest.raw_fields) <= produced
    assert ForzaDecoder.manifest.name == "forza"


def test_the_announced_stream_carries_the_manifest_channels() -> None:
    """The framer announces stream car with the car ordinal and the manifest's channels."""
    framer = Framer(ForzaDecoder.manifest)
    framer.add(ForzaDecoder().feed(encode_dash({"IsRaceOn": 1, "CarOrdinal": 7}), T0))
    update = framer.drain()[0]
    assert isinstance(update, StreamUpdate)
    assert (update.info.stream_id, update.info.car) == ("car", "car ordinal 7")
    assert [ch.name for ch in update.info.channels] == list(ForzaDecoder.manifest.channels)


@pytest.mark.parametrize(
    ("values", "variant", "message"),
    [
        ({"Nope": 1}, "dash", "no field 'Nope'"),
        ({"Gear": 2.5}, "dash", "Gear must be a whole number"),
        ({"Steer": 128}, "dash", r"Steer must be a whole number in \[-128, 127\]"),
        ({"TrackOrdinal": 1}, "dash", "no field 'TrackOrdinal'"),
        ({}, "fm8", "unknown Forza variant 'fm8'"),
    ],
)
def test_encode_dash_refuses_values_that_do_not_fit(
    values: dict[str, float], variant: str, message: str
) -> None:
    """encode_dash raises ValueError instead of wrapping or dropping a value."""
    with pytest.raises(ValueError, match=message):
        encode_dash(values, variant)


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"col{i}" for i in range(len(field_names("dash")))])
        writer.writerows(rows)


def test_rows_from_csv_undoes_the_recorders_types(tmp_path: Path) -> None:
    """True, an int read as float32 and a signed byte read unsigned come back as the datagram's."""
    names = field_names("dash")
    row = ["0"] * len(names)
    row[names.index("IsRaceOn")] = "True"
    row[names.index("WheelOnRumbleStripRearLeft")] = "1E-45"
    row[names.index("NormalizedDrivingLine")] = "174"
    row[names.index("Steer")] = "-127"
    row[names.index("Speed")] = "0.1"
    _write_csv(tmp_path / "a.csv", [row])
    [values] = rows_from_csv(tmp_path / "a.csv")
    assert values["IsRaceOn"] == 1
    assert values["WheelOnRumbleStripRearLeft"] == 1
    assert values["NormalizedDrivingLine"] == -82
    assert values["Steer"] == -127
    assert values["Speed"] == float(np.float32(0.1))


def test_rows_from_csv_names_the_bad_line(tmp_path: Path) -> None:
    """A short row or a value that fits no field is a ValueError naming the file and line."""
    names = field_names("dash")
    _write_csv(tmp_path / "short.csv", [["0"] * len(names), ["0"] * 3])
    with pytest.raises(ValueError, match=r"short\.csv:3: 3 values, expected 85"):
        rows_from_csv(tmp_path / "short.csv")
    bad = ["0"] * len(names)
    bad[names.index("Gear")] = "300"
    _write_csv(tmp_path / "bad.csv", [bad])
    with pytest.raises(ValueError, match=r"bad\.csv:2: Gear = '300' does not fit uint8"):
        rows_from_csv(tmp_path / "bad.csv")
    nan = ["0"] * len(names)
    nan[names.index("Speed")] = "NaN"
    _write_csv(tmp_path / "nan.csv", [[], nan])
    with pytest.raises(ValueError, match=r"nan\.csv:3: Speed = 'NaN' is not a finite number"):
        rows_from_csv(tmp_path / "nan.csv")
    (tmp_path / "wide.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="2 columns; a Dash CSV has 85"):
        rows_from_csv(tmp_path / "wide.csv")


def test_fixture_rows_reencode_to_datagrams_that_decode_back() -> None:
    """Every row of a real Laguna Seca drive makes a 311-byte datagram decoding to the row."""
    rows = rows_from_csv(fixture("forza/laguna-seca.csv"))
    assert len(rows) == 687
    decoder = ForzaDecoder()
    datagrams = []
    for row in rows:
        data = encode_dash(row)
        assert len(data) == 311
        samples = [e for e in decoder.feed(data, T0) if isinstance(e, Sample)]
        assert [dict(s.values) for s in samples] == [row]
        datagrams.append(data)
    c = _batch(ForzaDecoder(), datagrams).columns
    assert c["speed"].min() > 50 and c["speed"].max() < 310
    assert set(np.unique(c["gear"])) <= {2.0, 3.0, 4.0, 5.0, 6.0, 7.0}
    assert list(np.unique(c["lap"])) == [0.0, 1.0]
    assert 40 < c["tyre_temp_fl"].mean() < 100  # °C, not °F
    assert np.all(np.diff(c["packet_id"]) > 0)
    assert abs(c["g_lat"]).max() < 5 and abs(c["g_vert"] - 1).mean() < 0.5  # +1 g: gravity
