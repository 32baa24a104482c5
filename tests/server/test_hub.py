"""Tests of live fan-out (pitwire.server.hub) with recording viewers and a manual clock."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from pitwire.model.channels import STANDARD, ChannelSet
from pitwire.protocol import frames, messages
from pitwire.protocol.messages import Subscribe
from pitwire.server.hub import Hub
from support import car_batch, car_channels

SESSION = "s1"


class FakeViewer:
    """Records what the hub offers and the control messages it queues."""

    def __init__(self) -> None:
        self.offers: list[tuple[tuple[int, int], object, int]] = []
        self.controls: list[dict] = []

    def offer(self, slot: tuple[int, int], payload: object, recv_ns: int) -> None:
        self.offers.append((slot, payload, recv_ns))

    def control(self, text: str) -> None:
        self.controls.append(json.loads(text))

    def ops(self) -> list[str]:
        return [c["op"] for c in self.controls]

    def data(self) -> list[bytes | str]:
        return [raw(p) for _, p, _ in self.offers]

    def frames(self) -> list[frames.DataFrame]:
        return [frames.parse(d) for d in self.data()]


def raw(payload: object) -> bytes | str:
    """The encoded message inside what the hub offered."""
    return payload.data if hasattr(payload, "data") else payload  # type: ignore[attr-defined,return-value]


class Timers:
    """A manual clock and call_later: timers run only when ``advance`` passes their time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.scheduled: list[tuple[float, Callable[[], None]]] = []

    def clock(self) -> float:
        return self.now

    def call_later(self, delay: float, fn: Callable[[], None]) -> object:
        self.scheduled.append((self.now + delay, fn))
        return object()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self.scheduled if t[0] <= self.now]
        self.scheduled = [t for t in self.scheduled if t[0] > self.now]
        for _, fn in due:
            fn()


@pytest.fixture
def timers() -> Timers:
    return Timers()


@pytest.fixture
def hub(timers: Timers) -> Hub:
    """A hub with one session holding car-1 (speed, rpm, gear, lap, packet_id)."""
    h = Hub(timers.call_later, clock=timers.clock)
    h.add_stream(SESSION, "car-1", car_channels(), driver="A", car="GT3", track="t", source="x")
    return h


def ids(hub: Hub, *names: str) -> list[int]:
    return [hub.sessions[SESSION].channel_ids[n] for n in names]


def subscribe(hub: Hub, viewer: FakeViewer, sid: int = 1, **kw: object) -> messages.Subscribed:
    hub.attach(SESSION, viewer)
    return hub.subscribe(SESSION, viewer, Subscribe(id=sid, **kw))  # type: ignore[arg-type]


def test_attach_sends_the_sessions_advertise(hub):
    """A binary viewer that attaches gets the session's advertise with its streams and
    channel table."""
    viewer = FakeViewer()
    hub.attach(SESSION, viewer)
    [adv] = viewer.controls
    assert adv["op"] == "advertise" and adv["session"] == SESSION
    assert (adv["track"], adv["source"]) == ("t", "x")
    assert [(s["id"], s["stream"], s["driver"]) for s in adv["streams"]] == [(1, "car-1", "A")]
    assert [c["name"] for c in adv["channels"]] == list(car_channels())


def test_one_encode_per_group_shared_by_every_member(hub, monkeypatch):
    """Viewers with the same selection share a group: each publish is encoded once and the
    same object is offered to every member."""
    calls = []
    real = frames.serialize

    def counting(**kw):  # type: ignore[no-untyped-def]
        calls.append(kw["group"])
        return real(**kw)

    monkeypatch.setattr(frames, "serialize", counting)
    viewers = [FakeViewer() for _ in range(5)]
    groups = {subscribe(hub, v).groups[0].group for v in viewers}
    assert len(groups) == 1
    gid = groups.pop()
    hub.publish(SESSION, "car-1", 0, car_batch(0, 10), recv_ns=123)
    assert len(calls) == 1
    payloads = [v.offers[0][1] for v in viewers]
    assert all(p is payloads[0] for p in payloads)
    assert all(v.offers[0][0] == (1, gid) and v.offers[0][2] == 123 for v in viewers)
    assert hub.offers == 5 and hub.published_frames == 10


def test_published_frames_carry_the_group_seq_and_values(hub):
    """A group's frame carries its group id, the batch's seq, times and every selected
    column with the published values."""
    viewer = FakeViewer()
    [group] = subscribe(hub, viewer).groups
    batch = car_batch(40, 10)
    hub.publish(SESSION, "car-1", 40, batch, recv_ns=0)
    [df] = viewer.frames()
    assert (df.group, df.seq, df.n) == (group.group, 40, 10)
    assert list(df.columns) == group.channels == ids(hub, *car_channels())
    np.testing.assert_array_equal(df.t_ns(), batch.t_ns)
    np.testing.assert_array_equal(df.columns[ids(hub, "rpm")[0]], batch.columns["rpm"])


