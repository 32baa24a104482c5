"""Tests of the Python API (pitwire.capture, pitwire.open)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pitwire
from pitwire import sessionfile
from pitwire.export import ExportError
from pitwire.model.records import LapInfo
from pitwire.sources.base import SourceError
from pwrgen import INFO, T0, batch, streams


def test_capture_iterates_frames_and_records_what_it_iterated(tmp_path: Path) -> None:
    """Three lines from import to frames: what the loop sees is exactly what the file holds."""
    path = tmp_path / "race.pwr"
    seen: dict[str, int] = {}
    with pitwire.capture("sim", record=path, cars=2, duration=1.0, rate=60) as cap:
        for stream, b in cap:
            seen[stream] = seen.get(stream, 0) + b.n
    assert seen == {"car-1": 60, "car-2": 60}
    with pitwire.open(path) as s:
        assert [st.stream_id for st in s.streams] == ["car-1", "car-2"]
        assert s.info.track == "sim-ring" and s.info.source == "sim"
        assert s.frames("car-2").n == 60


def test_callbacks_get_every_batch_and_each_completed_lap(tmp_path: Path) -> None:
    """on_frame sees every frame and on_lap each lap the lap channel completes; laps are
    also recorded in the file."""
    path = tmp_path / "laps.pwr"
    frames: list[int] = []
    laps: list[LapInfo] = []
    cap = pitwire.capture(
        "sim",
        record=path,
        cars=1,
        duration=240.0,
        rate=10,
        realtime=False,
        on_frame=lambda stream, b: frames.append(b.n),
        on_lap=laps.append,
    )
    cap.run()
    assert sum(frames) == 2400
    assert laps and all(lap.stream_id == "car-1" for lap in laps)
    assert [lap.lap for lap in laps] == list(range(len(laps)))
    with pitwire.open(path) as s:
        assert s.laps() == laps


def test_open_gives_laps_frames_and_a_dataframe(tmp_path: Path) -> None:
    """A file written by hand opens with its laps (computed from the lap channel when the
    file has none), frames by time range, and to_pandas with the chosen channels."""
    path = tmp_path / "s.pwr"
    with sessionfile.create(path, INFO, streams=streams(2)) as w:
        for c in range(2):
            w.write(f"car-{c}", batch(c, 0, 2500))
    with pitwire.open(path) as s:
        laps = s.laps("car-0")
        assert [(lap.lap, lap.frames) for lap in laps] == [(0, 1000), (1, 1000)]
        part = s.frames("car-1", t0_ns=T0, t1_ns=T0 + 999_999_999)
        assert part.n == 100
        df = s.to_pandas(channels=["speed", "gear"])
        assert list(df.columns) == ["stream", "time", "speed", "gear"]
        assert len(df) == 5000 and set(df["stream"]) == {"car-0", "car-1"}
        speed = df[df.stream == "car-1"]["speed"].to_numpy()
        assert np.abs(speed - batch(1, 0, 2500).columns["speed"]).max() <= 0.0051  # resolution
        assert str(df["time"].dtype).startswith("datetime64[ns")
        with pytest.raises(ValueError, match="name one with stream="):
            s.frames()
        with pytest.raises(KeyError, match=r"no channel\(s\) boost \(it has: speed, rpm"):
            s.to_pandas(channels=["boost"])
        one = s.to_pandas("speed", stream=["car-1"])  # a name and a list are fine too
        assert list(one.columns) == ["stream", "time", "speed"] and len(one) == 2500
        with pytest.raises(KeyError, match="no stream 'car-9'"):
            s.laps("car-9")


def test_export_from_the_api_writes_files(tmp_path: Path) -> None:
    """Session.export writes the chosen format into the folder."""
    path = tmp_path / "s.pwr"
    with sessionfile.create(path, INFO, streams=streams(1)) as w:
        w.write("car-0", batch(0, 0, 50))
    with pitwire.open(path) as s:
        written = s.export("csv", tmp_path / "out")
    assert [p.name for p in written] == ["test-session_car-0.csv"]
    assert len(written[0].read_text().splitlines()) == 51


def test_bad_sources_and_options_are_clear_errors() -> None:
    """An unknown source or option raises SourceError naming what is known."""
    with pytest.raises(SourceError, match="known sources"):
        pitwire.capture("gran-turismo")
    with pytest.raises(SourceError, match=r"unknown option.*prot"):
        pitwire.capture("forza", prot=5300)


def test_a_capture_nobody_reads_never_stalls_the_recording(tmp_path: Path) -> None:
    """With the iterating side idle, the source and the recording go on; batches the loop
    never took are counted as dropped and stopping is quick with a complete file."""
    import time

    path = tmp_path / "idle.pwr"
    cap = pitwire.capture("sim", record=path, cars=4, rate=200)
    cap._queue.maxsize = 20  # a small queue fills at once
    cap.start()
    time.sleep(1.0)
    start = time.monotonic()
    cap.stop()
    assert time.monotonic() - start < 3
    assert cap.dropped > 0
    with pitwire.open(path) as s:
        assert not s.reader.index_rebuilt  # closed properly: the index is there
        assert sum(st.frames for st in s.reader.summary()) == cap.frames


def test_a_capture_also_writes_the_chosen_formats_when_it_ends(tmp_path: Path) -> None:
    """export= picks more writers for a source: the recording is also written as Parquet
    and CSV next to the .pwr file; an unknown format fails before capturing."""
    path = tmp_path / "race.pwr"
    with pitwire.capture(
        "sim", record=path, export=["parquet", "csv"], cars=2, duration=0.5
    ) as cap:
        for _ in cap:
            pass
    names = sorted(p.name for p in cap.exported)
    assert names == [
        f"{cap.session}.parquet",
        f"{cap.session}_car-1.csv",
        f"{cap.session}_car-2.csv",
    ]
    assert all(p.is_file() for p in cap.exported)
    with pytest.raises(ExportError, match="csvv"):
        pitwire.capture("sim", record=tmp_path / "x.pwr", export=["csvv"])
