"""Tests of recording a source to session files and describing them (pitwire.sources.record)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pitwire import sessionfile
from pitwire.model.records import SessionInfo, StreamInfo
from pitwire.sources.base import SessionChange, StreamUpdate
from pitwire.sources.record import Recorder, describe, numbered_path, simulate
from pitwire.sources.sim import SimField
from support import car_batch, car_channels

CHANNELS = list(car_channels().values())


def info(stream: str) -> StreamInfo:
    return StreamInfo(stream_id=stream, driver=f"Driver {stream}", channels=CHANNELS)


def test_a_recording_keeps_every_frame_once_and_drops_repeated_packets(tmp_path):
    """Frames go to the file in order; a repeated packet id is dropped as the agent drops it."""
    rec = Recorder(tmp_path / "r.pwr", session="rec-1", source="test", streams=[info("car-1")])
    rec.take(("car-1", car_batch(0, 100)))
    rec.take(("car-1", car_batch(99, 51)))  # frame 99 again
    rec.close()
    assert (rec.frames, rec.duplicates) == (150, 1)
    with sessionfile.open(tmp_path / "r.pwr") as reader:
        assert reader.info.session_id == "rec-1" and reader.info.source == "test"
        assert reader.frames("car-1").equals(car_batch(0, 150))
        assert not reader.index_rebuilt


def test_each_game_session_goes_to_its_own_numbered_file(tmp_path):
    """A new game session after frames starts FILE-2.pwr with its own session id; the same
    session announced again (track learned) stays in the file and updates the track."""
    out = tmp_path / "race.pwr"
    rec = Recorder(out, session="gp", source="f1")
    rec.take(SessionChange(key="A"))
    rec.take(SessionChange(key="A", track="Monza"))
    rec.take(StreamUpdate(info("car-1")))
    rec.take(("car-1", car_batch(0, 10)))
    rec.take(SessionChange(key="B", track="Spa"))
    rec.take(StreamUpdate(info("car-2")))
    rec.take(("car-2", car_batch(0, 5)))
    rec.take(("car-1", car_batch(10, 5)))  # announced in the first file only: declared again
    rec.close()
    assert rec.files == [out, tmp_path / "race-2.pwr"]
    with sessionfile.open(out) as first:
        assert (first.info.session_id, first.info.track) == ("gp", "Monza")
        assert [s.frames for s in first.summary()] == [10]
    with sessionfile.open(tmp_path / "race-2.pwr") as second:
        assert (second.info.session_id, second.info.track) == ("gp-2", "Spa")
        assert {s.stream_id: s.frames for s in second.summary()} == {"car-2": 5, "car-1": 5}


def test_completed_laps_are_written_with_their_times(tmp_path):
    """Each lap the lap channel completes becomes a lap record of the file."""
    rec = Recorder(tmp_path / "l.pwr", session="laps", source="test", streams=[info("car-1")])
    rec.take(("car-1", car_batch(0, 60, lap=1)))
    rec.take(("car-1", car_batch(60, 60, lap=2)))
    rec.take(("car-1", car_batch(120, 30, lap=3)))
    rec.close()
    with sessionfile.open(tmp_path / "l.pwr") as reader:
        assert [(lap.lap, lap.frames) for lap in reader.laps] == [(1, 60), (2, 60)]
        assert reader.laps[0].lap_time == pytest.approx(1.0, abs=1e-6)


def test_an_existing_file_is_refused_unless_overwriting(tmp_path):
    """Recording to an existing file raises SessionFileError; overwrite replaces it."""
    (tmp_path / "x.pwr").write_bytes(b"precious")
    with pytest.raises(sessionfile.SessionFileError, match="exists"):
        Recorder(tmp_path / "x.pwr", session="s", source="t")
    Recorder(tmp_path / "x.pwr", session="s", source="t", overwrite=True).close()
    with sessionfile.open(tmp_path / "x.pwr") as reader:
        assert reader.info.session_id == "s"


def test_numbered_paths():
    """The n-th game session's file is FILE-n.pwr beside FILE.pwr."""
    out = Path("a/race.pwr")
    assert numbered_path(out, 1) == out
    assert numbered_path(out, 3) == Path("a/race-3.pwr")


def test_describe_counts_frames_rate_and_laps(tmp_path):
    """A clean simulated session is complete at its 60 Hz, with laps from the lap channel."""
    path = tmp_path / "s.pwr"
    simulate(path, cars=2, seconds=100.0, session="desc")
    with sessionfile.open(path) as reader:
        d = describe(reader)
    assert d["session"]["session_id"] == "desc" and d["frames"] == 12000
    assert d["duration_s"] == pytest.approx(100.0, abs=0.02)
    for st in d["streams"]:
        assert (st["frames"], st["expected"], st["gaps"]) == (6000, 6000, 0)
        assert st["rate_hz"] == pytest.approx(60.0) and st["completeness"] == 1.0
        assert st["channels"] == 27
    assert d["laps_derived"] and {lap["lap"] for lap in d["laps"]} == {0}
    assert d["problems"] == [] and not d["index_rebuilt"]


def test_describe_finds_gaps_and_counts_missing_frames(tmp_path):
    """A stream that lost 0.5 s of its 60 Hz frames shows one gap of ~29 missing frames."""
    path = tmp_path / "gap.pwr"
    field = SimField(cars=1, start_ns=1_700_000_000_000_000_000)
    with sessionfile.create(path, SessionInfo(session_id="gap"), streams=field.streams) as w:
        for tick in range(240):
            for stream, batch in field.step():
                if not 60 <= tick < 90:
                    w.write(stream, batch)
    with sessionfile.open(path) as reader:
        [st] = describe(reader)["streams"]
    assert (st["frames"], st["expected"], st["gaps"]) == (210, 240, 1)
    assert st["completeness"] == pytest.approx(210 / 240)
    [gap] = st["gap_list"]
    assert gap["missing"] == 30 and gap["at_s"] == pytest.approx(59 / 60, abs=1e-3)


def test_describe_reports_damage_and_a_rebuilt_index(tmp_path):
    """A file cut short is described from what is readable, with its problems listed."""
    path = tmp_path / "cut.pwr"
    simulate(path, cars=1, seconds=10.0)
    path.write_bytes(path.read_bytes()[:-5000])
    with sessionfile.open(path) as reader:
        d = describe(reader)
    assert d["index_rebuilt"] and d["problems"]
    assert 0 < d["frames"] < 600


def test_describe_of_a_stream_without_frames():
    """A declared stream with no frames has no rate and zero completeness."""
    from pitwire.sources.record import _stream_figures

    figures = _stream_figures(np.empty(0, np.int64), 0)
    assert (figures["rate_hz"], figures["expected"], figures["completeness"]) == (None, 0, 0.0)
    one = _stream_figures(np.array([5], np.int64), 0)
    assert (one["expected"], one["completeness"]) == (1, 1.0)
