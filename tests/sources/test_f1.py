import contextlib
import json
import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitwire.model.frames import FrameBatch
from pitwire.model.manifest import load_builtin
from pitwire.sources.base import (
    DecodeError,
    DecoderEvent,
    Notice,
    Sample,
    SessionChange,
    SessionStarted,
    StreamSeen,
    StreamUpdate,
)
from pitwire.sources.f1 import RAW_FIELDS, F1Decoder, team_name, track_name
from pitwire.sources.f1_layouts import CAR_ARRAYS, FORMATS, LAYOUTS, NUM_CARS
from pitwire.sources.framer import Framer
from pitwire.sources.layout import build
from support import fixture

UID = 0x1234_5678_9ABC_DEF0
PSI = 6.894757
CARS = range(NUM_CARS)


def packet(fmt: int, pid: int, values: dict[str, Any] | None = None, **head: Any) -> bytes:
    """A packet of format ``fmt`` and id ``pid``: header (UID, frame 7, ``head``) and values."""
    header = {"m_packetFormat": fmt, "m_packetId": pid, "m_sessionUID": UID}
    header |= {"m_frameIdentifier": 7, "m_playerCarIndex": 0, "m_secondaryPlayerCarIndex": 255}
    if fmt != 2022:
        header |= {"m_overallFrameIdentifier": 7}
    return build(LAYOUTS[fmt][pid], {"m_header": header | head, **(values or {})})


