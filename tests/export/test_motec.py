"""MoTeC i2 export, read back with an independent reading of the .ld layout and the .ldx XML.

The reader below follows the public descriptions of the format (field offsets, the channel
meta list, ``value = (raw / scale * 10**-dec + shift) * mul``) and shares no code with the
writer; the expected samples are computed here with a plain loop.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pitwire.export import ExportError, MemorySession, export_session
from pitwire.model.channels import Channel
from pitwire.model.frames import FrameBatch
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo


def text(data: bytes, at: int, size: int) -> str:
    return data[at : at + size].split(b"\0", 1)[0].decode("cp1252")


def u16(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<H", data, at)[0])


def i16(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<h", data, at)[0])


def u32(data: bytes, at: int) -> int:
    return int(struct.unpack_from("<I", data, at)[0])


@dataclass
class LdChannel:
    name: str
    short_name: str
    unit: str
    rate: int
    kind: int
    width: int
    shift: int
    mul: int
    scale: int
    dec: int
    raw: np.ndarray

    @property
    def values(self) -> np.ndarray:
        raw = self.raw.astype(np.float64)
        return (raw / self.scale * 10.0**-self.dec + self.shift) * self.mul


@dataclass
class LdFile:
    date: str
    time: str
    driver: str
    vehicle: str
    venue: str
    short_comment: str
    event: str
    session: str
    venue_name: str
    vehicle_id: str
    count: int
    channels: dict[str, LdChannel]


def read_ld(path: Path) -> LdFile:
    """Parse the header, follow event → venue → vehicle, walk the channel list, read data."""
    data = path.read_bytes()
    assert u32(data, 0x00) == 0x40
    meta_ptr, data_ptr, event_ptr = u32(data, 0x08), u32(data, 0x0C), u32(data, 0x24)
    venue_ptr = u32(data, event_ptr + 0x480)
    vehicle_ptr = u32(data, venue_ptr + 0x44A)
    channels: dict[str, LdChannel] = {}
    previous, ptr = 0, meta_ptr
    while ptr:
        assert u32(data, ptr) == previous, "prev pointer of the channel list"
        nxt, at, n = u32(data, ptr + 4), u32(data, ptr + 8), u32(data, ptr + 12)
        kind, width = u16(data, ptr + 0x12), u16(data, ptr + 0x14)
        dtype = {(3, 2): "<i2", (5, 4): "<i4", (7, 4): "<f4", (7, 2): "<f2"}[(kind, width)]
        assert at >= data_ptr and at + n * width <= len(data)
        name = text(data, ptr + 0x20, 32)
        channels[name] = LdChannel(
            name=name,
            short_name=text(data, ptr + 0x40, 8),
            unit=text(data, ptr + 0x48, 12),
            rate=u16(data, ptr + 0x16),
            kind=kind,
            width=width,
            shift=i16(data, ptr + 0x18),
            mul=i16(data, ptr + 0x1A),
            scale=i16(data, ptr + 0x1C),
            dec=i16(data, ptr + 0x1E),
            raw=np.frombuffer(data, dtype, n, at),
        )
        previous, ptr = ptr, nxt
    return LdFile(
        date=text(data, 0x5E, 16),
        time=text(data, 0x7E, 16),
        driver=text(data, 0x9E, 64),
        vehicle=text(data, 0xDE, 64),
        venue=text(data, 0x15E, 64),
        short_comment=text(data, 0x624, 64),
        event=text(data, event_ptr, 64),
        session=text(data, event_ptr + 64, 64),
        venue_name=text(data, venue_ptr, 64),
        vehicle_id=text(data, vehicle_ptr, 64),
        count=u32(data, 0x56),
        channels=channels,
    )


def expected_rate(t_ns: list[int]) -> int:
    return round(1e9 / statistics.median(b - a for a, b in itertools.pairwise(t_ns)))


def held(batch: FrameBatch, name: str, rate: int) -> list[float]:
    """Sample and hold of column ``name`` at ``rate`` from the first frame to the last:
    ``round(span * rate) + 1`` samples (halves down) at ``t0 + round(k / rate)`` (exact
    fractions, halves up), each the latest frame at or before the sample time plus half a
    period."""
    t = batch.t_ns.tolist()
    values = batch.columns[name].tolist()
    count = math.ceil(Fraction(t[-1] - t[0]) * rate / 10**9 - Fraction(1, 2)) + 1
    half = Fraction(10**9, 2 * rate)
    out = []
    for k in range(count):
        sample = t[0] + math.floor(Fraction(k * 10**9, rate) + Fraction(1, 2))
        out.append(values[bisect.bisect_right(t, sample + half) - 1])
    return out


def export(
    tmp_path: Path,
    session: MemorySession,
    streams: list[str] | None = None,
    channels: list[str] | None = None,
) -> list[Path]:
    paths: list[Path] = export_session(session, "ld", tmp_path, streams=streams, channels=channels)
    return paths


def test_files_per_stream(tmp_path: Path, session: MemorySession) -> None:
    """Each stream gets `<session>_<stream>.ld` and a matching `.ldx`."""
    paths = export(tmp_path, session)
    assert [p.name for p in paths] == [
        "race-1_car-1.ld",
        "race-1_car-1.ldx",
        "race-1_car-2.ld",
        "race-1_car-2.ldx",
        "race-1_car-3.ld",
        "race-1_car-3.ldx",
    ]


def test_header_and_blocks(tmp_path: Path, session: MemorySession) -> None:
    """Driver, vehicle, venue, event, date and time of the first frame are in the header."""
    ld = read_ld(export(tmp_path, session)[0])
    start = datetime.fromtimestamp(int(session.frames("car-1").t_ns[0]) / 1e9, UTC)
    assert (ld.date, ld.time) == (start.strftime("%d/%m/%Y"), start.strftime("%H:%M:%S"))
    assert (ld.driver, ld.vehicle, ld.venue) == ("Ana", "GT3 #1", "Spa")
    assert (ld.event, ld.session, ld.venue_name, ld.vehicle_id) == (
        "race-1",
        "sim",
        "Spa",
        "GT3 #1",
    )
    assert ld.short_comment == "car-1"
    assert ld.count == len(ld.channels) == len(session.streams[0].channels)


def test_channel_list_names_units_rate(tmp_path: Path, session: MemorySession) -> None:
    """The meta list holds every channel in order, units spelt for i2, one rate per stream."""
    ld = read_ld(export(tmp_path, session)[0])
    assert list(ld.channels) == [c.name for c in session.streams[0].channels]
    units = {n: c.unit for n, c in ld.channels.items()}
    assert units["speed"] == "km/h" and units["rpm"] == "rpm" and units["tyre_temp_fl"] == "C"
    assert ld.channels["tyre_temp_fl"].short_name == "tyrtefl"
    rate = expected_rate(session.frames("car-1").t_ns.tolist())
    assert rate == 100
    assert {c.rate for c in ld.channels.values()} == {rate}


def test_values_resampled_at_resolution(tmp_path: Path, session: MemorySession) -> None:
    """Each channel reads back as the sample-and-hold of the frames at the stream's rate,
    equal at the channel's resolution (bit-exact float32 without one)."""
    batch = session.frames("car-1")
    ld = read_ld(export(tmp_path, session)[0])
    for c in session.streams[0].channels:
        got = ld.channels[c.name]
        want = np.array(held(batch, c.name, got.rate))
        assert len(got.raw) == len(want) == batch.n, c.name  # 2.5 s at 100 Hz with jitter
        if got.kind == 7:
            assert np.array_equal(got.raw, want.astype(np.float32), equal_nan=True), c.name
        else:
            assert c.resolution is not None
            assert np.array_equal(got.raw, np.rint(want / c.resolution)), c.name
            assert np.allclose(got.values, np.rint(want / c.resolution) * c.resolution), c.name


