"""The FastF1 converter on FastF1-shaped data (tests/f1shapes.py), offline."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pandas as pd
import pytest

import f1shapes
from pitwire.model.channels import STANDARD
from pitwire.sources import fastf1 as f1


@pytest.fixture(scope="module")
def converted() -> f1.F1Session:
    """The fake race converted once."""
    return f1.convert(f1shapes.FakeSession())


def stream(session: f1.F1Session, stream_id: str):
    return next((info, batch) for info, batch in session.streams if info.stream_id == stream_id)


def session_s(t_ns: np.ndarray) -> np.ndarray:
    return (t_ns - f1shapes.T0.value) / 1e9


def test_module_does_not_import_fastf1() -> None:
    """Importing the converter leaves fastf1 unimported (it is an optional extra)."""
    assert "fastf1" not in sys.modules
    assert f1.convert


def test_session_info(converted: f1.F1Session) -> None:
    """The session id is a slug of year, location and session; started at t0_date."""
    info = converted.info
    assert (info.session_id, info.track, info.source) == ("f1-2024-monza-r", "Monza", "fastf1")
    assert info.started_ns == f1shapes.T0.value
    assert converted.problems == []


def test_one_stream_per_driver_with_standard_units(converted: f1.F1Session) -> None:
    """Each driver is a stream named by abbreviation with team, colour and the channels."""
    ids = [info.stream_id for info, _ in converted.streams]
    assert ids == ["VER", "LEC", "HAM", "track"]
    info, batch = stream(converted, "VER")
    assert (info.driver, info.car, info.colour) == ("Max Verstappen", "Red Bull Racing", "#3671c6")
    names = [c.name for c in info.channels]
    assert list(batch.columns) == names
    for name in ("speed", "rpm", "gear", "throttle", "brake", "x", "y", "z", "lap"):
        assert name in names
        assert next(c for c in info.channels if c.name == name).unit == STANDARD[name].unit
    assert {"drs", "on_track", "car_number"} <= set(names)
    assert np.nanmax(batch.columns["throttle"]) == pytest.approx(1.0)
    assert np.nanmin(batch.columns["throttle"]) == pytest.approx(0.35)
    radius = np.hypot(batch.columns["x"], batch.columns["y"])
    assert np.nanmedian(radius) == pytest.approx(500, rel=0.01)  # 1/10 m → m
    assert set(np.unique(batch.columns["car_number"])) == {1.0}


def test_frames_are_the_real_sample_times(converted: f1.F1Session) -> None:
    """Frame times are exactly the union of car and position sample times: irregular
    ~4 Hz per source (≈8 Hz merged), never a fixed high rate."""
    fake = f1shapes.FakeSession()
    _, batch = stream(converted, "VER")
    car = fake.car_data["1"]["Date"].to_numpy("datetime64[ns]").astype(np.int64)
    pos = fake.pos_data["1"]["Date"].to_numpy("datetime64[ns]").astype(np.int64)
    assert np.array_equal(batch.t_ns, np.union1d(car, pos))
    period = np.diff(batch.t_ns) / 1e9
    assert 0.08 <= np.median(period) <= 0.25
    assert np.std(period) > 0.01  # irregular
    assert 0.2 <= np.median(np.diff(car)) / 1e9 <= 0.26


def test_continuous_channels_interpolate_between_own_samples(converted: f1.F1Session) -> None:
    """At a position-only time, speed lies on the line between the two neighbouring car
    samples; at a car sample time it is exactly that sample."""
    fake = f1shapes.FakeSession()
    _, batch = stream(converted, "VER")
    car = fake.car_data["1"]
    t_car = car["Date"].to_numpy("datetime64[ns]").astype(np.int64)
    speed = car["Speed"].to_numpy(np.float64)
    expected = np.interp(batch.t_ns.astype(float), t_car.astype(float), speed)
    inside = (batch.t_ns >= t_car[0]) & (batch.t_ns <= t_car[-1])
    assert np.allclose(batch.columns["speed"][inside], expected[inside], atol=0.01)
    at_car = np.isin(batch.t_ns, t_car)
    assert np.array_equal(batch.columns["speed"][at_car], speed.astype(np.float32))
    assert np.isnan(batch.columns["speed"][~inside]).all()


def test_no_interpolation_across_a_gap(converted: f1.F1Session) -> None:
    """Inside LEC's 3 s hole in car data the car channels are NaN (continuous and held),
    while positions, which have no hole, stay continuous."""
    _, batch = stream(converted, "LEC")
    t = session_s(batch.t_ns)
    lo, hi = f1shapes.HOLE
    hole = (t > lo + 0.05) & (t < hi - 0.05)
    deep = (t > lo + 1.05) & (t < hi - 0.05)  # held values last at most 1 s
    assert deep.sum() >= 5
    for name in ("speed", "rpm", "throttle"):
        assert np.isnan(batch.columns[name][hole]).all(), name
    for name in ("gear", "brake", "drs"):
        assert np.isnan(batch.columns[name][deep]).all(), name
    assert np.isfinite(batch.columns["x"][deep]).all()
    outside = (t > f1shapes.START) & (t < lo - 0.5)
    assert np.isfinite(batch.columns["speed"][outside]).all()


def test_interpolate_and_hold_limits() -> None:
    """interpolate bridges gaps up to max_gap only; hold keeps a value at most max_gap."""
    ts = np.array([0, 100, 1000], dtype=np.int64)
    vs = np.array([0.0, 10.0, 20.0])
    t = np.array([-5, 0, 50, 100, 500, 1000, 1001], dtype=np.int64)
    got = f1.interpolate(t, ts, vs, max_gap_ns=200)
    assert np.array_equal(got, [np.nan, 0, 5, 10, np.nan, 20, np.nan], equal_nan=True)
    held = f1.hold(t, ts, vs, max_gap_ns=200)
    assert np.array_equal(held, [np.nan, 0, 0, 10, np.nan, 20, 20], equal_nan=True)


def test_lap_channel_counts_completed_laps(converted: f1.F1Session) -> None:
    """The lap channel is 0 until the end of lap 1, then the number of completed laps."""
    _, batch = stream(converted, "VER")
    t = session_s(batch.t_ns)
    lap = batch.columns["lap"]
    start, length = f1shapes.START, f1shapes.LAP
    assert (lap[t < start + length] == 0).all()
    assert (lap[(t > start + length) & (t < start + 2 * length)] == 1).all()
    assert lap[-1] == f1shapes.LAPS


def test_laps_carry_sectors_compound_and_stints(converted: f1.F1Session) -> None:
    """Laps carry times, sectors (None where FastF1 has NaT), compound, stint, tyre life,
    pit flags and the frames inside them."""
    laps = {(lap.stream_id, lap.lap): lap for lap in converted.laps}
    assert len(laps) == 9
    first = laps[("VER", 1)]
    assert first.lap_time == pytest.approx(20.0)
    assert first.sectors == (None, pytest.approx(8.0), pytest.approx(6.0))
    assert (first.compound, first.stint, first.tyre_life) == ("MEDIUM", 1, 3)
    assert first.t0_ns == f1shapes.T0.value + int(f1shapes.START * 1e9)
    assert first.t1_ns - first.t0_ns == 20 * 10**9
    assert 140 <= first.frames <= 200  # ≈8 merged frames per second
    assert laps[("HAM", 2)].pit_in and not laps[("HAM", 2)].pit_out
    out = laps[("HAM", 3)]
    assert (out.pit_out, out.compound, out.stint, out.tyre_life) == (True, "HARD", 2, 1)


def test_track_status_stream(converted: f1.F1Session) -> None:
    """Track status is its own stream with one frame per change, the numeric code."""
    info, batch = stream(converted, "track")
    assert [c.name for c in info.channels] == ["track_status"]
    assert batch.columns["track_status"].tolist() == [1.0, 2.0, 1.0]
    assert session_s(batch.t_ns).tolist() == [0.0, f1shapes.START + 10, f1shapes.START + 15]


def test_driver_without_telemetry_is_warned_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    """A driver without car data is skipped with a warning; the rest converts."""
    with caplog.at_level(logging.WARNING, logger="pitwire.sources.fastf1"):
        got = f1.convert(f1shapes.FakeSession(missing=("44",)))
    assert [info.stream_id for info, _ in got.streams] == ["VER", "LEC", "track"]
    assert any("44" in p and "skipped" in p for p in got.problems)
    assert "44 (HAM) has no car and position data" in caplog.text
    assert not [lap for lap in got.laps if lap.stream_id == "HAM"]


def test_nothing_convertible_is_an_error() -> None:
    """A session without any driver telemetry raises F1DataError, not a traceback."""
    with pytest.raises(f1.F1DataError, match="no driver"):
        f1.convert(f1shapes.FakeSession(missing=("1", "16", "44")))


def test_bad_values_degrade(caplog: pytest.LogCaptureFixture) -> None:
    """Garbage in a lap row or a telemetry column is left out or NaN, never a crash."""
    fake = f1shapes.FakeSession()
    fake.laps.loc[0, "LapNumber"] = np.nan
    fake.car_data["1"]["Speed"] = fake.car_data["1"]["Speed"].astype(object)
    fake.car_data["1"].loc[3, "Speed"] = "n/a"
    fake.track_status = pd.DataFrame({"Time": [], "Status": []})
    with caplog.at_level(logging.WARNING, logger="pitwire.sources.fastf1"):
        got = f1.convert(fake, session_id="custom-id")
    assert got.info.session_id == "custom-id"
    assert len([lap for lap in got.laps if lap.stream_id == "VER"]) == 2
    assert stream(got, "track")[1].n == 0
    assert len(got.problems) == 2


def test_session_id_slugs() -> None:
    """session_id_for names F1 sessions by their short code and slugs the location."""
    assert f1.session_id_for(2024, "São Paulo", "Sprint Qualifying") == "f1-2024-sao-paulo-sq"
    assert f1.session_id_for(2023, "Monza", "FP1") == "f1-2023-monza-fp1"