def test_different_channel_selections_get_different_groups(hub):
    """Viewers choosing different channels are in different groups and each gets only its
    channels, in the stream's order."""
    a, b, c = FakeViewer(), FakeViewer(), FakeViewer()
    speed, rpm = ids(hub, "speed", "rpm")
    [ga] = subscribe(hub, a, channels=[rpm, speed]).groups
    [gb] = subscribe(hub, b, channels=[speed]).groups
    [gc] = subscribe(hub, c, channels=[speed], maxRate=5.0).groups
    assert len({ga.group, gb.group, gc.group}) == 3
    assert ga.channels == [speed, rpm] and gb.channels == [speed]
    hub.publish(SESSION, "car-1", 0, car_batch(0, 3), recv_ns=0)
    assert list(a.frames()[0].columns) == [speed, rpm]
    assert list(b.frames()[0].columns) == [speed]
    assert a.data()[0] != b.data()[0]


def test_stream_selection_limits_what_a_viewer_gets(hub):
    """A subscription to some streams gets data of those streams only."""
    hub.add_stream(SESSION, "car-2", car_channels())
    only2, every = FakeViewer(), FakeViewer()
    sub = subscribe(hub, only2, streams=[2])
    assert [g.stream for g in sub.groups] == [2]
    assert [g.stream for g in subscribe(hub, every).groups] == [1, 2]
    hub.publish(SESSION, "car-1", 0, car_batch(0, 3), recv_ns=0)
    hub.publish(SESSION, "car-2", 0, car_batch(0, 4), recv_ns=0)
    assert [f.n for f in only2.frames()] == [4]
    assert [f.n for f in every.frames()] == [3, 4]


def test_add_stream_after_an_all_streams_subscribe_sends_advertise_and_subscribed(hub):
    """A stream added after a subscription to all streams is advertised and joined: the
    viewer gets advertise then subscribed with the new group, and receives its data."""
    viewer = FakeViewer()
    subscribe(hub, viewer)
    viewer.controls.clear()
    hub.add_stream(SESSION, "car-2", car_channels(), driver="B")
    assert viewer.ops() == ["advertise", "subscribed"]
    adv, subd = viewer.controls
    assert [(s["id"], s["stream"]) for s in adv["streams"]] == [(2, "car-2")]
    assert subd["id"] == 1
    [group] = subd["groups"]
    assert group["stream"] == 2
    hub.publish(SESSION, "car-2", 0, car_batch(0, 2), recv_ns=0)
    assert [f.group for f in viewer.frames()] == [group["group"]]


def test_add_stream_does_not_join_subscriptions_to_other_streams(hub):
    """A subscription naming other streams gets the advertise but no new group."""
    viewer = FakeViewer()
    subscribe(hub, viewer, streams=[1])
    viewer.controls.clear()
    hub.add_stream(SESSION, "car-2", car_channels())
    assert viewer.ops() == ["advertise"]


def test_subscribe_before_any_stream_joins_streams_as_they_come(timers):
    """An all-streams subscription made before any stream exists joins each new stream."""
    hub = Hub(timers.call_later, clock=timers.clock)
    viewer = FakeViewer()
    hub.attach("empty", viewer)
    assert hub.subscribe("empty", viewer, Subscribe(id=3)).groups == []
    hub.add_stream("empty", "car-1", car_channels())
    assert viewer.ops() == ["advertise", "advertise", "subscribed"]
    assert viewer.controls[-1]["id"] == 3


def test_re_adding_a_stream_with_the_same_channels_is_silent(hub):
    """Registering a known stream again with the same channels sends nothing."""
    viewer = FakeViewer()
    subscribe(hub, viewer)
    viewer.controls.clear()
    hub.add_stream(SESSION, "car-1", car_channels())
    assert viewer.controls == []


def test_a_driver_learned_later_is_advertised_to_viewers(hub):
    """Re-adding a stream with a new driver/car sends viewers an advertise naming them."""
    viewer = FakeViewer()
    subscribe(hub, viewer)
    viewer.controls.clear()
    hub.add_stream(SESSION, "car-1", car_channels(), driver="Alice", car="Ferrari")
    assert viewer.ops() == ["advertise"]
    [stream] = viewer.controls[0]["streams"]
    assert (stream["stream"], stream["driver"], stream["car"]) == ("car-1", "Alice", "Ferrari")
    hub.add_stream(SESSION, "car-1", car_channels())  # no driver given: nothing changes
    assert viewer.ops() == ["advertise"]