def test_storage_types(tmp_path: Path, session: MemorySession) -> None:
    """Decimal resolutions become int16/int32 steps with dec/mul; the rest is float32."""
    ld = read_ld(export(tmp_path, session)[0]).channels
    kinds = {n: (c.kind, c.width, c.dec, c.mul, c.scale, c.shift) for n, c in ld.items()}
    assert kinds["rpm"] == (7, 4, 0, 1, 1, 0)  # has -inf
    assert kinds["gear"] == (3, 2, 0, 1, 1, 0)
    assert kinds["throttle"] == (3, 2, 3, 1, 1, 0)
    assert kinds["tyre_temp_fl"] == (3, 2, 1, 1, 1, 0)
    assert kinds["steer"] == (3, 2, 4, 1, 1, 0)
    assert kinds["x"] == (5, 4, 3, 1, 1, 0)  # ±5000 m in mm steps needs int32
    assert kinds["ride"] == (3, 2, 1, 5, 1, 0)  # 0.5 = 5 * 10**-1
    assert kinds["speed"][0] == 7  # NaN kept
    held_speed = held(session.frames("car-1"), "speed", 100)
    assert np.isnan(ld["speed"].raw).sum() == sum(math.isnan(v) for v in held_speed) > 0
    assert kinds["third"][0] == 7  # 1/3 is no decimal step
    assert kinds["raw32"][0] == 7 and kinds["raw64"][0] == 7


