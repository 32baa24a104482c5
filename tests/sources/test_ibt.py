import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pitwire.sources.base import Sample, SessionStarted, StreamSeen
from pitwire.sources.ibt import (
    IbtError,
    IbtFile,
    IbtWarning,
    build_ibt,
    layout_vars,
    row_length,
)
from pitwire.sources.iracing import Var

CHAR, BOOL, INT, BITS, FLOAT, DOUBLE = range(6)
START = 1_714_550_400  # 2024-05-01 08:00 UTC [s]

VARS = layout_vars(
    [
        ("SessionTime", DOUBLE, 1, "s"),
        ("SessionTick", INT),
        ("OnPitRoad", BOOL),
        ("Speed", FLOAT, 1, "m/s"),
        ("RPM", FLOAT),
        ("Gear", INT),
        ("Clutch", FLOAT),
        ("Lap", INT),
        ("LapDist", FLOAT),
        ("SessionFlags", BITS),
        ("Lat", DOUBLE, 1, "deg"),
        ("CarIdxLapDistPct", FLOAT, 4),
    ]
)

YAML = """---
WeekendInfo:
 TrackDisplayName: Okayama International Circuit
 SubSessionID: 0
 SessionID: 0
DriverInfo:
 DriverCarIdx: 0
 Drivers:
 - CarIdx: 0
   UserName: Ada Lovelace
   CarScreenName: Mazda MX-5 Cup
...
"""


def make_rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rows.append(
            {
                "SessionTime": 100.0 + i / 60,
                "SessionTick": 6000 + i,
                "OnPitRoad": bool(i % 7 == 0),
                "Speed": float(np.float32(rng.uniform(0, 80))),
                "RPM": float(np.float32(rng.uniform(1000, 8000))),
                "Gear": int(rng.integers(-1, 7)),
                "Clutch": float(np.float32(rng.uniform(0, 1))),
                "Lap": i // 200,
                "LapDist": float(np.float32(i * 1.5)),
                "SessionFlags": 0x80000000 if i % 2 else 0x4,
                "Lat": 34.915 + i * 1e-7,
                "CarIdxLapDistPct": [float(np.float32(x)) for x in rng.uniform(0, 1, 4)],
            }
        )
    return rows


def write(tmp_path: Path, rows: list[dict[str, Any]], **kw: Any) -> Path:
    path = tmp_path / "mx5_okayama.ibt"
    data = build_ibt(
        VARS,
        rows,
        YAML,
        start_date=START,
        start_time=100.0,
        end_time=100.0 + len(rows) / 60,
        lap_count=3,
        **kw,
    )
    path.write_bytes(data)
    return path


@pytest.fixture
def seed() -> int:
    value = random.randrange(2**32)
    print(f"seed={value}")
    return value


def test_file_built_per_spec_reads_back_exactly(tmp_path: Path, seed: int) -> None:
    """An .ibt laid out per E.3 reads back with the same variables, YAML and every value."""
    rows = make_rows(500, seed)
    with IbtFile(write(tmp_path, rows)) as ibt:
        assert len(ibt) == 500 and ibt.record_count == 500
        assert ibt.vars == VARS and ibt.session_info == YAML
        assert (ibt.tick_rate, ibt.lap_count, ibt.start_ns) == (60, 3, START * 10**9)
        cols = ibt.columns()
        for name in (
            "SessionTime",
            "SessionTick",
            "Speed",
            "RPM",
            "Gear",
            "Clutch",
            "Lap",
            "LapDist",
            "SessionFlags",
            "Lat",
            "OnPitRoad",
        ):
            assert cols[name].tolist() == [r[name] for r in rows], name
        assert cols["CarIdxLapDistPct"].shape == (500, 4)
        assert cols["CarIdxLapDistPct"].tolist() == [r["CarIdxLapDistPct"] for r in rows]
        assert cols["SessionFlags"].dtype == np.uint32 and cols["Lat"].dtype == np.float64
        assert cols["OnPitRoad"].dtype == np.bool_
        assert ibt.columns(["CarIdxLapDistPct[2]"])["CarIdxLapDistPct[2]"].tolist() == [
            r["CarIdxLapDistPct"][2] for r in rows
        ]
        t = ibt.time_ns()
        assert t[0] == START * 10**9 and t[60] == START * 10**9 + 10**9


def test_documented_offsets_in_the_file(tmp_path: Path) -> None:
    """Header, disk sub-header and first variable header sit where E.3 puts them."""
    data = write(tmp_path, make_rows(10, 1)).read_bytes()
    ver, status, tick_rate = struct.unpack_from("<iii", data, 0)
    assert status == 1
    num_vars, var_at, num_buf, buf_len = struct.unpack_from("<iiii", data, 24)
    assert (ver, tick_rate, num_vars, var_at, num_buf) == (2, 60, len(VARS), 144, 1)
    assert buf_len == row_length(VARS)
    (start_date,) = struct.unpack_from("<q", data, 112)
    start_time, end_time = struct.unpack_from("<dd", data, 120)
    assert end_time == pytest.approx(100.0 + 10 / 60)
    laps, records = struct.unpack_from("<ii", data, 136)
    assert (start_date, start_time, laps, records) == (START, 100.0, 3, 10)
    kind, offset, count = struct.unpack_from("<iii", data, 144)
    assert (kind, offset, count) == (DOUBLE, 0, 1) and data[160:171] == b"SessionTime"
    info_len, info_at = struct.unpack_from("<ii", data, 16)
    assert data[info_at : info_at + info_len] == YAML.encode() + b"\0"
    (rows_at,) = struct.unpack_from("<i", data, 52)
    assert len(data) == rows_at + 10 * buf_len
    (tick,) = struct.unpack_from("<i", data, rows_at + VARS[1].offset + 3 * buf_len)
    assert tick == 6003


