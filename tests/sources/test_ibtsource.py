import time

import numpy as np
import pytest

from pitwire.model.frames import FrameBatch
from pitwire.sources.base import SessionChange, SourceError, StreamUpdate
from pitwire.sources.ibt import build_ibt, layout_vars
from pitwire.sources.ibtsource import IbtSource
from pitwire.sources.registry import CaptureOptions, make_source

FLOAT, DOUBLE, INT = 4, 5, 2
START = 1_714_550_400  # 2024-05-01 08:00 UTC [s]
VARS = layout_vars(
    [("SessionTime", DOUBLE, 1, "s"), ("Speed", FLOAT, 1, "m/s"), ("Gear", INT), ("Lap", INT)]
)
YAML = """---
WeekendInfo:
 TrackDisplayName: Okayama International Circuit
 SubSessionID: 7
DriverInfo:
 DriverCarIdx: 0
 Drivers:
 - CarIdx: 0
   UserName: Ada Lovelace
   CarScreenName: Mazda MX-5 Cup
...
"""


def make_rows(n: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    print(f"seed={seed}")
    return [
        {
            "SessionTime": 100.0 + i / 60,
            "Speed": float(np.float32(rng.uniform(0, 80))),
            "Gear": int(rng.integers(-1, 7)),
            "Lap": i // 600,
        }
        for i in range(n)
    ]


def _write(tmp_path, rows):  # type: ignore[no-untyped-def]
    path = tmp_path / "session.ibt"
    path.write_bytes(
        build_ibt(VARS, rows, YAML, start_date=START, start_time=100.0, end_time=110.0)
    )
    return path


async def _items(source: IbtSource) -> list:  # type: ignore[type-arg]
    return [item async for item in source]


async def test_an_ibt_file_plays_as_a_session_with_its_driver_and_every_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The file gives a session (its track), the player's stream and all rows in order."""
    rows = make_rows(1500, seed=4)
    source = IbtSource(_write(tmp_path, rows), speed=0, chunk=600)
    items = await _items(source)
    change, update = items[0], items[1]
    assert isinstance(change, SessionChange) and change.track == "Okayama International Circuit"
    assert isinstance(update, StreamUpdate)
    assert (update.info.driver, update.info.car) == ("Ada Lovelace", "Mazda MX-5 Cup")
    batches = [b for _, b in items[2:]]
    assert [b.n for b in batches] == [600, 600, 300]
    frames = FrameBatch.concat(batches)
    speed = np.array([r["Speed"] for r in rows]) * 3.6
    assert np.allclose(frames.columns["speed"], speed, atol=0.01)
    assert frames.t_ns[0] == START * 10**9 and np.all(np.diff(frames.t_ns) > 0)
    assert source.info.track == "Okayama International Circuit"


async def test_playback_keeps_the_recorded_pace_times_speed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """1.5 s of rows at 5x take about 0.3 s."""
    path = _write(tmp_path, make_rows(90, seed=1))
    start = time.monotonic()
    await _items(IbtSource(path, speed=5.0, chunk=6))
    assert 0.25 <= time.monotonic() - start <= 0.6


async def test_a_file_that_is_not_ibt_is_a_source_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A bad file ends the source with a SourceError naming it."""
    bad = tmp_path / "notes.ibt"
    bad.write_bytes(b"hello")
    with pytest.raises(SourceError, match=r"notes\.ibt"):
        await _items(IbtSource(bad))


def test_the_iracing_source_with_ibt_reads_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--source iracing --ibt FILE builds the file source at the --replay-speed pace."""
    path = _write(tmp_path, make_rows(10, seed=2))
    source = make_source(
        "iracing", capture=CaptureOptions(replay_speed=0, decoder_options={"ibt": path})
    )
    assert isinstance(source, IbtSource) and source.speed == 0


async def test_unreadable_session_info_still_plays_the_rows(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    """Damaged session YAML costs the track and driver names, not the data."""
    import logging

    path = tmp_path / "odd.ibt"
    rows = make_rows(30, seed=3)
    path.write_bytes(build_ibt(VARS, rows, "DriverInfo: [1, 2\n  : :", start_date=START))
    with caplog.at_level(logging.WARNING):
        items = await _items(IbtSource(path, speed=0))
    assert isinstance(items[0], SessionChange) and items[0].track == ""
    assert isinstance(items[1], StreamUpdate) and items[1].info.driver == ""
    assert sum(b.n for _, b in items[2:]) == 30
    assert "no track or driver names" in caplog.text


async def test_paced_batches_are_short_and_never_ahead_of_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """At 1x a 60 Hz file comes in ~0.1 s batches, each handed over once its last row is due."""
    path = _write(tmp_path, make_rows(60, seed=6))
    source = IbtSource(path, speed=1.0)
    start = time.monotonic()
    first_ns = None
    sizes = []
    async for item in source:
        if isinstance(item, tuple):
            batch = item[1]
            first_ns = first_ns if first_ns is not None else int(batch.t_ns[0])
            assert time.monotonic() - start >= (batch.t1_ns - first_ns) / 1e9 - 0.005
            sizes.append(batch.n)
    assert sizes == [6] * 10
