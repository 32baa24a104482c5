"""The replay clock, driven by wall times given to it (no sleeping)."""

from __future__ import annotations

import pytest

from pitwire.server.clock import ReplayClock

S = 1_000_000_000
START, END = 100 * S, 200 * S


def clock(**kw) -> ReplayClock:  # type: ignore[no-untyped-def]
    return ReplayClock(start_ns=START, end_ns=END, t_ns=kw.pop("t_ns", START), wall_ns=0, **kw)


def test_playing_runs_at_speed_and_pausing_holds():
    """At 2x the clock moves two seconds a second; paused it stands; play resumes there."""
    c = clock(speed=2.0)
    assert c.at(1 * S) == START + 2 * S
    c.pause(1 * S)
    assert c.at(5 * S) == START + 2 * S
    c.play(5 * S)
    assert c.at(6 * S) == START + 4 * S


def test_speed_changes_keep_the_instant():
    """Changing speed never jumps the clock."""
    c = clock()
    c.set_speed(0.1, 10 * S)
    assert c.at(10 * S) == START + 10 * S
    assert c.at(20 * S) == START + 11 * S


def test_seek_and_step_start_new_epochs_and_clamp():
    """Seeks and steps open a new epoch each and stay within the session."""
    c = clock()
    assert c.epoch == 1
    assert c.seek(150 * S, 0) == 2
    assert c.at(0) == 150 * S
    assert c.seek(10 * S, 0) == 3 and c.at(0) == START
    assert c.seek(10_000 * S, 0) == 4 and c.at(0) == END
    c.seek(150 * S, 0)
    assert c.step(-S // 2, 0) == 6
    assert not c.playing and c.at(9 * S) == 150 * S - S // 2


def test_the_end_stops_the_clock_and_play_starts_over():
    """At the end the clock reads the end; play there goes back to the start."""
    c = clock(t_ns=END - S)
    assert c.at(5 * S) == END and c.at_end(5 * S)
    c.play(5 * S)
    assert c.at(5 * S) == START and c.epoch == 2


def test_a_delayed_live_clock_follows_the_wall_clock_by_its_delay():
    """A live clock reads wall - delay, never passes it, and follows it at 1x (its speed
    says so) once there."""
    c = ReplayClock(
        start_ns=0, end_ns=None, t_ns=90 * S, wall_ns=100 * S, delay_ns=10 * S, speed=1.0
    )
    assert c.at(105 * S) == 95 * S
    assert not c.at_end(105 * S)
    c.set_speed(4.0, 105 * S)
    c.seek(80 * S, 105 * S)
    assert c.at(106 * S) == 84 * S
    assert c.at(110 * S) == 100 * S  # caught up with the edge
    assert c.speed == 1.0
    assert c.at(111 * S) == 101 * S  # and moves with it at 1x


def test_a_clock_without_an_end_needs_a_delay():
    """A clock with neither an end nor a delay is refused."""
    with pytest.raises(ValueError, match="delay"):
        ReplayClock(start_ns=0, end_ns=None, t_ns=0, wall_ns=0)
