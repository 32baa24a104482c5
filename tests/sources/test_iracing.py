import mmap
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pitwire.model.manifest import Manifest
from pitwire.sources.base import DecodeError, Notice, Sample, SessionStarted, StreamSeen
from pitwire.sources.framer import Framer
from pitwire.sources.ibt import encode_rows, layout_vars, row_length, var_headers_bytes
from pitwire.sources.iracing import (
    HEADER,
    VAR_HEADER,
    IRacingDecoder,
    Var,
    parse_session_info,
    parse_vars,
    player,
    row_dtype,
    track,
)
from pitwire.sources.layout import build

G = 9.80665
CHAR, BOOL, INT, BITS, FLOAT, DOUBLE = range(6)

VARS = layout_vars(
    [
        ("SessionTime", DOUBLE, 1, "s"),
        ("SessionTick", INT),
        ("SessionNum", INT),
        ("SessionUniqueID", INT),
        ("SessionFlags", BITS),
        ("OnPitRoad", BOOL),
        ("Speed", FLOAT, 1, "m/s"),
        ("RPM", FLOAT),
        ("Gear", INT),
        ("Throttle", FLOAT),
        ("Brake", FLOAT),
        ("Clutch", FLOAT),
        ("SteeringWheelAngle", FLOAT, 1, "rad"),
        ("FuelLevel", FLOAT, 1, "l"),
        ("Lap", INT),
        ("LapCompleted", INT),
        ("LapDist", FLOAT, 1, "m"),
        ("LapCurrentLapTime", FLOAT, 1, "s"),
        ("PlayerCarPosition", INT),
        ("LatAccel", FLOAT),
        ("LongAccel", FLOAT),
        ("VertAccel", FLOAT),
        ("LFtempCM", FLOAT),
        ("CarIdxLapDistPct", FLOAT, 64),
    ]
)

YAML = """---
WeekendInfo:
 TrackName: spa up
 TrackDisplayName: Circuit de Spa-Francorchamps
 SessionID: 123
 SubSessionID: 456
 WeekendOptions:
  Date: 2024-05-01
DriverInfo:
 DriverCarIdx: 1
 Drivers:
 - CarIdx: 0
   UserName: Pace Car
   CarScreenName: safety pcporsche911cup
 - CarIdx: 1
   UserName: {driver}
   CarScreenName: Porsche 911 GT3 R
...
"""


def yaml_text(driver: str = "Ada Lovelace") -> str:
    return YAML.replace("{driver}", driver)


def row(tick: int, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "SessionTime": tick / 60,
        "SessionTick": tick,
        "SessionNum": 2,
        "SessionUniqueID": 9,
        "Speed": 50.0,
        "RPM": 6000.0,
        "Gear": 3,
        "Throttle": 0.75,
        "Brake": 0.0,
        "Clutch": 1.0,
        "SteeringWheelAngle": 0.5,
        "FuelLevel": 40.0,
        "Lap": 5,
        "LapCompleted": 4,
        "LapDist": 1234.5,
        "LapCurrentLapTime": 33.25,
        "PlayerCarPosition": 7,
        "LatAccel": G,
        "LongAccel": -2 * G,
        "VertAccel": G,
        "LFtempCM": 85.0,
    }
    base.update(values)
    return base


