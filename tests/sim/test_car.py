import math
from dataclasses import dataclass

import numpy as np
import pytest

from pitwire.sim.car import CarParams, CarState, make_cars
from pitwire.sim.track import SIM_RING, Arc, G, Straight, Track, drive_accel, left

DT = 1 / 60
SECONDS = 200.0  # every car finishes its out lap and one full lap
FIELDS = ("v", "a", "distance", "lap_distance", "lap", "lap_time", "last_lap_time", "x", "y")
FIELDS += ("curvature", "gear", "rpm", "throttle", "brake", "clutch", "steer", "g_lat", "g_lon")
FIELDS += ("fuel", "tyre_temp", "tyre_press", "position")


@dataclass
class Run:
    """Every state column of a field, one row per step: ``run.v[step, car]``."""

    state: CarState
    cols: dict[str, np.ndarray]

    def __getattr__(self, name: str) -> np.ndarray:
        return self.cols[name]


@pytest.fixture(scope="module")
def run() -> Run:
    state = CarState(SIM_RING, make_cars(6, seed=7), DT, seed=7)
    rows: dict[str, list[np.ndarray]] = {f: [] for f in FIELDS}
    for _ in range(round(SECONDS / DT)):
        state.step()
        for f in FIELDS:
            rows[f].append(np.copy(getattr(state, f)))
    return Run(state, {f: np.array(r) for f, r in rows.items()})


def _limits(state: CarState) -> tuple[np.ndarray, np.ndarray]:
    mu = np.array([p.mu for p in state.params])
    brake = np.array([p.max_brake_decel for p in state.params])
    return mu, brake


def test_speed_never_exceeds_the_grip_limit(run: Run) -> None:
    """No car goes faster than the tyres allow in a corner: v <= sqrt(mu g / |k|)."""
    mu, _ = _limits(run.state)
    skill = np.array([p.skill for p in run.state.params])
    with np.errstate(divide="ignore"):
        limit = np.sqrt(mu * G / np.abs(run.curvature))
        driven = np.sqrt(mu * skill * G / np.abs(run.curvature))
    assert np.all(run.v <= limit)
    assert np.all(run.v <= driven * (1 + 1e-9))  # and only as hard as the driver dares
    assert np.all(np.abs(run.g_lat) <= mu)


def test_accelerations_stay_within_engine_and_brake_limits(run: Run) -> None:
    """Each step accelerates no more than the engine allows and brakes no more than the brakes."""
    _, brake = _limits(run.state)
    v0 = np.vstack([np.zeros((1, run.v.shape[1])), run.v[:-1]])
    k0 = np.vstack([run.state.track.at(-8.0 * np.arange(6) - 10)[3], run.curvature[:-1]])
    hw = [drive_accel(v0[:, i], k0[:, i], p) for i, p in enumerate(run.state.params)]
    assert np.all(run.a <= np.array(hw).T + 1e-9)
    assert np.all(run.a >= -brake - 1e-9)
    np.testing.assert_allclose(run.g_lon, run.a / G)


def test_braking_happens_before_the_hairpin_not_in_it(run: Run) -> None:
    """Cars brake in the 150 m before the hairpin and reach it slow, then hold speed inside."""
    starts = SIM_RING.segment_starts()
    start, hairpin = min(
        (
            (s, seg)
            for s, seg in zip(starts, SIM_RING.segments, strict=True)
            if isinstance(seg, Arc)
        ),
        key=lambda sa: sa[1].radius,
    )
    full_lap = run.lap == 1
    inside = full_lap & (run.lap_distance > start + 1) & (run.lap_distance < start + hairpin.length)
    approach = full_lap & (run.lap_distance > start - 150) & (run.lap_distance < start)
    assert np.all(run.brake[inside] == 0)
    for car in range(run.v.shape[1]):
        assert np.ptp(run.v[:, car][inside[:, car]]) < 0.05
    assert run.brake[approach].max() > 0.9
    fast = full_lap & (run.lap_distance > start - 300) & (run.lap_distance < start - 250)
    assert run.v[fast].min() > 3 * run.v[inside].max()


