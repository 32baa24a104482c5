import math

import numpy as np
import pytest

from pitwire.sim.car import CarParams
from pitwire.sim.track import (
    SIM_RING,
    Arc,
    G,
    Straight,
    Track,
    close_loop,
    drive_accel,
    left,
    right,
    speed_profile,
)

CAR = CarParams()


def _arcs(track: Track) -> list[tuple[float, Arc]]:
    starts = track.segment_starts()
    return [
        (float(s), seg)
        for s, seg in zip(starts, track.segments, strict=True)
        if isinstance(seg, Arc)
    ]


def test_default_track_closes() -> None:
    """The end of the last segment of sim-ring meets the start line with the start heading."""
    x0, y0, h0, _ = SIM_RING.at(0.0)
    x1, y1, h1, _ = SIM_RING.at(SIM_RING.length - 1e-9)
    assert SIM_RING.closure_error < 1e-6
    assert math.hypot(x1 - x0, y1 - y0) < 1e-6
    assert abs(math.remainder(float(h1 - h0), 2 * math.pi)) < 1e-9


def test_default_track_is_a_plausible_circuit() -> None:
    """sim-ring is 3-5 km with a hairpin, medium corners, fast sweepers and a long straight."""
    radii = [seg.radius for _, seg in _arcs(SIM_RING)]
    straights = [seg.length for seg in SIM_RING.segments if isinstance(seg, Straight)]
    assert SIM_RING.name == "sim-ring"
    assert 3000 < SIM_RING.length < 5000
    assert min(radii) <= 25
    assert any(50 <= r <= 100 for r in radii)
    assert any(200 <= r <= 400 for r in radii)
    assert max(straights) > 800


def test_length_matches_segment_sum() -> None:
    """The lap length is the sum of the segment lengths and the samples tile it evenly."""
    assert SIM_RING.length == pytest.approx(sum(seg.length for seg in SIM_RING.segments))
    assert len(SIM_RING.s) * SIM_RING.ds == pytest.approx(SIM_RING.length)
    assert 0.5 < SIM_RING.ds <= 1.5


def test_arc_curvature_is_inverse_radius() -> None:
    """Inside every arc the curvature is 1/r, positive for left turns and negative for right."""
    for start, arc in _arcs(SIM_RING):
        *_, k = SIM_RING.at(start + 0.5 * arc.length)
        sign = 1.0 if arc.side == "left" else -1.0
        assert k == pytest.approx(sign / arc.radius)


def test_straights_have_zero_curvature_and_fixed_heading() -> None:
    """Along a straight the curvature is 0 and the heading does not change."""
    starts = SIM_RING.segment_starts()
    for start, seg in zip(starts, SIM_RING.segments, strict=True):
        if isinstance(seg, Straight):
            d = start + np.linspace(0.1, seg.length - 0.1, 7)
            _, _, h, k = SIM_RING.at(d)
            assert np.all(k == 0)
            assert np.ptp(np.unwrap(h)) < 1e-12


def test_samples_lie_one_step_apart_along_the_heading() -> None:
    """Consecutive centreline samples are ~ds apart, in the direction of the heading."""
    dx = np.diff(SIM_RING.x, append=SIM_RING.x[0])
    dy = np.diff(SIM_RING.y, append=SIM_RING.y[0])
    step = np.hypot(dx, dy)
    assert np.all(step <= SIM_RING.ds + 1e-9)
    assert np.all(step > 0.99 * SIM_RING.ds)
    mid_heading = np.arctan2(dy, dx)
    err = np.abs(np.remainder(mid_heading - SIM_RING.heading + np.pi, 2 * np.pi) - np.pi)
    assert err.max() < 0.1  # half the turn over one sample in the tightest corner


def test_at_wraps_around_and_is_vectorized() -> None:
    """Track.at takes arrays and gives the same point one lap earlier or later."""
    d = np.array([0.0, 123.4, 2000.0, SIM_RING.length - 0.5])
    here = np.array(SIM_RING.at(d))
    for shift in (-SIM_RING.length, SIM_RING.length, 3 * SIM_RING.length):
        np.testing.assert_allclose(np.array(SIM_RING.at(d + shift)), here, atol=1e-6)
    assert here.shape == (4, 4)