def build_map(
    vars: Sequence[Var],
    rows: Sequence[Mapping[str, Any]],
    session_info: str,
    tick_counts: Sequence[int],
    *,
    status: int = 1,
    session_info_update: int = 1,
    info_space: int = 4096,
) -> bytes:
    """A live map laid out per formats.md E.3: header, variable headers, session info (NUL
    padded to ``info_space``), then one row buffer per row stamped with ``tick_counts``."""
    heads = var_headers_bytes(vars)
    info = session_info.encode("latin-1")
    info += bytes(info_space - len(info))
    buf_len = row_length(vars)
    var_at = 144
    info_at = var_at + len(heads)
    rows_at = info_at + len(info)
    header = build(
        HEADER,
        {
            "ver": 2,
            "status": status,
            "tickRate": 60,
            "sessionInfoUpdate": session_info_update,
            "sessionInfoLen": len(info),
            "sessionInfoOffset": info_at,
            "numVars": len(vars),
            "varHeaderOffset": var_at,
            "numBuf": len(rows),
            "bufLen": buf_len,
            "varBuf": [
                {"tickCount": t, "bufOffset": rows_at + i * buf_len}
                for i, t in enumerate(tick_counts)
            ],
        },
    )
    out = bytearray(rows_at + len(rows) * buf_len)
    out[: len(header)] = header
    out[var_at:info_at] = heads
    out[info_at:rows_at] = info
    out[rows_at:] = encode_rows(vars, rows)
    return bytes(out)


def three_buffers(ticks: tuple[int, int, int] = (301, 303, 302), **kw: Any) -> bytearray:
    return bytearray(build_map(VARS, [row(t) for t in ticks], yaml_text(), list(ticks), **kw))


def feed(dec: IRacingDecoder, pieces: list[tuple[str, bytes]], t: int = 0) -> list[Any]:
    events: list[Any] = []
    for tag, data in pieces:
        events += dec.feed(data, t, tag)
    return events