def cars(field: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {field: rows}


def participants(fmt: int, count: int = NUM_CARS, **head: Any) -> bytes:
    rows = [
        {"m_name": f"DRIVER {i}", "m_teamId": i % 10, "m_aiControlled": 1, "m_yourTelemetry": 1}
        for i in CARS
    ]
    return packet(fmt, 4, {"m_numActiveCars": count, **cars("m_participants", rows)}, **head)


def session(fmt: int, track: int = 10, **head: Any) -> bytes:
    values = {"m_trackId": track, "m_trackTemperature": 31, "m_airTemperature": 22}
    return packet(fmt, 1, values | {"m_weather": 1, "m_safetyCarStatus": 2}, **head)


def motion(fmt: int, **head: Any) -> bytes:
    rows = [
        {
            "m_worldPositionX": 10.0 + i,
            "m_worldPositionY": 1.5,  # the game's y is up
            "m_worldPositionZ": -20.0 - i,
            "m_gForceLateral": 1.25,
            "m_gForceLongitudinal": -2.5,
            "m_gForceVertical": 0.5,
            "m_yaw": 0.25,
        }
        for i in CARS
    ]
    return packet(fmt, 0, cars("m_carMotionData", rows), **head)


def lap_data(fmt: int, status: int = 2, **head: Any) -> bytes:
    rows = []
    for i in CARS:
        row = {
            "m_lastLapTimeInMS": 91_500,
            "m_currentLapTimeInMS": 61_234,
            "m_sector1TimeInMS": 2_500,
            "m_lapDistance": 1000.5 + i,
            "m_carPosition": NUM_CARS - i,
            "m_currentLapNum": 3,
            "m_resultStatus": status,
            "m_penalties": 5,
        }
        if fmt >= 2023:
            row |= {"m_sector1TimeMinutes": 1, "m_deltaToCarInFrontInMS": 1_200}
        if fmt >= 2024:
            row |= {"m_deltaToCarInFrontMinutes": 2, "m_speedTrapFastestSpeed": 321.5}
        rows.append(row)
    return packet(fmt, 2, cars("m_lapData", rows), **head)


def telemetry(fmt: int, frame: int = 7, **head: Any) -> bytes:
    rows = [
        {
            "m_speed": 100 + i,
            "m_throttle": 0.75,
            "m_steer": -0.5,
            "m_brake": 0.125,
            "m_clutch": 50,
            "m_gear": i % 10 - 1,
            "m_engineRPM": 11_000 + i,
            "m_drs": 1,
            "m_brakesTemperature": [500, 510, 600, 610],
            "m_tyresSurfaceTemperature": [90, 91, 92, 93],
            "m_tyresInnerTemperature": [100, 101, 102, 103],
            "m_engineTemperature": 110,
            "m_tyresPressure": [21.5, 21.75, 23.0, 23.25],
        }
        for i in CARS
    ]
    head = {"m_frameIdentifier": frame} | head
    if fmt != 2022:
        head = {"m_overallFrameIdentifier": frame} | head
    return packet(fmt, 6, cars("m_carTelemetryData", rows), **head)


def status(fmt: int, **head: Any) -> bytes:
    rows = [{"m_fuelInTank": 12.5, "m_actualTyreCompound": 18, "m_tyresAgeLaps": 4}] * NUM_CARS
    return packet(fmt, 7, cars("m_carStatusData", rows), **head)


def damage(fmt: int, **head: Any) -> bytes:
    rows = [{"m_tyresWear": [1.0, 2.0, 3.0, 4.0], "m_rearWingDamage": 15}] * NUM_CARS
    return packet(fmt, 10, cars("m_carDamageData", rows), **head)


def feed_all(decoder: F1Decoder, datagrams: list[bytes], t_ns: int = 1_000) -> list[DecoderEvent]:
    return [event for data in datagrams for event in decoder.feed(data, t_ns)]


def samples(events: list[DecoderEvent]) -> list[Sample]:
    return [e for e in events if isinstance(e, Sample)]


def batches(events: list[DecoderEvent]) -> dict[str, FrameBatch]:
    framer = Framer(load_builtin("f1"))
    framer.add(events)
    return {item[0]: item[1] for item in framer.drain() if isinstance(item, tuple)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_full_sequence_gives_every_car_its_mapped_channels(fmt: int) -> None:
    """Session, participants, motion, lap data, status, damage, telemetry: 22 cars, mapped."""
    decoder = F1Decoder()
    sequence = [session(fmt), participants(fmt), motion(fmt), lap_data(fmt)]
    events = feed_all(decoder, [*sequence, status(fmt), damage(fmt), telemetry(fmt, frame=42)])
    assert events[0] == SessionStarted(key=str(UID), track="Spa")
    seen = [e for e in events if isinstance(e, StreamSeen)]
    assert [(s.stream, s.driver) for s in seen] == [(f"car-{i}", f"DRIVER {i}") for i in CARS]
    assert seen[8].car == "McLaren"
    assert len(samples(events)) == NUM_CARS
    framer = Framer(decoder.manifest)
    framer.add(events)
    items = framer.drain()
    assert items[0] == SessionChange(key=str(UID), track="Spa")
    assert sum(isinstance(item, StreamUpdate) for item in items) == NUM_CARS
    out = {item[0]: item[1] for item in items if isinstance(item, tuple)}
    assert list(out) == [f"car-{i}" for i in CARS]
    for i in CARS:
        c = {name: float(col[0]) for name, col in out[f"car-{i}"].columns.items()}
        assert out[f"car-{i}"].t_ns.tolist() == [1_000]
        assert (c["speed"], c["rpm"], c["gear"]) == (100 + i, 11_000 + i, i % 10 - 1)
        assert (c["throttle"], c["brake"]) == (0.75, 0.125)
        assert (c["clutch"], c["steer_input"]) == (0.5, -0.5)
        assert (c["lap"], c["position"], c["lap_distance"]) == (2, NUM_CARS - i, 1000.5 + i)
        assert c["lap_time"] == pytest.approx(61.234) and c["last_lap_time"] == pytest.approx(91.5)
        assert (c["x"], c["y"], c["z"]) == (10.0 + i, -20.0 - i, 1.5)
        assert (c["g_lat"], c["g_lon"], c["g_vert"], c["yaw"]) == (1.25, -2.5, 0.5, 0.25)
        temps = [c[f"tyre_temp_{w}"] for w in ("rl", "rr", "fl", "fr")]
        assert temps == [90, 91, 92, 93]
        inner = [c[f"tyre_inner_temp_{w}"] for w in ("rl", "rr", "fl", "fr")]
        assert inner == [100, 101, 102, 103]
        assert [c[f"brake_temp_{w}"] for w in ("fl", "rr")] == [600, 510]
        pressures = [c[f"tyre_press_{w}"] for w in ("rl", "rr", "fl", "fr")]
        psi = [21.5, 21.75, 23.0, 23.25]
        assert pressures == pytest.approx([p * PSI for p in psi], abs=0.01)
        assert (c["fuel_mass"], c["tyre_compound"], c["tyres_age_laps"]) == (12.5, 18, 4)
        assert (c["tyre_wear_fl"], c["wing_damage_rear"], c["penalties"]) == (3.0, 15, 5)
        assert (c["track_temp"], c["air_temp"], c["weather"], c["safety_car"]) == (31, 22, 1, 2)
        assert (c["packet_id"], c["drs"], c["engine_temp"]) == (42, 1, 110)
        assert math.isnan(c["best_lap_time"]) and math.isnan(c["fastest_lap"])
        sector1, gap = {2022: (2.5, math.nan), 2023: (62.5, 1.2)}.get(fmt, (62.5, 121.2))
        assert c["sector1_time"] == pytest.approx(sector1)
        assert c["gap_ahead"] == pytest.approx(gap, nan_ok=True)
        assert c["speed_trap"] == pytest.approx(321.5 if fmt >= 2024 else math.nan, nan_ok=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_per_car_packets_round_trip_through_feed(fmt: int) -> None:
    """Random bytes in the per-car packets come back, field by field, as the samples' values."""
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    decoder = F1Decoder()
    expected: dict[str, np.ndarray] = {}
    for pid in (0, 2, 7, 10, 6):
        layout = LAYOUTS[fmt][pid]
        data = bytearray(rng.integers(0, 256, layout.itemsize, dtype=np.uint8).tobytes())
        data[: layout["m_header"].itemsize] = packet(fmt, pid)[: layout["m_header"].itemsize]
        record = np.frombuffer(bytes(data), layout, 1)[0][CAR_ARRAYS[pid]]
        for name in record.dtype.names:
            with np.errstate(invalid="ignore"):  # random bytes hold signalling NaNs
                column = record[name].astype(np.float64)
            if column.ndim == 1:
                expected[name] = column
            else:
                expected |= {f"{name}[{k}]": column[:, k] for k in range(column.shape[1])}
        events = decoder.feed(bytes(data), 5)
    status = expected["m_resultStatus"]
    got = samples(events)
    assert [s.stream for s in got] == [f"car-{i}" for i in np.flatnonzero(status != 0)]
    checked = [name for name in RAW_FIELDS if name in expected]
    assert len(checked) > 60
    for s in got:
        i = int(s.stream.removeprefix("car-"))
        for name in checked:
            assert s.values[name] == pytest.approx(expected[name][i], nan_ok=True), name


def test_new_session_uid_starts_a_session_and_forgets_the_old_one() -> None:
    """A new nonzero UID gives SessionStarted before its samples and empties the per-car table."""
    decoder = F1Decoder()
    first = feed_all(decoder, [lap_data(2024), telemetry(2024)])
    assert first[0] == SessionStarted(key=str(UID), track="")
    assert samples(first)[0].values["m_currentLapNum"] == 3
    same = feed_all(decoder, [session(2024), telemetry(2024)])
    # the session packet names the track of the same session: a track update, same key
    assert [e for e in same if isinstance(e, SessionStarted)] == [
        SessionStarted(key=str(UID), track=track_name(10))
    ]
    assert samples(same)
    assert not any(isinstance(e, SessionStarted) for e in feed_all(decoder, [session(2024)]))
    again = feed_all(decoder, [telemetry(2024, m_sessionUID=UID + 1)])
    assert again[0] == SessionStarted(key=str(UID + 1), track="")
    assert math.isnan(samples(again)[0].values["m_currentLapNum"])
    assert math.isnan(samples(again)[0].values["m_trackTemperature"])
    quiet = feed_all(decoder, [telemetry(2024, m_sessionUID=0)])
    assert not any(isinstance(e, SessionStarted) for e in quiet) and samples(quiet)


def test_a_session_packet_that_starts_a_session_names_its_track() -> None:
    """When the session packet is the first of a session, SessionStarted carries its track."""
    decoder = F1Decoder()
    assert decoder.feed(session(2025, track=39), 1) == [
        SessionStarted(key=str(UID), track="Silverstone (Reverse)")
    ]


def test_spectator_captures_decode() -> None:
    """With m_playerCarIndex 255 every car is still a stream, and restricted humans are noted."""
    decoder = F1Decoder()
    rows = [
        {"m_name": "Player", "m_teamId": 41, "m_aiControlled": 0, "m_yourTelemetry": i % 2}
        for i in CARS
    ]
    people = packet(2025, 4, {"m_numActiveCars": 4, "m_participants": rows}, m_playerCarIndex=255)
    events = feed_all(decoder, [people, telemetry(2025, m_playerCarIndex=255)])
    seen = [e for e in events if isinstance(e, StreamSeen)]
    assert [e.stream for e in seen] == ["car-0", "car-1", "car-2", "car-3"]
    assert {e.car for e in seen} == {"F1 Generic"}
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "car-0, car-2" in notices[0]
    assert [s.stream for s in samples(events)] == ["car-0", "car-1", "car-2", "car-3"]
    assert not any(isinstance(e, Notice) for e in decoder.feed(people, 2))


def test_active_cars_before_participants() -> None:
    """Before participants, cars count when their lap data or, before it, telemetry says so."""
    decoder = F1Decoder()
    zeros = telemetry(2023)
    blank = bytearray(zeros)
    start = LAYOUTS[2023][6].fields["m_carTelemetryData"][1]
    blank[start + 3 * 60 : start + 22 * 60] = bytes(19 * 60)  # cars 3.. send nothing
    assert [s.stream for s in samples(decoder.feed(bytes(blank), 1))] == ["car-0", "car-1", "car-2"]
    rows = [{"m_resultStatus": 2 if i in (4, 9) else 0} for i in CARS]
    decoder.feed(packet(2023, 2, {"m_lapData": rows}), 2)
    assert [s.stream for s in samples(decoder.feed(zeros, 3))] == ["car-4", "car-9"]
    decoder.feed(participants(2023, count=3), 4)
    assert [s.stream for s in samples(decoder.feed(zeros, 5))] == ["car-0", "car-1", "car-2"]


def test_participants_announce_only_changes() -> None:
    """A repeated participants packet says nothing; a renamed driver is announced again."""
    decoder = F1Decoder()
    assert len(decoder.feed(participants(2024), 1)) == 1 + NUM_CARS  # SessionStarted first
    assert decoder.feed(participants(2024), 2) == []
    rows = [
        {"m_name": "NEW" if i == 5 else f"DRIVER {i}", "m_teamId": i % 10, "m_aiControlled": 1}
        for i in CARS
    ]
    changed = decoder.feed(packet(2024, 4, {"m_numActiveCars": 22, "m_participants": rows}), 3)
    assert changed == [StreamSeen("car-5", driver="NEW", car="Alpine")]


def test_fastest_lap_event_and_session_history_best_laps() -> None:
    """FTLP marks the session's fastest car; Session History gives each car its best lap."""
    decoder = F1Decoder()
    fmt = 2025
    ftlp = {
        "m_eventStringCode": "FTLP",
        "m_eventDetails": {"FastestLap": {"vehicleIdx": 3, "lapTime": 80.5}},
    }
    laps = [{"m_lapTimeInMS": 90_000 + k} for k in range(100)]
    history = {"m_carIdx": 3, "m_bestLapTimeLapNum": 2, "m_lapHistoryData": laps}
    events = feed_all(decoder, [packet(fmt, 3, ftlp), packet(fmt, 11, history), telemetry(fmt)])
    out = batches(events)
    assert out["car-3"].columns["fastest_lap"][0] == 1
    assert out["car-4"].columns["fastest_lap"][0] == 0
    assert out["car-3"].columns["best_lap_time"][0] == pytest.approx(90.001)
    assert math.isnan(out["car-4"].columns["best_lap_time"][0])


@pytest.mark.parametrize("code", ["XXXX", "SSTA", "COLL", "\xff\xfe", "FTLP"])
def test_events_never_fail(code: str) -> None:
    """Unknown codes, codes without details and out-of-range car indices are ignored."""
    decoder = F1Decoder()
    details = {"FastestLap": {"vehicleIdx": 200}}
    events = decoder.feed(
        packet(2024, 3, {"m_eventStringCode": code, "m_eventDetails": details}), 1
    )
    assert events == [SessionStarted(key=str(UID), track="")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter"),
        (bytes(23), "shorter"),
        (bytes(1352), "unknown F1 packet format 0"),
        ((2021).to_bytes(2, "little") + bytes(1350), "unknown F1 packet format 2021"),
        ((2024).to_bytes(2, "little") + bytes(26), "28-byte datagram is shorter than an F1 2024"),
        (packet(2023, 6)[:-1], "Car Telemetry packet .id 6. is 1352 bytes, this datagram 1351"),
        (packet(2024, 6) + b"\0", "is 1352 bytes, this datagram 1353"),
        (packet(2024, 6)[:6] + b"\x10" + packet(2024, 6)[7:], "unknown packet id 16"),
        (
            packet(2023, 0)[:6] + b"\x0e" + packet(2023, 0)[7:],
            "unknown packet id 14 in F1 format 2023",
        ),
        (packet(2022, 0)[:5] + b"\x0c" + packet(2022, 0)[6:], "unknown packet id 12"),
    ],
)
def test_garbage_raises_decode_error(data: bytes, message: str) -> None:
    """Short datagrams, unknown formats or ids and wrong sizes raise DecodeError saying which."""
    with pytest.raises(DecodeError, match=message):
        F1Decoder().feed(data, 1)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([None, *FORMATS]), st.binary(max_size=1500))
def test_any_bytes_decode_or_raise_decode_error(fmt: int | None, data: bytes) -> None:
    """Arbitrary bytes, with or without a known format first, give events or DecodeError."""
    if fmt is not None:
        data = fmt.to_bytes(2, "little") + data
    with contextlib.suppress(DecodeError):
        F1Decoder().feed(data, 1)


KINDS = [(fmt, pid) for fmt in FORMATS for pid in LAYOUTS[fmt]]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_body_behind_a_valid_header_decodes(data: st.DataObject) -> None:
    """A valid header followed by any bytes of the right size never raises."""
    fmt, pid = data.draw(st.sampled_from(KINDS))
    decoder = F1Decoder()
    size = LAYOUTS[fmt][pid].itemsize
    head = packet(fmt, pid)[: LAYOUTS[fmt][pid]["m_header"].itemsize]
    body = data.draw(st.binary(min_size=size - len(head), max_size=size - len(head)))
    decoder.feed(participants(fmt), 1)
    decoder.feed(head + body, 2)
    decoder.feed(telemetry(fmt), 3)


def test_manifest_reads_exactly_what_the_decoder_produces() -> None:
    """Every raw field of the f1 manifest is in every sample, and every sample value is mapped."""
    manifest = load_builtin("f1")
    assert manifest.name == F1Decoder.name == "f1"
    got = samples(F1Decoder().feed(telemetry(2025), 1))
    assert got and all(set(s.values) == set(manifest.raw_fields) for s in got)
    assert set(RAW_FIELDS) == set(manifest.raw_fields)
    packet_id = manifest.channels["packet_id"]
    assert (packet_id.unit, packet_id.dtype) == ("", "f8")
    assert "steer" not in manifest.channels and "fuel" not in manifest.channels


def test_greeting_is_empty_and_names_read_well() -> None:
    """F1 needs no handshake; track and team ids read as names, unknown ones as numbers."""
    assert F1Decoder().greeting() == []
    assert (track_name(13), track_name(-1), track_name(99)) == ("Suzuka", "", "track 99")
    assert (team_name(2023, 9), team_name(2024, 9), team_name(2025, 154)) == (
        "Alfa Romeo",
        "Sauber",
        "APXGP '25",
    )
    assert (team_name(2025, 255), team_name(2025, 77)) == ("", "team 77")


# -- real captures ---------------------------------------------------------------------------


@pytest.mark.parametrize("year", FORMATS)
def test_real_captures_decode_into_samples(year: int) -> None:
    """Every captured datagram decodes; telemetry becomes samples equal to the reference values."""
    rows = [json.loads(line) for line in fixture(f"f1-udp/{year}.jsonl").read_text().splitlines()]
    rows.sort(key=lambda row: row["time"])
    decoder = F1Decoder()
    checked = 0
    for row in rows:
        message = row["message"]
        data = bytes(message["data"] if isinstance(message, dict) else message)
        events = decoder.feed(data, 1)
        parsed = row["parsed"]
        if parsed["m_header"]["m_packetId"] != 6:
            continue
        got = samples(events)
        assert got
        for s in got:
            car = parsed["m_carTelemetryData"][int(s.stream.removeprefix("car-"))]
            for name in ("m_speed", "m_engineRPM", "m_gear", "m_throttle", "m_steer", "m_brake"):
                assert s.values[name] == np.float32(car[name])
            assert s.values["m_tyresPressure[2]"] == np.float32(car["m_tyresPressure"][2])
            checked += 1
    assert checked


def test_lap_counts_completed_laps_and_is_never_negative() -> None:
    """The game's lap number 3 is lap 2 completed, 0 (before the start) is 0, unknown NaN."""
    manifest = load_builtin("f1")
    raw = np.full((3, len(manifest.raw_fields)), math.nan)
    raw[:, manifest.raw_fields.index("m_currentLapNum")] = [3, 0, math.nan]
    lap = manifest.apply_matrix(raw)["lap"]
    assert lap[:2].tolist() == [2.0, 0.0] and math.isnan(lap[2])