def test_close_loop_makes_an_open_layout_close() -> None:
    """close_loop fixes two straights so a layout whose turns add up to 360° closes exactly."""
    layout = [Straight(400), right(50, 90), Straight(150), right(50, 90), Straight(300)]
    layout += [right(80, 90), Straight(200), right(30, 90)]
    with pytest.raises(ValueError, match="does not close"):
        Track("open", layout)
    track = Track("closed", close_loop(layout, stretch=(0, 2)))
    assert track.closure_error < 1e-9


def test_close_loop_refuses_parallel_straights() -> None:
    """Two parallel straights cannot close a gap in every direction."""
    layout = [Straight(100), left(50, 180), Straight(100), left(50, 180)]
    with pytest.raises(ValueError, match="non-parallel"):
        close_loop(layout, stretch=(0, 2))


def test_track_rejects_a_heading_that_does_not_close() -> None:
    """A layout that returns to the start at the wrong heading is not a closed track."""
    triangle = [Straight(100), left(2, 120), Straight(100), left(2, 120), Straight(100)]
    closed_position = close_loop(triangle, stretch=(0, 2))  # ends at the start, heading 240°
    with pytest.raises(ValueError, match="heading off"):
        Track("triangle", closed_position)


def test_corner_speed_limit_is_lower_for_tighter_radius() -> None:
    """On a circle the profile is the grip limit sqrt(mu g r), so a tighter circle is slower."""
    speeds = []
    for r in (15.0, 50.0, 150.0):
        circle = Track("circle", [left(r, 180), left(r, 180)])
        v = speed_profile(circle, CAR)
        np.testing.assert_allclose(v, min(math.sqrt(CAR.mu * G * r), CAR.vmax))
        speeds.append(v[0])
    assert speeds == sorted(speeds)
    assert speeds[0] < speeds[1] < speeds[2]


def test_profile_never_exceeds_the_grip_limit() -> None:
    """The profile, interpolated anywhere between samples, stays under sqrt(mu g / |k|)."""
    v = speed_profile(SIM_RING, CAR)
    d = np.linspace(0, SIM_RING.length, 200_001)[:-1]
    *_, k = SIM_RING.at(d)
    v_at = np.interp(d, np.append(SIM_RING.s, SIM_RING.length), np.append(v, v[0]))
    with np.errstate(divide="ignore"):
        limit = np.sqrt(CAR.mu * G / np.abs(k))
    assert np.all(v_at <= limit * (1 + 1e-12))
    assert np.all(v <= CAR.vmax)


def test_profile_accelerates_and_brakes_within_the_car_limits() -> None:
    """Between samples the profile accelerates at most as the engine allows and brakes at most
    at max_brake_decel, including across the start line."""
    v = speed_profile(SIM_RING, CAR)
    a = (np.roll(v, -1) ** 2 - v**2) / (2 * SIM_RING.ds)
    assert np.all(a <= drive_accel(v, SIM_RING.curvature, CAR) + 1e-9)
    assert np.all(a >= -CAR.max_brake_decel - 1e-9)
    assert a.max() > 5.0  # it does accelerate hard out of slow corners
    assert a.min() < -0.99 * CAR.max_brake_decel  # and brakes at the limit


def test_profile_brakes_before_the_hairpin_not_in_it() -> None:
    """Speed falls over the 100 m before the hairpin and is constant through it."""
    v = speed_profile(SIM_RING, CAR)
    start, hairpin = min(_arcs(SIM_RING), key=lambda sa: sa[1].radius)
    ds = SIM_RING.ds
    before = v[int((start - 100) / ds) : int(start / ds)]
    inside = v[int(start / ds) + 1 : int((start + hairpin.length) / ds) - 1]
    assert np.all(np.diff(before) < 0)
    assert before[0] > 2 * inside.max()
    assert np.ptp(inside) < 1e-9
    assert inside[0] == pytest.approx(math.sqrt(CAR.mu * G * hairpin.radius))


def test_segments_reject_bad_dimensions() -> None:
    """Segments with non-positive sizes and arcs with an unknown side raise ValueError."""
    with pytest.raises(ValueError, match="length"):
        Straight(0)
    with pytest.raises(ValueError, match="radius"):
        Arc(-5, 1.0, "left")
    with pytest.raises(ValueError, match="side"):
        Arc(5, 1.0, "up")  # type: ignore[arg-type]