def test_extending_a_stream_moves_all_channel_subscribers_to_one_new_group(hub):
    """A stream that gains a channel is advertised again; an all-channels subscriber then gets
    each frame once, in one group carrying the new channel too."""
    viewer = FakeViewer()
    [old] = subscribe(hub, viewer).groups
    viewer.controls.clear()
    more = car_channels().merged([STANDARD["throttle"]])
    hub.add_stream(SESSION, "car-1", more)
    assert viewer.ops() == ["advertise", "subscribed"]
    [new] = viewer.controls[1]["groups"]
    assert new["channels"] == ids(hub, *more)
    batch = car_batch(0, 3)
    batch.columns["throttle"] = np.zeros(3, np.float32)
    hub.publish(SESSION, "car-1", 0, batch, recv_ns=0)
    assert [f.group for f in viewer.frames()] == [new["group"]]
    assert new["group"] != old.group


def test_extending_a_stream_keeps_a_filtered_subscriber_in_its_group(hub):
    """A subscriber whose channel selection a new channel does not change stays in its group
    and still gets each frame once."""
    viewer = FakeViewer()
    [group] = subscribe(hub, viewer, channels=ids(hub, "speed")).groups
    hub.add_stream(SESSION, "car-1", car_channels().merged([STANDARD["throttle"]]))
    batch = car_batch(0, 3)
    batch.columns["throttle"] = np.zeros(3, np.float32)
    hub.publish(SESSION, "car-1", 0, batch, recv_ns=0)
    assert [f.group for f in viewer.frames()] == [group.group]
    hub.unsubscribe(SESSION, viewer, 1)
    assert hub.sessions[SESSION].groups == {}


def test_resubscribing_with_the_same_id_replaces_the_subscription(hub):
    """A subscribe reusing an id replaces the earlier one instead of adding to it."""
    viewer = FakeViewer()
    speed = ids(hub, "speed")
    subscribe(hub, viewer, sid=1)
    [group] = hub.subscribe(SESSION, viewer, Subscribe(id=1, channels=speed)).groups
    hub.publish(SESSION, "car-1", 0, car_batch(0, 2), recv_ns=0)
    assert [f.group for f in viewer.frames()] == [group.group]
    assert len(hub.sessions[SESSION].groups) == 1


def test_two_subscriptions_of_one_viewer_get_their_own_slots(hub):
    """One viewer with two subscriptions in the same group gets the data once per
    subscription slot, the same payload."""
    viewer = FakeViewer()
    subscribe(hub, viewer, sid=1)
    hub.subscribe(SESSION, viewer, Subscribe(id=2))
    hub.publish(SESSION, "car-1", 0, car_batch(0, 2), recv_ns=0)
    slots = sorted(slot for slot, _, _ in viewer.offers)
    assert [s for s, _ in slots] == [1, 2]
    assert viewer.offers[0][1] is viewer.offers[1][1]


def test_max_rate_conflates_publishes_into_one_frame_per_period(hub, timers):
    """With maxRate, the first batch goes out at once; batches arriving within 1/rate are
    gathered and sent as one frame with all of them, when the timer fires."""
    viewer = FakeViewer()
    subscribe(hub, viewer, maxRate=10.0)
    hub.publish(SESSION, "car-1", 0, car_batch(0, 5), recv_ns=1)
    assert [(f.seq, f.n) for f in viewer.frames()] == [(0, 5)]
    for i in range(1, 4):
        timers.advance(0.02)
        hub.publish(SESSION, "car-1", i * 5, car_batch(i * 5, 5), recv_ns=100 + i)
    assert len(viewer.offers) == 1
    assert len(timers.scheduled) == 1
    assert timers.scheduled[0][0] == pytest.approx(1000.1)
    timers.advance(0.05)
    assert len(viewer.offers) == 2
    df = viewer.frames()[1]
    assert (df.seq, df.n) == (5, 15)
    np.testing.assert_array_equal(df.t_ns(), car_batch(5, 15).t_ns)
    np.testing.assert_array_equal(df.columns[ids(hub, "rpm")[0]], car_batch(5, 15).columns["rpm"])
    assert viewer.offers[1][2] == 101  # the first gathered batch's receive time