def test_second_stream_60hz(tmp_path: Path, session: MemorySession) -> None:
    """A 60 Hz stream is stored at 60 Hz with its own channels and values."""
    batch = session.frames("car-2")
    ld = read_ld(export(tmp_path, session)[2])
    assert list(ld.channels) == ["speed", "rpm", "gear"]
    speed = ld.channels["speed"]
    assert speed.rate == 60 and speed.kind == 3 and speed.dec == 2
    want = np.array(held(batch, "speed", 60))
    assert np.array_equal(speed.raw, np.rint(want / 0.01))


def test_empty_stream_and_selection(tmp_path: Path, session: MemorySession) -> None:
    """A stream without frames has its channels with no samples; selection limits channels."""
    paths = export(tmp_path, session, streams=["car-3", "car-1"], channels=["gear", "speed"])
    empty = read_ld(paths[2])
    assert list(empty.channels) == ["gear", "speed"]
    assert all(len(c.raw) == 0 for c in empty.channels.values())
    assert list(read_ld(paths[0]).channels) == ["gear", "speed"]


def test_ldx_beacons_at_lap_starts(tmp_path: Path, session: MemorySession) -> None:
    """The .ldx has a beacon [µs from the log start] at each lap start after the first sample,
    the lap count and the fastest timed lap in i2's numbering."""
    ldx = ET.parse(export(tmp_path, session)[1]).getroot()
    t0 = int(session.frames("car-1").t_ns[0])
    starts = [lap.t0_ns for lap in session.laps if lap.stream_id == "car-1"]
    markers = ldx.findall("./Layers/Layer/MarkerBlock/MarkerGroup[@Name='Beacons']/Marker")
    times = [float(m.get("Time", "nan")) for m in markers]
    assert times == pytest.approx([(s - t0) / 1e3 for s in starts[1:]], abs=1e-3)
    details = {s.get("Id"): s.get("Value") for s in ldx.findall("./Layers/Details/String")}
    assert details["Total Laps"] == "4"
    # lap 2 (0.8125 s) beats lap 1 (1.0 s) and lap 3 (0.2 s frames but no official time:
    # it counts first to last frame, 19 intervals of ~10 ms = ~0.19 s)
    lap3 = session.laps[3]
    fastest = (lap3.t1_ns - lap3.t0_ns) / 1e9
    assert details["Fastest Lap"] == "4"
    assert details["Fastest Time"] == f"0:{fastest:06.3f}"


def test_ldx_without_laps(tmp_path: Path) -> None:
    """A stream without laps gets an .ldx with no beacons and no fastest lap."""
    channel = Channel(name="speed", unit="km/h", resolution=0.01)
    t = np.arange(0, 10_000_000_000, 50_000_000, dtype=np.int64) + 1_600_000_000_000_000_000
    session = MemorySession(
        info=SessionInfo(session_id="s"),
        streams=[StreamInfo(stream_id="a", channels=[channel])],
        batches={"a": FrameBatch(t, {"speed": np.linspace(0, 100, len(t), dtype=np.float32)})},
    )
    ld_path, ldx_path = export_session(session, "ld", tmp_path / "one.ld")
    assert ld_path == tmp_path / "one.ld" and ldx_path == tmp_path / "one.ldx"
    ldx = ET.parse(ldx_path).getroot()
    assert ldx.findall(".//Marker") == []
    details = {s.get("Id"): s.get("Value") for s in ldx.findall("./Layers/Details/String")}
    assert details == {"Total Laps": "1"}
    speed = read_ld(ld_path).channels["speed"]
    assert speed.rate == 20 and len(speed.raw) == 200
    assert math.isclose(speed.values[-1], 100.0)