def test_truncated_file_stops_at_the_last_whole_row_with_a_warning(tmp_path: Path) -> None:
    """A file cut mid-row gives its whole rows and an IbtWarning saying how many."""
    rows = make_rows(100, 2)
    path = write(tmp_path, rows)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40 * row_length(VARS) - 7])
    with pytest.warns(IbtWarning, match="100 rows announced, 59 whole rows present"):
        ibt = IbtFile(path)
    assert len(ibt) == 59
    assert ibt.columns(["SessionTick"])["SessionTick"].tolist() == list(range(6000, 6059))


def test_unclosed_recording_without_a_row_count_is_read_with_a_warning(tmp_path: Path) -> None:
    """sessionRecordCount 0 with rows present: the whole rows are read, with a warning."""
    path = write(tmp_path, make_rows(30, 3), record_count=0)
    with pytest.warns(IbtWarning, match="no row count"):
        assert len(IbtFile(path)) == 30


def test_empty_recording_has_no_rows(tmp_path: Path) -> None:
    """A file with headers and no rows opens with zero rows and empty columns."""
    ibt = IbtFile(write(tmp_path, []))
    assert len(ibt) == 0 and ibt.columns(["Speed"])["Speed"].shape == (0,)
    assert ibt.frames().n == 0


@pytest.mark.parametrize(
    ("cut", "problem"),
    [
        (0, "0 bytes, an .ibt file starts with 144"),
        (100, "100 bytes"),
        (200, "variable headers"),
    ],
)
def test_truncated_headers_raise_ibt_error(tmp_path: Path, cut: int, problem: str) -> None:
    """A file cut inside its headers raises IbtError naming what is missing."""
    path = write(tmp_path, make_rows(5, 4))
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(IbtError, match=problem):
        IbtFile(path)


def test_not_an_ibt_file_raises_ibt_error(tmp_path: Path) -> None:
    """Random bytes, a bad variable type and a missing file raise IbtError."""
    junk = tmp_path / "junk.ibt"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(IbtError, match=r"not an \.ibt file"):
        IbtFile(junk)
    bad = bytearray(build_ibt([Var("X", FLOAT, 0)], [{"X": 1.0}], ""))
    struct.pack_into("<i", bad, 144, 7)  # the first variable's type
    junk.write_bytes(bad)
    with pytest.raises(IbtError, match="bad variable header"):
        IbtFile(junk)
    with pytest.raises(IbtError, match="cannot read"):
        IbtFile(tmp_path / "missing.ibt")


def test_frames_apply_the_iracing_manifest(tmp_path: Path) -> None:
    """frames(): one batch through the manifest; absent variables NaN, LapCompleted from Lap."""
    rows = make_rows(400, 5)
    batch = IbtFile(write(tmp_path, rows)).frames()
    assert batch.n == 400
    speed = np.array([r["Speed"] for r in rows], dtype=np.float64)
    assert np.allclose(batch.columns["speed"], speed * 3.6, rtol=1e-6)
    assert np.allclose(batch.columns["clutch"], 1 - np.array([r["Clutch"] for r in rows]))
    assert batch.columns["lap"].tolist() == [max(r["Lap"] - 1, 0) for r in rows]
    assert batch.columns["latitude"].tolist() == [r["Lat"] for r in rows]
    assert np.isnan(batch.columns["throttle"]).all()
    assert batch.t_ns[1] - batch.t_ns[0] == pytest.approx(1e9 / 60, abs=1)


def test_samples_and_session_events_match_the_live_decoder(tmp_path: Path) -> None:
    """samples() yields one Sample per row; session_events() names track, driver and car."""
    ibt = IbtFile(write(tmp_path, make_rows(20, 6)))
    samples = list(ibt.samples())
    assert len(samples) == 20 and all(isinstance(s, Sample) for s in samples)
    assert samples[3].values["SessionTick"] == 6003 and samples[3].stream == "car"
    started, seen = ibt.session_events()
    assert isinstance(started, SessionStarted) and started.track == "Okayama International Circuit"
    assert seen == StreamSeen("car", driver="Ada Lovelace", car="Mazda MX-5 Cup")
    assert ibt.session["DriverInfo"]["Drivers"][0]["CarIdx"] == 0


def test_unknown_column_names_raise_key_error_with_a_hint(tmp_path: Path) -> None:
    """An unknown variable name raises KeyError suggesting close names."""
    ibt = IbtFile(write(tmp_path, make_rows(3, 7)))
    with pytest.raises(KeyError, match="did you mean Speed"):
        ibt.columns(["Sped"])
    with pytest.raises(KeyError, match="has 4 elements"):
        ibt.columns(["CarIdxLapDistPct[4]"])


def test_close_keeps_returned_columns(tmp_path: Path) -> None:
    """Columns returned before close() are copies and stay valid after it."""
    ibt = IbtFile(write(tmp_path, make_rows(50, 8)))
    col = ibt.columns(["RPM"])["RPM"]
    ibt.close()
    assert len(ibt) == 0 and col.shape == (50,) and np.isfinite(col).all()