def test_max_rate_sends_at_once_when_the_period_has_passed(hub, timers):
    """A publish arriving after a full 1/rate since the last frame is sent immediately."""
    viewer = FakeViewer()
    subscribe(hub, viewer, maxRate=10.0)
    hub.publish(SESSION, "car-1", 0, car_batch(0, 1), recv_ns=0)
    timers.advance(0.2)
    hub.publish(SESSION, "car-1", 1, car_batch(1, 1), recv_ns=0)
    assert [f.seq for f in viewer.frames()] == [0, 1]
    assert timers.scheduled == []


def test_max_rate_timer_after_everyone_left_sends_nothing(hub, timers):
    """A conflation timer firing after the group's last viewer left offers nothing."""
    viewer = FakeViewer()
    subscribe(hub, viewer, maxRate=10.0)
    hub.publish(SESSION, "car-1", 0, car_batch(0, 1), recv_ns=0)
    hub.publish(SESSION, "car-1", 1, car_batch(1, 1), recv_ns=0)
    hub.detach(SESSION, viewer)
    timers.advance(1.0)
    assert len(viewer.offers) == 1


def test_unsubscribe_removes_the_group(hub):
    """After unsubscribe the viewer gets nothing and a group nobody uses is gone."""
    a, b = FakeViewer(), FakeViewer()
    subscribe(hub, a)
    subscribe(hub, b)
    hub.unsubscribe(SESSION, a, 1)
    assert len(hub.sessions[SESSION].groups) == 1
    hub.publish(SESSION, "car-1", 0, car_batch(0, 2), recv_ns=0)
    assert (len(a.offers), len(b.offers)) == (0, 1)
    hub.unsubscribe(SESSION, b, 1)
    assert hub.sessions[SESSION].groups == {}
    hub.unsubscribe("no-such-session", b, 1)


def test_detach_removes_the_viewer_and_its_groups(hub):
    """A detached viewer gets no more data and its groups are removed."""
    viewer = FakeViewer()
    subscribe(hub, viewer, sid=1)
    hub.subscribe(SESSION, viewer, Subscribe(id=2, channels=ids(hub, "speed")))
    hub.attach_json(SESSION, viewer, None)
    hub.detach(SESSION, viewer)
    live = hub.sessions[SESSION]
    assert live.groups == {} and live.subs == [] and viewer not in live.viewers
    assert live.json_viewers == {}
    hub.publish(SESSION, "car-1", 0, car_batch(0, 2), recv_ns=0)
    assert viewer.offers == []
    hub.detach("no-such-session", viewer)


def test_json_viewers_get_compat_messages_filtered_by_stream(hub):
    """JSON viewers get the compatibility message of every stream, or of only the stream they
    chose, shared between them."""
    hub.add_stream(SESSION, "car-2", car_channels())
    every, only2 = FakeViewer(), FakeViewer()
    hub.attach_json(SESSION, every, None)
    hub.attach_json(SESSION, only2, "car-2")
    hub.publish(SESSION, "car-1", 0, car_batch(0, 2, lap=3), recv_ns=0)
    hub.publish(SESSION, "car-2", 7, car_batch(7, 1, lap=1), recv_ns=0)
    got = [json.loads(d) for d in every.data()]
    assert [(m["sessionID"], m["lap"], len(m["data"])) for m in got] == [
        (SESSION, 3, 2),
        (SESSION, 1, 1),
    ]
    assert got[1]["data"][0]["packetId"] == 7
    assert [json.loads(d)["lap"] for d in only2.data()] == [1]
    assert every.offers[1][1] is only2.offers[0][1]
    assert [slot for slot, _, _ in every.offers] == [(-1, 1), (-1, 2)]
    assert every.controls == []


def test_publish_to_an_unknown_session_or_an_empty_batch_does_nothing(hub):
    """Publishing to a session nobody created, or an empty batch, offers nothing."""
    viewer = FakeViewer()
    subscribe(hub, viewer)
    hub.publish("other", "car-1", 0, car_batch(0, 2), recv_ns=0)
    hub.publish(SESSION, "car-1", 0, car_batch(0, 0), recv_ns=0)
    assert viewer.offers == [] and hub.published_frames == 0


def test_channel_table_is_shared_by_streams(timers):
    """Streams with overlapping channels share channel ids; new names get the next id."""
    hub = Hub(timers.call_later, clock=timers.clock)
    hub.add_stream(SESSION, "a", ChannelSet([STANDARD["speed"], STANDARD["rpm"]]))
    hub.add_stream(SESSION, "b", ChannelSet([STANDARD["rpm"], STANDARD["gear"]]))
    live = hub.sessions[SESSION]
    assert live.channel_ids == {"speed": 0, "rpm": 1, "gear": 2}
    adv = live.advertise()
    assert [s.channels for s in adv.streams] == [[0, 1], [1, 2]]
