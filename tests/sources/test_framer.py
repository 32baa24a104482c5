import math

import numpy as np

from pitwire.model.manifest import Manifest
from pitwire.sources.base import (
    Notice,
    Sample,
    Send,
    SessionChange,
    SessionStarted,
    StreamSeen,
    StreamUpdate,
)
from pitwire.sources.framer import Framer

MANIFEST = Manifest.loads(
    """
[source]
name = "test"
[[field]]
raw = "Speed"
channel = "speed"
scale = 3.6
[[field]]
raw = "Gear"
channel = "gear"
offset = -1
[[field]]
raw = "Boost"
channel = "boost"
unit = "bar"
""",
    origin="test.toml",
)


def _sample(stream: str, t: int, **values: float) -> Sample:
    return Sample(stream, t, values)


def test_samples_become_converted_batches_after_their_stream_update() -> None:
    """A first sample announces its stream, then frames come through the manifest."""
    f = Framer(MANIFEST)
    f.add([_sample("car", 1, Speed=10.0, Gear=2, Boost=0.5), _sample("car", 2, Speed=20.0, Gear=3)])
    items = f.drain()
    assert isinstance(items[0], StreamUpdate)
    assert items[0].info.stream_id == "car"
    assert [c.name for c in items[0].info.channels] == ["speed", "gear", "boost"]
    stream, batch = items[1]
    assert stream == "car"
    assert batch.t_ns.tolist() == [1, 2]
    assert np.allclose(batch.columns["speed"], [36.0, 72.0])
    assert batch.columns["gear"].tolist() == [1.0, 2.0]
    assert batch.columns["boost"][0] == np.float32(0.5) and math.isnan(batch.columns["boost"][1])
    assert f.drain() == []


def test_streams_are_split_and_keep_their_order() -> None:
    """Samples of several cars fed together give one batch per car, each in time order."""
    f = Framer(MANIFEST)
    f.add([_sample(f"car-{i % 3}", i, Speed=float(i)) for i in range(9)])
    batches = [it for it in f.drain() if isinstance(it, tuple)]
    assert [s for s, _ in batches] == ["car-0", "car-1", "car-2"]
    assert batches[1][1].t_ns.tolist() == [1, 4, 7]


def test_driver_change_is_announced_between_frames() -> None:
    """A StreamSeen with a new driver flushes earlier frames, then re-announces the stream."""
    f = Framer(MANIFEST)
    f.add([_sample("car", 1, Speed=1.0), StreamSeen("car", driver="A. Driver", car="GT3")])
    f.add([StreamSeen("car", driver="A. Driver", car="GT3"), _sample("car", 2, Speed=1.0)])
    kinds = [type(it).__name__ if not isinstance(it, tuple) else "batch" for it in f.drain()]
    assert kinds == ["StreamUpdate", "batch", "StreamUpdate", "batch"]
    assert [s.driver for s in f.streams] == ["A. Driver"]


def test_session_start_forgets_streams_and_passes_sends_and_notices() -> None:
    """After a new session the first sample re-announces its stream; sends and notices
    are kept for the transport."""
    f = Framer(MANIFEST)
    f.add([_sample("car", 1, Speed=1.0), SessionStarted("uid-2", track="Monza")])
    f.add([_sample("car", 2, Speed=1.0), Send(b"hi"), Notice("paused")])
    items = f.drain()
    assert isinstance(items[1], tuple)
    assert items[2] == SessionChange("uid-2", "Monza")
    assert isinstance(items[3], StreamUpdate)
    assert f.sends == [b"hi"] and f.notices == ["paused"] and f.samples == 2


def test_the_same_session_again_only_updates_the_track() -> None:
    """A SessionStarted with the current key (its track became known) keeps the streams."""
    f = Framer(MANIFEST)
    f.add([SessionStarted("uid-1"), _sample("car", 1, Speed=1.0)])
    f.add([SessionStarted("uid-1", track="Monza"), _sample("car", 2, Speed=1.0)])
    items = f.drain()
    assert [type(i).__name__ if not isinstance(i, tuple) else "batch" for i in items] == [
        "SessionChange",
        "StreamUpdate",
        "batch",
        "SessionChange",
        "batch",
    ]
    assert items[3] == SessionChange("uid-1", "Monza")