def of(events: list[Any], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def set_int(buf: bytearray, offset: int, value: int) -> None:
    struct.pack_into("<i", buf, offset, value)


def test_file_backed_map_with_three_buffers_gives_the_newest_row(tmp_path: Path) -> None:
    """snapshot of a mapped file picks the buffer with the highest tickCount."""
    path = tmp_path / "IRSDKMemMapFileName"
    path.write_bytes(three_buffers((301, 303, 302)))
    dec = IRacingDecoder()
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        pieces = dec.snapshot(view)
        view.release()
    assert [tag for tag, _ in pieces] == ["header", "vars", "yaml", "row"]
    assert len(pieces[0][1]) == 112 and len(pieces[1][1]) == len(VARS) * 144
    assert pieces[2][1] == yaml_text().encode()
    tick = struct.unpack_from("<i", pieces[3][1])[0]
    assert tick == 303 and len(pieces[3][1]) == 4 + row_length(VARS)
    events = feed(dec, pieces, t=77)
    assert [type(e) for e in events] == [SessionStarted, StreamSeen, Sample]
    assert events[0].track == "Circuit de Spa-Francorchamps"
    assert events[0].key == "iracing:456:9:2"
    assert events[1] == StreamSeen("car", driver="Ada Lovelace", car="Porsche 911 GT3 R")
    assert events[2].t_ns == 77 and events[2].values["SessionTick"] == 303


def test_snapshot_sends_vars_and_yaml_only_when_they_change() -> None:
    """Later snapshots carry header and row only, plus yaml when sessionInfoUpdate moves."""
    buf = three_buffers()
    dec = IRacingDecoder()
    dec.snapshot(memoryview(buf))
    assert [t for t, _ in dec.snapshot(memoryview(buf))] == ["header", "row"]
    set_int(buf, 12, 2)  # sessionInfoUpdate
    info_at = struct.unpack_from("<i", buf, 20)[0]
    new = yaml_text("Grace Hopper").encode()
    buf[info_at : info_at + len(new) + 1] = new + b"\0"
    pieces = dec.snapshot(memoryview(buf))
    assert [t for t, _ in pieces] == ["header", "yaml", "row"] and pieces[1][1] == new


def test_a_row_the_sim_keeps_overwriting_is_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """When every copy is torn (its buffer's tick moves), snapshot gives up after 3 tries."""
    buf = three_buffers((301, 303, 302))
    dec = IRacingDecoder()
    original = dec._copy
    starts: list[int] = []

    def copy(view: memoryview, start: int, length: int) -> bytes:
        starts.append(start)
        slot = [struct.unpack_from("<i", buf, 52 + 16 * i)[0] for i in range(3)].index(start)
        set_int(buf, 48 + 16 * slot, struct.unpack_from("<i", buf, 48 + 16 * slot)[0] + 10)
        return original(view, start, length)

    monkeypatch.setattr(dec, "_copy", copy)
    pieces = dec.snapshot(memoryview(buf))
    assert [t for t, _ in pieces] == ["header", "vars", "yaml"]  # no row this tick
    assert len(starts) == 3


def test_another_buffer_changing_during_the_copy_does_no_harm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the copied buffer's tick is re-checked: the sim writing another one is fine."""
    buf = three_buffers((301, 303, 302))
    dec = IRacingDecoder()
    original = dec._copy
    starts: list[int] = []

    def copy(view: memoryview, start: int, length: int) -> bytes:
        starts.append(start)
        set_int(buf, 48, 304)  # the sim fills buffer 0 meanwhile
        return original(view, start, length)

    monkeypatch.setattr(dec, "_copy", copy)
    pieces = dec.snapshot(memoryview(buf))
    assert len(starts) == 1 and struct.unpack_from("<i", pieces[-1][1])[0] == 303


def test_a_row_copied_while_its_tick_changes_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy whose buffer tick changed is dropped and the newest buffer copied again."""
    buf = three_buffers((301, 303, 302))
    dec = IRacingDecoder()
    original = dec._copy
    seen: list[int] = []

    def copy(view: memoryview, start: int, length: int) -> bytes:
        seen.append(start)
        if len(seen) == 1:  # buffer 1 (tick 303) is being rewritten with tick 305
            set_int(buf, 48 + 16 * 1, 305)
        return original(view, start, length)

    monkeypatch.setattr(dec, "_copy", copy)
    pieces = dec.snapshot(memoryview(buf))
    assert len(seen) == 2 and seen[0] == seen[1]
    assert struct.unpack_from("<i", pieces[-1][1])[0] == 305


def test_feed_gives_one_sample_per_new_tick() -> None:
    """A row with the tick of the last one is skipped; a new tick is a sample."""
    dec = IRacingDecoder()
    buf = three_buffers()
    feed(dec, dec.snapshot(memoryview(buf)))
    assert feed(dec, dec.snapshot(memoryview(buf))) == []
    set_int(buf, 48, 304)  # buffer 0 now holds the newest tick
    events = feed(dec, dec.snapshot(memoryview(buf)))
    assert [type(e) for e in events] == [Sample]


@pytest.mark.parametrize("change", [{"SessionNum": 3}, {"SessionUniqueID": 10}])
def test_session_change_from_the_row(change: dict[str, int]) -> None:
    """A new SessionNum or SessionUniqueID starts a session named after the YAML track."""
    dec = IRacingDecoder()
    feed(dec, dec.snapshot(memoryview(three_buffers())))
    buf = bytearray(build_map(VARS, [row(400, **change)], yaml_text(), [400]))
    events = feed(dec, dec.snapshot(memoryview(buf)))
    assert [type(e) for e in events] == [SessionStarted, StreamSeen, Sample]
    assert events[0].track == "Circuit de Spa-Francorchamps"


def test_yaml_change_of_driver_is_a_stream_seen() -> None:
    """New session info naming another player driver gives StreamSeen once."""
    dec = IRacingDecoder()
    feed(dec, dec.snapshot(memoryview(three_buffers())))
    events = dec.feed(yaml_text("Grace Hopper").encode(), 0, "yaml")
    assert events == [StreamSeen("car", driver="Grace Hopper", car="Porsche 911 GT3 R")]
    assert dec.feed(yaml_text("Grace Hopper").encode(), 0, "yaml") == []


def test_disconnected_sim_gives_no_samples_and_a_notice() -> None:
    """status bit 0 clear: snapshot sends only the header, feed says so and skips rows."""
    dec = IRacingDecoder()
    feed(dec, dec.snapshot(memoryview(three_buffers())))
    off = three_buffers((310, 311, 312), status=0)
    pieces = dec.snapshot(memoryview(off))
    assert [t for t, _ in pieces] == ["header"]
    events = feed(dec, pieces)
    assert [type(e) for e in events] == [Notice] and "not connected" in events[0].message
    assert dec.feed(struct.pack("<i", 999) + bytes(row_length(VARS)), 0, "row") == []
    back = three_buffers((320, 321, 322))
    pieces = dec.snapshot(memoryview(back))
    assert [t for t, _ in pieces] == ["header", "vars", "yaml", "row"]  # all sent again
    events = feed(dec, pieces)
    assert [type(e) for e in events] == [Notice, Sample]


def test_manifest_conversions_through_the_framer() -> None:
    """Speed m/s to km/h, accelerations to g, clutch inverted, lap = LapCompleted."""
    dec = IRacingDecoder()
    framer = Framer(dec.manifest)
    framer.add(feed(dec, dec.snapshot(memoryview(three_buffers())), t=5))
    items = framer.drain()
    _, batch = items[-1]
    c = {k: float(v[0]) for k, v in batch.columns.items()}
    assert c["speed"] == pytest.approx(180.0)
    assert c["rpm"] == 6000 and c["gear"] == 3 and c["throttle"] == 0.75
    assert c["clutch"] == 0.0  # Clutch 1 = fully engaged = pedal released
    assert c["steer"] == 0.5 and c["fuel"] == 40.0
    assert c["lap"] == 4 and c["lap_started"] == 5
    assert c["lap_distance"] == pytest.approx(1234.5) and c["lap_time"] == 33.25
    assert c["position"] == 7
    assert (c["g_lat"], c["g_lon"], c["g_vert"]) == pytest.approx((1.0, -2.0, 1.0))
    assert c["tyre_temp_fl"] == 85.0 and np.isnan(c["tyre_press_fl"])
    assert c["packet_id"] == 303 and c["session_time"] == pytest.approx(303 / 60)


def test_lap_completed_comes_from_lap_when_missing() -> None:
    """A variable set without LapCompleted gives LapCompleted = max(Lap - 1, 0)."""
    vars = layout_vars([("SessionNum", INT), ("Lap", INT)])
    dec = IRacingDecoder()
    for lap, tick in ((0, 1), (6, 2)):
        buf = build_map(vars, [{"Lap": lap}], yaml_text(), [tick])
        (*_, sample) = feed(dec, dec.snapshot(memoryview(bytearray(buf))))
        assert sample.values["LapCompleted"] == max(lap - 1, 0)


def test_every_manifest_raw_field_is_produced_when_the_sim_has_it() -> None:
    """With a variable for every raw field the manifest maps, samples carry them all."""
    names = [n for n in IRacingDecoder.manifest.raw_fields]
    vars = layout_vars([(n, FLOAT) for n in names])
    dec = IRacingDecoder()
    buf = build_map(vars, [{n: i for i, n in enumerate(names)}], yaml_text(), [1])
    (*_, sample) = feed(dec, dec.snapshot(memoryview(bytearray(buf))))
    assert all(sample.values[n] == i for i, n in enumerate(names))
    assert dec.greeting() == [] and dec.name == "iracing"


def test_array_elements_are_raw_fields() -> None:
    """A manifest may map one element of an array variable as Name[i]."""
    text = '[source]\nname = "x"\n[[field]]\nraw = "CarIdxLapDistPct[3]"\nchannel = "p3"\nunit = ""'
    dec = IRacingDecoder(Manifest.loads(text))
    pct = [0.0] * 64
    pct[3] = 0.5
    buf = build_map(VARS, [row(7, CarIdxLapDistPct=pct)], yaml_text(), [7])
    (*_, sample) = feed(dec, dec.snapshot(memoryview(bytearray(buf))))
    assert sample.values["CarIdxLapDistPct[3]"] == 0.5


@pytest.mark.parametrize(
    ("tag", "data", "problem"),
    [
        ("header", bytes(100), "header of 100 bytes"),
        ("header", bytes(112), "not an irsdk header"),
        ("vars", bytes(145), "not a multiple of 144"),
        ("vars", build(VAR_HEADER, {"type": 9, "name": "X", "count": 1}), "bad variable header"),
        ("yaml", b"a: [1, 2\n", "not readable YAML"),
        ("yaml", b"- 1\n- 2\n", "not a mapping"),
        ("row", b"\1\0", "no tick count"),
        ("telemetry", b"", "unknown piece tag"),
    ],
)
def test_bad_pieces_raise_decode_error(tag: str, data: bytes, problem: str) -> None:
    """Pieces that cannot be read raise DecodeError with what was wrong."""
    with pytest.raises(DecodeError, match=problem):
        IRacingDecoder().feed(data, 0, tag)


def test_a_variable_past_the_row_and_a_short_row_are_decode_errors() -> None:
    """Variable headers that leave the row, and rows shorter than the variables, raise."""
    dec = IRacingDecoder()
    dec.feed(build(HEADER, {"ver": 2, "status": 1, "numBuf": 3, "bufLen": 8}), 0, "header")
    with pytest.raises(DecodeError, match="past the 8-byte row"):
        dec.feed(var_headers_bytes(layout_vars([("A", INT), ("B", DOUBLE)])), 0, "vars")
    dec.feed(var_headers_bytes(layout_vars([("SessionNum", INT), ("Speed", FLOAT)])), 0, "vars")
    with pytest.raises(DecodeError, match="row of 4 bytes"):
        dec.feed(struct.pack("<i", 1) + bytes(4), 0, "row")


def test_rows_before_variable_headers_are_skipped_with_one_notice() -> None:
    """A row fed before any variable headers is skipped, with a Notice the first time."""
    dec = IRacingDecoder()
    piece = struct.pack("<i", 1) + bytes(64)
    assert [type(e) for e in dec.feed(piece, 0, "row")] == [Notice]
    assert dec.feed(piece, 0, "row") == []


def test_snapshot_of_a_short_or_inconsistent_map_sends_no_row() -> None:
    """A map shorter than the header gives nothing; buffers past its end give no row."""
    dec = IRacingDecoder()
    assert dec.snapshot(memoryview(bytes(50))) == []
    buf = three_buffers((301, 302, 303))  # the newest buffer is the last one
    assert [t for t, _ in dec.snapshot(memoryview(buf[:-10]))] == ["header", "vars", "yaml"]


def test_session_info_yaml_reader() -> None:
    """Dates stay text, latin-1 names decode, values iRacing leaves unquoted still parse."""
    text = yaml_text("Jos\xe9 M\xfcller").replace(
        "   CarScreenName: Porsche 911 GT3 R",
        "   CarScreenName: Porsche 911 GT3 R\n   TeamName: ,odd",
    )
    info = parse_session_info(text)
    assert info["WeekendInfo"]["WeekendOptions"]["Date"] == "2024-05-01"
    assert player(info) == ("Jos\xe9 M\xfcller", "Porsche 911 GT3 R")
    assert info["DriverInfo"]["Drivers"][1]["TeamName"] == ",odd"
    assert track(info) == "Circuit de Spa-Francorchamps"
    assert player({}) == ("", "") and track({}) == ""


def test_var_headers_round_trip() -> None:
    """Variable headers written per E.3 parse back to the same variables."""
    block = var_headers_bytes(VARS)
    assert struct.unpack_from("<iii", block, 144 * 6) == (FLOAT, VARS[6].offset, 1)
    assert block[144 * 6 + 16 : 144 * 6 + 21] == b"Speed"
    assert block[144 * 6 + 112 : 144 * 6 + 115] == b"m/s"
    assert parse_vars(block) == VARS
    dtype = row_dtype(VARS, row_length(VARS), ["Speed", "CarIdxLapDistPct[2]", "Nope"])
    assert dtype.names == ("Speed", "CarIdxLapDistPct[2]")
    assert dtype.fields["CarIdxLapDistPct[2]"][1] == VARS[-1].offset + 8