def test_stray_timestamp_raises(tmp_path: Path) -> None:
    """A frame far from the others would need billions of held samples: ExportError instead."""
    t = np.array([0, 1_700_000_000_000_000_000, 1_700_000_000_010_000_000], np.int64)
    session = MemorySession(
        info=SessionInfo(session_id="s"),
        streams=[StreamInfo(stream_id="a", channels=[Channel(name="rpm")])],
        batches={"a": FrameBatch(t, {"rpm": np.zeros(3, np.float32)})},
    )
    with pytest.raises(ExportError, match="stray timestamp"):
        export_session(session, "ld", tmp_path)


def one_stream(
    t: np.ndarray, columns: dict[str, np.ndarray], channels: list[Channel] | None = None
) -> MemorySession:
    """A session of one stream ``a`` with these frames."""
    if channels is None:
        channels = [Channel(name=n) for n in columns]
    return MemorySession(
        info=SessionInfo(session_id="s", started_ns=int(t.min()) if len(t) else 0),
        streams=[StreamInfo(stream_id="a", channels=channels)],
        batches={"a": FrameBatch(t, columns)},
    )


def test_short_names_are_unique_and_fit_their_field(tmp_path: Path) -> None:
    """Names that share their first 7 characters (the four tyres) get distinct short names
    of at most 7 characters, also against each other after abbreviation and letter case."""
    tyres = [f"tyre_{what}_{at}" for what in ("temp", "press") for at in ("fl", "fr", "rl", "rr")]
    names = [
        *tyres,
        "throttle", "throttles", "throttle_raw", "Throttle", "speed", "Speed",
        "tyrtefl", "x" * 20 + "a", "x" * 20 + "b", "lap_distance",
    ]  # fmt: skip
    t = 1_600_000_000_000_000_000 + np.arange(5, dtype=np.int64) * 10_000_000
    session = one_stream(t, {n: np.zeros(5, np.float32) for n in names})
    ld = read_ld(export(tmp_path, session)[0])
    assert list(ld.channels) == names
    shorts = [c.short_name for c in ld.channels.values()]
    assert all(1 <= len(s) <= 7 for s in shorts), shorts
    assert len({s.casefold() for s in shorts}) == len(names), shorts
    assert ld.channels["tyre_temp_fl"].short_name == "tyrtefl"
    assert ld.channels["tyre_press_rr"].short_name == "tyrprrr"
    assert ld.channels["speed"].short_name == "speed"
    assert ld.channels["lap_distance"].short_name == "lapdist"


def test_time_going_backwards_is_resampled_in_time_order(tmp_path: Path) -> None:
    """A stream whose clock jumps back (a game restart) is resampled over its frames in time
    order, from the earliest to the latest: every sample is the latest frame at or before
    it, as for sorted frames."""
    t0 = 1_600_000_000_000_000_000
    first = t0 + np.arange(100, dtype=np.int64) * 10_000_000  # 0 .. 0.99 s
    second = t0 + 505_000_000 + np.arange(100, dtype=np.int64) * 10_000_000  # 0.505 .. 1.495 s
    t = np.concatenate([first, second])
    value = np.concatenate([np.arange(100), 1000 + np.arange(100)]).astype(np.float32)
    ld = read_ld(export(tmp_path, one_stream(t, {"v": value}))[0])
    pairs = sorted(zip(t.tolist(), value.tolist(), strict=True), key=lambda p: p[0])
    ordered = FrameBatch(
        np.array([p[0] for p in pairs], np.int64), {"v": np.array([p[1] for p in pairs])}
    )
    got = ld.channels["v"]
    assert got.rate == 100
    want = held(ordered, "v", got.rate)
    assert len(want) == 150
    assert got.raw.tolist() == want