def test_rpm_is_speed_times_gear_ratio_once_the_clutch_is_in(run: Run) -> None:
    """With the clutch engaged, rpm = speed x overall ratio of the gear, within idle..redline."""
    p = run.state.params[0]
    k = p.rpm_per_speed()
    engaged = run.clutch[:, 0] == 0
    gear = run.gear[engaged, 0]
    expected = np.clip(run.v[engaged, 0] * k[gear - 1], p.idle_rpm, p.redline_rpm)
    np.testing.assert_allclose(run.rpm[engaged, 0], expected)
    assert np.all((run.rpm >= p.idle_rpm) & (run.rpm <= p.redline_rpm))
    assert set(np.unique(run.gear)) <= set(range(1, len(p.gear_ratios) + 1))


def test_gear_rises_with_speed(run: Run) -> None:
    """Higher gears are used at higher speeds: mean speed per gear rises with the gear."""
    gear, v = run.gear[:, 0], run.v[:, 0]
    means = [v[gear == g].mean() for g in np.unique(gear)]
    assert len(means) == len(run.state.params[0].gear_ratios)
    assert means == sorted(means)
    assert np.corrcoef(gear, v)[0, 1] > 0.9


def test_launch_slips_the_clutch_then_engages_it(run: Run) -> None:
    """From rest each car launches in first gear with the clutch slipping, then fully engages."""
    assert np.all(run.clutch[0] > 0.9)
    assert np.all(run.gear[0] == 1)
    assert np.all(run.rpm[0] > run.state.params[0].idle_rpm)
    engaged_by = np.argmax(run.clutch == 0, axis=0) * DT
    assert np.all((engaged_by > 0.5) & (engaged_by < 5))
    after = np.arange(len(run.clutch))[:, None] > engaged_by / DT
    assert np.all(run.clutch[after] == 0)


def test_throttle_is_high_on_straights(run: Run) -> None:
    """Flat out down the main straight: throttle near 1 while the car still accelerates."""
    straight = (run.lap >= 1) & (run.lap_distance > 100) & (run.lap_distance < 900)
    assert np.median(run.throttle[straight]) > 0.99
    assert run.throttle[straight & (run.a > 0)].min() > 0.75
    assert np.all(run.brake[straight] == 0)


def test_brake_only_while_decelerating(run: Run) -> None:
    """The brake pedal is pressed only while the car slows, never together with the throttle."""
    braking = run.brake > 0
    assert braking.any()
    assert np.all(run.a[braking] < 0)
    assert np.all(run.throttle[braking] == 0)
    assert np.all(run.throttle[run.a > 0.5] > 0)


def test_steer_sign_matches_curvature(run: Run) -> None:
    """Left turns steer left (positive), right turns right, straights straight ahead."""
    assert np.array_equal(np.sign(run.steer), np.sign(run.curvature))
    p = run.state.params[0]
    expected = np.arctan(p.wheelbase * run.curvature[:, 0]) * p.steering_ratio
    np.testing.assert_allclose(run.steer[:, 0], expected)
    assert np.abs(run.steer).max() < 2 * math.pi


def test_fuel_never_increases_and_drops_over_a_lap(run: Run) -> None:
    """Fuel only goes down, by a plausible 1-4 L per lap."""
    assert np.all(np.diff(run.fuel, axis=0) < 0)
    crossings = np.diff(run.lap, axis=0) > 0
    for car in range(run.fuel.shape[1]):
        at = np.flatnonzero(crossings[:, car])
        per_lap = run.fuel[at[0], car] - run.fuel[at[1], car]
        assert 1.0 < per_lap < 4.0