def test_equal_times_take_the_later_frame(tmp_path: Path) -> None:
    """Of frames with the same time, the sample holds the one later in the stream."""
    t0 = 1_600_000_000_000_000_000
    t = np.array([t0 + 20_000_000, t0, t0 + 10_000_000, t0 + 10_000_000], np.int64)
    ld = read_ld(export(tmp_path, one_stream(t, {"v": np.array([3, 0, 1, 2], np.float32)}))[0])
    assert ld.channels["v"].raw.tolist() == [0, 2, 3]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_lap_time_that_is_not_finite_is_no_fastest_lap(tmp_path: Path, bad: float) -> None:
    """A NaN or infinite official lap time neither crashes the .ldx nor counts as the fastest
    lap; with no other timed lap there is no fastest lap at all."""
    t0 = 1_600_000_000_000_000_000
    t = t0 + np.arange(300, dtype=np.int64) * 10_000_000
    session = one_stream(t, {"v": np.zeros(300, np.float32)})
    lap = LapInfo(
        stream_id="a", lap=1, t0_ns=t0 + 1_000_000_000, t1_ns=t0 + 2_000_000_000, frames=100
    )
    session.laps = [msgspec_replace(lap, lap_time=bad)]
    ldx = ET.parse(export(tmp_path / "one", session)[1]).getroot()
    details = {s.get("Id"): s.get("Value") for s in ldx.findall("./Layers/Details/String")}
    assert details == {"Total Laps": "2"}
    session.laps.append(
        LapInfo(
            stream_id="a",
            lap=2,
            t0_ns=t0 + 2_000_000_000,
            t1_ns=t0 + 2_990_000_000,
            frames=100,
            lap_time=1.5,
        )
    )
    ldx = ET.parse(export(tmp_path / "two", session)[1]).getroot()
    details = {s.get("Id"): s.get("Value") for s in ldx.findall("./Layers/Details/String")}
    assert details == {"Total Laps": "3", "Fastest Time": "0:01.500", "Fastest Lap": "3"}


def msgspec_replace(lap: LapInfo, **changes: object) -> LapInfo:
    import msgspec

    return msgspec.structs.replace(lap, **changes)


def test_batch_with_other_channels_than_declared(tmp_path: Path) -> None:
    """Frames lacking a declared channel, or carrying one not declared, export the declared
    channels (a missing one as NaN) instead of failing."""
    t = 1_600_000_000_000_000_000 + np.arange(4, dtype=np.int64) * 10_000_000
    session = one_stream(
        t,
        {"rpm": np.ones(4, np.float32), "gone": np.zeros(4, np.float32)},
        [Channel(name="rpm"), Channel(name="fuel", dtype="f8")],
    )
    ld = read_ld(export(tmp_path, session)[0])
    assert list(ld.channels) == ["rpm", "fuel"]
    assert ld.channels["rpm"].raw.tolist() == [1, 1, 1, 1]
    assert np.isnan(ld.channels["fuel"].raw).all()


@pytest.mark.parametrize("clock", ["floor", "round", "ceil"])
def test_60hz_frames_with_whole_ns_gaps_give_one_sample_each(tmp_path: Path, clock: str) -> None:
    """1200 frames at 60 Hz, 16666666 or 16666667 ns apart (a clock in whole ns, rounded any
    way), give 1200 samples at 60 Hz, each its own frame: none repeated, none dropped."""
    t0 = 1_600_000_000_000_000_000
    exact = [Fraction(i * 10**9, 60) for i in range(1200)]
    step = {"floor": math.floor, "round": round, "ceil": math.ceil}[clock]
    t = np.array([t0 + int(step(x)) for x in exact], np.int64)
    assert set(np.diff(t).tolist()) == {16_666_666, 16_666_667}
    value = np.arange(1200, dtype=np.float32)
    v = read_ld(export(tmp_path, one_stream(t, {"v": value}))[0]).channels["v"]
    assert v.rate == 60
    assert v.raw.tolist() == list(range(1200))


def test_a_missing_frame_holds_the_one_before(tmp_path: Path) -> None:
    """A dropped frame at 100 Hz: its sample holds the previous frame; the others are their
    own frames, including the last."""
    t0 = 1_600_000_000_000_000_000
    keep = [i for i in range(50) if i != 20]
    t = t0 + np.array(keep, np.int64) * 10_000_000
    v = read_ld(export(tmp_path, one_stream(t, {"v": np.array(keep, np.float32)}))[0])
    assert v.channels["v"].raw.tolist() == [*range(20), 19, *range(21, 50)]