def test_lap_counter_increments_after_one_track_length(run: Run) -> None:
    """The lap count goes up when the car's distance passes each multiple of the lap length."""
    np.testing.assert_array_equal(run.lap, np.maximum(run.distance // SIM_RING.length, 0))
    np.testing.assert_allclose(run.lap_distance, run.distance - run.lap * SIM_RING.length)
    assert np.all(run.lap[-1] == 2)
    assert np.all((run.lap_distance >= -100) & (run.lap_distance < SIM_RING.length))


def test_lap_time_resets_at_each_lap(run: Run) -> None:
    """lap_time counts up within a lap, drops below one step at the line, and the time it
    reached is kept as last_lap_time."""
    for car in range(run.lap.shape[1]):
        at = np.flatnonzero(np.diff(run.lap[:, car]) > 0) + 1
        assert len(at) == 2
        steps = np.diff(run.lap_time[:, car])
        assert np.all(np.delete(steps, at - 1) == pytest.approx(DT))
        assert np.all(run.lap_time[at, car] <= DT)
        for i in at:
            assert run.last_lap_time[i, car] == pytest.approx(
                run.lap_time[i - 1, car] + DT - run.lap_time[i, car]
            )
        full_lap = run.last_lap_time[at[1], car]
        assert full_lap == pytest.approx((at[1] - at[0]) * DT, abs=DT)
        assert 75 < full_lap < 100


def test_xy_lie_on_the_centreline(run: Run) -> None:
    """Every reported position is on the track: within a sample spacing of the centreline."""
    pts = np.stack([run.x[::37].ravel(), run.y[::37].ravel()], axis=1)
    centre = np.stack([SIM_RING.x, SIM_RING.y], axis=1)
    gaps = [np.hypot(*(centre - p).T).min() for p in pts]
    assert max(gaps) <= SIM_RING.ds


def test_grid_is_staggered_and_cars_spread_out(run: Run) -> None:
    """Cars leave a staggered grid behind the line in skill order and the gaps grow."""
    start = -(10.0 + 8.0 * np.arange(6))
    np.testing.assert_allclose(run.distance[0], start)  # nobody moved on the first step
    assert np.all(np.diff(run.distance[-1]) < 0)
    assert np.all(np.diff(run.distance[-1]) < np.diff(start))
    np.testing.assert_array_equal(run.position[-1], np.arange(1, 7))


def test_tyres_warm_up_and_pressure_follows_temperature(run: Run) -> None:
    """Tyres settle in a working window after a lap and pressure rises with temperature."""
    late = run.tyre_temp[-600:]
    assert 65 < late.mean() < 110
    assert late.max() < 130
    temp, press = run.tyre_temp[:, 0, 0], run.tyre_press[:, 0, 0]
    order = np.argsort(temp)
    assert np.all(np.diff(press[order]) >= -1e-9)
    assert 150 < press[-600:].mean() < 220


def test_make_cars_is_deterministic_for_a_seed() -> None:
    """The same seed gives the same field; another seed gives different drivers or skills."""
    assert make_cars(20, seed=5) == make_cars(20, seed=5)
    assert make_cars(20, seed=5) != make_cars(20, seed=6)
    cars = make_cars(20, seed=5)
    assert len({c.driver for c in cars}) == 20
    assert len({c.number for c in cars}) == 20
    skills = [c.skill for c in cars]
    assert skills == sorted(skills, reverse=True)
    assert len({c.driver for c in make_cars(100, seed=5)}) == 100


def test_car_params_reject_implausible_values() -> None:
    """Bad parameters raise ValueError rather than simulating nonsense."""
    with pytest.raises(ValueError, match="brake_skill"):
        CarParams(brake_skill=1.0)
    with pytest.raises(ValueError, match="gear_ratios"):
        CarParams(gear_ratios=(2.0, 2.5))
    with pytest.raises(ValueError, match="cars"):
        make_cars(0, seed=1)
    with pytest.raises(ValueError, match="dt"):
        CarState(SIM_RING, make_cars(1, seed=1), 0.0)


def test_a_single_car_corners_at_its_grip_use() -> None:
    """On an oval a car takes the bends at sqrt(mu x skill x g r), give or take its lap pace."""
    oval = Track("oval", [Straight(200), left(100, 180), Straight(200), left(100, 180)])
    car = CarParams()
    state = CarState(oval, [car], DT)
    on_arc = []
    for _ in range(round(60 / DT)):
        state.step()
        if state.lap[0] >= 1 and state.curvature[0] != 0:
            on_arc.append(state.v[0])
    limit = math.sqrt(car.mu * car.skill * G * 100)
    assert len(on_arc) > 100
    assert limit * 0.99 < min(on_arc) <= max(on_arc) <= limit * (1 + 1e-9)
