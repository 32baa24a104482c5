"""Tests of the sans-I/O connection state machines (pitwire.protocol.peer), fed and drained
directly and, where both ends exist, wired back to back (AgentPeer into IngestPeer)."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest

from pitwire.model.channels import Channel, ChannelSet
from pitwire.protocol import PROTOCOL_VERSION, frames, messages
from pitwire.protocol.keeper import KeptStream, MemoryKeeper
from pitwire.protocol.messages import Ack, Advertise, ServerInfo, Status, Subscribe
from pitwire.protocol.peer import (
    CAPABILITIES,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_UNSUPPORTED,
    Acked,
    AgentPeer,
    CloseRequested,
    DataReceived,
    FramesDropped,
    IngestPeer,
    StatusReceived,
    StreamsAdvertised,
    SubscribeRequested,
    UnsubscribeRequested,
    ViewerPeer,
    channel_desc,
    channel_from_desc,
)
from support import car_batch, car_channels


def texts(out: list[str | bytes]) -> list[messages.Message]:
    """The control messages among ``out``, decoded."""
    return [messages.decode(o) for o in out if isinstance(o, str)]


def datas(out: list[str | bytes]) -> list[frames.DataFrame]:
    """The data frames among ``out``, parsed."""
    return [frames.parse(o) for o in out if isinstance(o, bytes)]


def feed(peer: IngestPeer | ViewerPeer | AgentPeer, out: list[str | bytes]) -> None:
    for item in out:
        if isinstance(item, bytes):
            peer.receive_bytes(item)  # type: ignore[union-attr]
        else:
            peer.receive_text(item)


def new_agent(*cars: str, max_unacked: int = 2_000_000) -> AgentPeer:
    return AgentPeer(
        session="s1",
        streams=[(car, car_channels(), f"Driver {car}", "GT3") for car in cars or ("car-1",)],
        track="sim-ring",
        source="sim",
        max_unacked=max_unacked,
    )


def connected_pair(*cars: str, stored: int = -1) -> tuple[AgentPeer, IngestPeer]:
    """An agent connected to an ingest peer, past hello/advertise and the resume ack."""
    agent, ingest = new_agent(*cars), IngestPeer()
    agent.connection_made()
    feed(ingest, agent.outgoing())
    for ev in ingest.events():
        assert isinstance(ev, StreamsAdvertised)
        for desc, _ in ev.streams.values():
            ingest.ack(desc.stream, stored)
    feed(agent, ingest.outgoing())
    agent.events()
    return agent, ingest


def hello(protocol: int = PROTOCOL_VERSION, role: str = "agent") -> str:
    return json.dumps({"op": "hello", "protocol": protocol, "role": role})


def advertise_text(dtype: str = "f4", channels: list[int] | None = None) -> str:
    return messages.encode(
        Advertise(
            session="s1",
            streams=[messages.StreamDesc(id=5, stream="car-9", channels=channels or [0, 1])],
            channels=[
                messages.ChannelDesc(id=0, name="speed", unit="km/h", dtype=dtype, lo=0, hi=600),
                messages.ChannelDesc(id=1, name="rpm", dtype="f4"),
            ],
            track="t",
            source="x",
        )
    )


def close_of(peer: IngestPeer | ViewerPeer) -> CloseRequested:
    closes = [e for e in peer.events() if isinstance(e, CloseRequested)]
    assert len(closes) == 1, closes
    return closes[0]


def last_status(peer: IngestPeer | ViewerPeer | AgentPeer) -> Status:
    statuses = [m for m in texts(peer.outgoing()) if isinstance(m, Status)]
    assert statuses
    return statuses[-1]


# --- channel descriptions ------------------------------------------------------------------


def test_channel_desc_round_trips_and_maps_infinite_bounds_to_null():
    """A channel survives channel_desc/channel_from_desc; unbounded lo/hi travel as null."""
    bounded = Channel(name="speed", unit="km/h", resolution=0.01, lo=0, hi=600)
    free = Channel(name="steer", unit="rad", dtype="f8")
    for cid, ch in enumerate([bounded, free]):
        desc = channel_desc(cid, ch)
        assert desc.id == cid
        back = channel_from_desc(desc)
        assert (back.name, back.unit, back.dtype, back.resolution, back.lo, back.hi) == (
            ch.name,
            ch.unit,
            ch.dtype,
            ch.resolution,
            ch.lo,
            ch.hi,
        )
    assert channel_desc(1, free).lo is None and channel_desc(1, free).hi is None
    assert channel_from_desc(channel_desc(1, free)).lo == -math.inf


# --- IngestPeer ---------------------------------------------------------------------------


def test_ingest_hello_gets_server_info():
    """An agent's hello is answered with serverInfo naming the protocol and capabilities."""
    peer = IngestPeer()
    peer.receive_text(hello())
    [info] = texts(peer.outgoing())
    assert isinstance(info, ServerInfo)
    assert info.protocol == PROTOCOL_VERSION and info.capabilities == CAPABILITIES
    assert info.server.startswith("pitwire/")
    assert peer.events() == []


def test_ingest_wrong_version_gets_unsupported_and_close_4003():
    """A hello with another protocol version gets status unsupported and close 4003."""
    peer = IngestPeer()
    peer.receive_text(hello(protocol=2))
    status = last_status(peer)
    assert (status.level, status.code) == ("error", "unsupported")
    assert "protocol 2" in status.message
    assert close_of(peer).code == CLOSE_UNSUPPORTED
    assert peer.closed


def test_ingest_advertise_reports_streams_with_their_channel_sets():
    """An agent's advertise becomes StreamsAdvertised mapping wire id to the stream's
    description and channel set."""
    peer = IngestPeer()
    peer.receive_text(advertise_text())
    [ev] = peer.events()
    assert isinstance(ev, StreamsAdvertised)
    assert (ev.session, ev.track, ev.source) == ("s1", "t", "x")
    desc, cset = ev.streams[5]
    assert desc.stream == "car-9"
    assert list(cset) == ["speed", "rpm"]
    assert (cset["speed"].unit, cset["speed"].lo, cset["speed"].hi) == ("km/h", 0, 600)
    assert cset["rpm"].hi == math.inf
    assert peer.session == "s1"


def test_ingest_back_to_back_with_an_agent_peer():
    """An AgentPeer's hello and advertise fed to an IngestPeer yield serverInfo and the agent's
    streams with its channel sets."""
    agent, ingest = new_agent("car-1", "car-2"), IngestPeer()
    agent.connection_made()
    feed(ingest, agent.outgoing())
    assert [type(m) for m in texts(ingest.outgoing())] == [ServerInfo]
    [ev] = ingest.events()
    assert isinstance(ev, StreamsAdvertised)
    assert [d.stream for d, _ in ev.streams.values()] == ["car-1", "car-2"]
    assert [d.driver for d, _ in ev.streams.values()] == ["Driver car-1", "Driver car-2"]
    for _, cset in ev.streams.values():
        assert list(cset) == list(car_channels())
        assert [c.dtype for c in cset.values()] == [c.dtype for c in car_channels().values()]


def test_ingest_data_before_advertise_closes_4002():
    """Data for a stream id that was never advertised gets unknown_stream and close 4002."""
    peer = IngestPeer()
    peer.receive_text(hello())
    peer.outgoing()
    peer.receive_bytes(frames.serialize(group=5, seq=0, t_ns=np.array([1], np.int64), columns=[]))
    assert last_status(peer).code == "unknown_stream"
    assert close_of(peer).code == CLOSE_PROTOCOL_ERROR


def test_ingest_bad_frame_closes_4002():
    """A malformed binary frame gets status bad_frame and close 4002."""
    peer = IngestPeer()
    peer.receive_text(advertise_text())
    peer.events()
    peer.receive_bytes(b"\x01" + bytes(20))
    status = last_status(peer)
    assert status.code == "bad_frame" and "header" in status.message
    assert close_of(peer).code == CLOSE_PROTOCOL_ERROR


@pytest.mark.parametrize(
    "columns",
    [
        [(0, np.zeros(2, "f8")), (1, np.zeros(2, "f4"))],
        [(1, np.zeros(2, "f4"))],
    ],
    ids=["wrong_dtype", "missing_column"],
)
def test_ingest_frame_with_a_wrong_or_missing_column_closes_4002(columns):
    """A frame whose column for an advertised channel has the wrong dtype, or is missing,
    gets bad_frame naming the channel and close 4002."""
    peer = IngestPeer()
    peer.receive_text(advertise_text())
    peer.events()
    peer.receive_bytes(
        frames.serialize(group=5, seq=0, t_ns=np.array([1, 2], np.int64), columns=columns)
    )
    status = last_status(peer)
    assert status.code == "bad_frame" and "'speed'" in status.message
    assert close_of(peer).code == CLOSE_PROTOCOL_ERROR


def test_ingest_data_becomes_data_received_with_the_agents_values():
    """Frames an AgentPeer sends arrive as DataReceived with the stream name, seq and the
    exact batch."""
    agent, ingest = connected_pair("car-1")
    batch = car_batch(0, 50)
    agent.send_batch("car-1", batch)
    feed(ingest, agent.outgoing())
    [ev] = ingest.events()
    assert isinstance(ev, DataReceived)
    assert (ev.stream, ev.seq) == ("car-1", 0)
    assert ev.batch.equals(batch)


def test_ingest_ack_emits_the_wire_stream_id():
    """ack(stream name, seq) sends an Ack carrying the stream's advertised wire id."""
    peer = IngestPeer()
    peer.receive_text(advertise_text())
    peer.ack("car-9", 41)
    assert texts(peer.outgoing()) == [Ack(stream=5, seq=41)]
    peer.ack("never-advertised", 1)
    assert peer.outgoing() == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "bad control message"),
        ('{"op":"subscribe","id":1}', "'Subscribe' is not valid from an agent"),
        ('{"op":"ack","stream":1,"seq":1}', "'Ack' is not valid from an agent"),
    ],
)
def test_ingest_bad_or_misplaced_messages_close_4002(text, needle):
    """Garbage, and viewer or server ops from an agent, get bad_message and close 4002."""
    peer = IngestPeer()
    peer.receive_text(text)
    status = last_status(peer)
    assert status.code == "bad_message" and needle in status.message
    assert close_of(peer).code == CLOSE_PROTOCOL_ERROR


def test_ingest_advertise_for_another_session_closes_4002():
    """A second advertise naming a different session is a protocol error."""
    peer = IngestPeer()
    peer.receive_text(advertise_text())
    peer.events()
    peer.receive_text(advertise_text().replace('"s1"', '"s2"'))
    assert "not 's2'" in last_status(peer).message
    assert close_of(peer).code == CLOSE_PROTOCOL_ERROR
    assert peer.session == "s1"


def test_ingest_advertise_with_an_unknown_channel_id_closes_4002():
    """A stream naming a channel id missing from the channel table is a protocol error."""
    peer = IngestPeer()
    peer.receive_text(advertise_text(channels=[0, 7]))
    assert "unknown channel id 7" in last_status(peer).message
    assert close_of(peer).code == CLOSE_PROTOCOL_ERROR


def test_ingest_close_is_requested_only_once():
    """After the first protocol error, later errors are answered but request no second close."""
    peer = IngestPeer()
    peer.receive_text("{bad")
    peer.receive_text("{worse")
    assert len([e for e in peer.events() if isinstance(e, CloseRequested)]) == 1


def test_ingest_status_from_agent_is_passed_on():
    """A status from an agent becomes StatusReceived."""
    peer = IngestPeer()
    peer.receive_text('{"op":"status","level":"info","code":"x","message":"hi"}')
    [ev] = peer.events()
    assert isinstance(ev, StatusReceived) and ev.status.message == "hi"


# --- ViewerPeer ---------------------------------------------------------------------------


def test_viewer_connection_made_sends_server_info_with_the_session():
    """The server speaks first to a viewer: serverInfo naming the session."""
    peer = ViewerPeer("s7")
    peer.connection_made()
    [info] = texts(peer.outgoing())
    assert isinstance(info, ServerInfo) and info.session == "s7"
    assert info.protocol == PROTOCOL_VERSION


def test_viewer_subscribe_becomes_subscribe_requested():
    """A subscribe becomes SubscribeRequested carrying the request, and is remembered."""
    peer = ViewerPeer("s")
    peer.receive_text('{"op":"subscribe","id":4,"streams":[1],"channels":[0,2],"maxRate":10}')
    [ev] = peer.events()
    assert isinstance(ev, SubscribeRequested)
    assert ev.request == Subscribe(id=4, streams=[1], channels=[0, 2], maxRate=10.0)
    assert peer.subscriptions == {4}
    assert peer.outgoing() == []


def test_viewer_replay_and_controls_become_events():
    """A valid replay becomes ReplayRequested; controls of that replay ControlRequested."""
    from pitwire.protocol.peer import ControlRequested, ReplayRequested

    peer = ViewerPeer("s")
    peer.receive_text('{"op":"replay","id":2,"fps":30,"speed":4,"streams":[1]}')
    [ev] = peer.events()
    assert isinstance(ev, ReplayRequested)
    assert (ev.request.fps, ev.request.speed, ev.request.streams) == (30, 4, [1])
    peer.receive_text('{"op":"control","id":2,"action":"seek","lap":3}')
    [ev] = peer.events()
    assert isinstance(ev, ControlRequested) and ev.request.lap == 3
    assert peer.outgoing() == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"op":"replay","id":1,"speed":65}', "speed must be between 0.1 and 64"),
        ('{"op":"replay","id":1,"speed":0.05}', "speed must be between 0.1 and 64"),
        ('{"op":"replay","id":1,"fps":0}', "fps must be between 1 and 60"),
        ('{"op":"replay","id":1,"delay":-2}', "delay must be >= 0"),
        ('{"op":"control","id":1,"action":"play"}', "no replay 1"),
    ],
)
def test_viewer_bad_replay_requests_get_an_error_status(text: str, problem: str):
    """Out-of-range replays and controls without a replay get an error status, no event."""
    peer = ViewerPeer("s")
    peer.receive_text(text)
    status = last_status(peer)
    assert (status.level, status.subscription) == ("error", 1)
    assert problem in status.message
    assert peer.events() == []


@pytest.mark.parametrize(
    ("control", "problem"),
    [
        ('"action":"seek"', "seek needs either t"),
        ('"action":"seek","t":5,"lap":2', "seek needs either t"),
        ('"action":"speed","speed":100', "speed must be between"),
        ('"action":"speed"', "speed needs a speed, from 0.1 to 64"),
        ('"action":"step","by":1e9', "step: by must be seconds within"),
        ('"action":"rewind"', "bad control message"),
    ],
)
def test_viewer_bad_controls_get_an_error_status(control: str, problem: str):
    """A control missing what its action needs is refused with a message saying what."""
    peer = ViewerPeer("s")
    peer.receive_text('{"op":"replay","id":1}')
    peer.events()
    peer.receive_text('{"op":"control","id":1,' + control + "}")
    assert problem in last_status(peer).message
    assert peer.events() == []


def test_viewer_negative_max_rate_gets_an_error_status():
    """A subscribe with maxRate < 0 gets status error for that subscription and no event."""
    peer = ViewerPeer("s")
    peer.receive_text('{"op":"subscribe","id":4,"maxRate":-1}')
    status = last_status(peer)
    assert (status.level, status.code, status.subscription) == ("error", "bad_message", 4)
    assert peer.events() == []
    assert peer.subscriptions == set()


def test_viewer_unsubscribe_becomes_unsubscribe_requested():
    """An unsubscribe becomes UnsubscribeRequested and forgets the subscription."""
    peer = ViewerPeer("s")
    peer.receive_text('{"op":"subscribe","id":4}')
    peer.receive_text('{"op":"unsubscribe","id":4}')
    assert [type(e) for e in peer.events()] == [SubscribeRequested, UnsubscribeRequested]
    assert peer.subscriptions == set()


@pytest.mark.parametrize(
    "send",
    [
        lambda p: p.receive_text("{garbage"),
        lambda p: p.receive_text('{"op":"launch"}'),
        lambda p: p.receive_text('{"op":"ack","stream":1,"seq":2}'),
        lambda p: p.receive_bytes(b"\x01\x00"),
    ],
    ids=["not_json", "unknown_op", "server_op", "binary"],
)
def test_viewer_garbage_gets_bad_message_but_no_close(send):
    """A viewer's bad message is answered with a bad_message warning; it is not closed."""
    peer = ViewerPeer("s")
    send(peer)
    status = last_status(peer)
    assert (status.level, status.code) == ("warning", "bad_message")
    assert peer.events() == []
    assert not peer.closed


def test_viewer_hello_is_accepted_or_closed_by_version():
    """A viewer's hello for protocol 1 is silent; another version gets unsupported and 4003."""
    peer = ViewerPeer("s")
    peer.receive_text(hello(role="viewer"))
    assert peer.outgoing() == [] and peer.events() == []
    peer.receive_text(hello(protocol=99, role="viewer"))
    assert last_status(peer).code == "unsupported"
    assert close_of(peer).code == CLOSE_UNSUPPORTED


# --- AgentPeer ----------------------------------------------------------------------------


def test_agent_connection_made_sends_hello_and_advertise():
    """On connecting the agent sends hello (role agent) then advertise of all its streams."""
    agent = new_agent("car-1", "car-2")
    agent.connection_made()
    hello_msg, adv = texts(agent.outgoing())
    assert isinstance(hello_msg, messages.Hello) and hello_msg.role == "agent"
    assert hello_msg.protocol == PROTOCOL_VERSION
    assert isinstance(adv, Advertise)
    assert (adv.session, adv.track, adv.source) == ("s1", "sim-ring", "sim")
    assert [(s.id, s.stream) for s in adv.streams] == [(1, "car-1"), (2, "car-2")]
    assert [c.name for c in adv.channels] == list(car_channels())
    assert adv.streams[0].channels == adv.streams[1].channels == list(range(len(car_channels())))


def test_agent_holds_frames_back_until_the_first_ack():
    """Frames queued before the stream's first ack are not sent; the ack releases them."""
    agent = new_agent()
    agent.connection_made()
    agent.outgoing()
    assert agent.send_batch("car-1", car_batch(0, 10)) == 0
    assert agent.outgoing() == []
    agent.receive_text(messages.encode(Ack(stream=1, seq=-1)))
    [df] = datas(agent.outgoing())
    assert (df.seq, df.n) == (0, 10)
    assert agent.events() == [Acked("car-1", -1)]
    assert agent.unacked_frames == 10


def test_agent_resume_renumbers_held_frames_to_follow_the_stored_seq():
    """The first ack (what the server already stores) shifts held-back frames and later ones
    to follow it, so a restarted agent continues the stream."""
    agent = new_agent()
    agent.connection_made()
    agent.outgoing()
    agent.send_batch("car-1", car_batch(0, 10))
    agent.send_batch("car-1", car_batch(10, 5))
    agent.receive_text(messages.encode(Ack(stream=1, seq=99)))
    sent = datas(agent.outgoing())
    assert [(d.seq, d.n) for d in sent] == [(100, 10), (110, 5)]
    assert agent.next_seq("car-1") == 115
    assert agent.send_batch("car-1", car_batch(15, 1)) == 115
    assert datas(agent.outgoing())[0].seq == 115
    assert agent.acked == {"car-1": 99}
    # The renumbered frames keep their values.
    np.testing.assert_array_equal(sent[0].columns[0], car_batch(0, 10).columns["speed"])


def test_agent_ack_after_resume_drops_acked_frames():
    """A later ack drops every queued batch whose last frame is covered; a batch only partly
    covered stays."""
    agent, _ = connected_pair("car-1")
    for i in range(3):
        agent.send_batch("car-1", car_batch(i * 10, 10))
    agent.outgoing()
    assert agent.unacked_frames == 30
    agent.receive_text(messages.encode(Ack(stream=1, seq=14)))
    assert agent.unacked_frames == 20
    agent.receive_text(messages.encode(Ack(stream=1, seq=29)))
    assert agent.unacked_frames == 0
    assert agent.acked["car-1"] == 29
    assert agent.events() == [Acked("car-1", 14), Acked("car-1", 29)]


def test_agent_stale_ack_does_not_lower_acked():
    """An ack older than one already received does not move ``acked`` back."""
    agent, _ = connected_pair("car-1")
    agent.send_batch("car-1", car_batch(0, 10))
    agent.receive_text(messages.encode(Ack(stream=1, seq=9)))
    agent.receive_text(messages.encode(Ack(stream=1, seq=3)))
    assert agent.acked["car-1"] == 9


def test_agent_reconnect_resends_only_unacked_frames():
    """After a reconnect the agent sends hello, advertise and then exactly the frames not yet
    acked, including those queued while disconnected."""
    agent, ingest = connected_pair("car-1")
    for i in range(3):
        agent.send_batch("car-1", car_batch(i * 10, 10))
    feed(ingest, agent.outgoing())
    ingest.events()
    ingest.ack("car-1", 9)
    feed(agent, ingest.outgoing())
    agent.connection_lost()
    assert not agent.connected
    agent.send_batch("car-1", car_batch(30, 10))
    assert agent.outgoing() == []
    agent.connection_made()
    handshake = agent.outgoing()
    assert [type(m) for m in texts(handshake)] == [messages.Hello, Advertise]
    agent.receive_text(messages.encode(Ack(stream=1, seq=9)))  # the server's resume point
    out = agent.outgoing()
    assert [(d.seq, d.n) for d in datas(out)] == [(10, 10), (20, 10), (30, 10)]
    # A fresh ingest peer receives them as a contiguous continuation.
    fresh = IngestPeer()
    feed(fresh, handshake + out)
    got = [e for e in fresh.events() if isinstance(e, DataReceived)]
    assert [e.seq for e in got] == [10, 20, 30]


def test_agent_sends_no_data_on_a_new_connection_before_the_streams_ack():
    """On every (re)connection a stream's frames wait for its ack on that connection (the
    resume point): until then nothing of it is sent, neither kept frames nor new ones."""
    agent, _ = connected_pair("car-1", "car-2")
    agent.send_batch("car-1", car_batch(0, 10))
    agent.outgoing()
    agent.connection_lost()
    agent.connection_made()
    agent.send_batch("car-1", car_batch(10, 10))
    agent.send_batch("car-2", car_batch(0, 10))
    assert datas(agent.outgoing()) == [] and not agent.backlog
    agent.receive_text(messages.encode(Ack(stream=2, seq=-1)))
    assert [(d.group, d.seq) for d in datas(agent.outgoing())] == [(2, 0)]
    agent.send_batch("car-1", car_batch(20, 10))
    assert datas(agent.outgoing()) == []
    agent.receive_text(messages.encode(Ack(stream=1, seq=-1)))
    assert [(d.group, d.seq) for d in datas(agent.outgoing())] == [(1, 0), (1, 10), (1, 20)]


def test_agent_connection_lost_discards_unsent_output():
    """What was queued for a connection that is gone is discarded (it is re-sent on reconnect
    from the unacked queue)."""
    agent, _ = connected_pair("car-1")
    agent.send_batch("car-1", car_batch(0, 10))
    agent.connection_lost()
    assert agent.outgoing() == []
    assert agent.unacked_frames == 10


def test_agent_stream_not_yet_acked_is_not_resent_on_reconnect():
    """A stream still waiting for its first ack sends nothing on reconnect until that ack."""
    agent = new_agent()
    agent.connection_made()
    agent.send_batch("car-1", car_batch(0, 10))
    agent.connection_lost()
    agent.connection_made()
    assert datas(agent.outgoing()) == []
    agent.receive_text(messages.encode(Ack(stream=1, seq=-1)))
    assert [d.seq for d in datas(agent.outgoing())] == [0]


def test_agent_max_unacked_drops_the_oldest_and_counts_them():
    """Past max_unacked frames the oldest batches are dropped and counted in ``dropped``; the
    newest is always kept."""
    agent = new_agent(max_unacked=25)
    for i in range(4):
        agent.send_batch("car-1", car_batch(i * 10, 10))
    assert agent.dropped == 20
    assert agent.unacked_frames == 20
    agent.connection_made()
    agent.outgoing()
    agent.receive_text(messages.encode(Ack(stream=1, seq=-1)))
    assert [d.seq for d in datas(agent.outgoing())] == [20, 30]


def test_agent_max_unacked_keeps_one_batch_even_if_it_is_larger():
    """A single batch larger than max_unacked is kept (never an empty queue)."""
    agent = new_agent(max_unacked=5)
    agent.send_batch("car-1", car_batch(0, 10))
    assert (agent.dropped, agent.unacked_frames) == (0, 10)


def online_agent(max_unacked: int = 25) -> AgentPeer:
    """An agent with a small memory keeper, connected, past car-1's resume ack (-1)."""
    agent = new_agent(max_unacked=max_unacked)
    agent.connection_made()
    agent.outgoing()
    agent.receive_text(messages.encode(Ack(stream=1, seq=-1)))
    agent.events()
    assert agent.outgoing() == [] and not agent.backlog  # caught up: new frames go out live
    return agent


def lost(agent: AgentPeer) -> list[tuple[int, int, int]]:
    """(first, last, n) of the FramesDropped events the agent emitted."""
    return [(e.first, e.last, e.n) for e in agent.events() if isinstance(e, FramesDropped)]


def test_agent_frames_dropped_after_being_sent_are_not_lost_once_acked():
    """Frames the keeper drops while they only wait for their ack (sent on this connection)
    leave ``dropped`` when an ack on the connection covers them: the server stored them."""
    agent = online_agent()
    for i in range(4):
        agent.send_batch("car-1", car_batch(i * 10, 10))
    assert [d.seq for d in datas(agent.outgoing())] == [0, 10, 20, 30]
    assert agent.dropped == agent.keeper.dropped == 20  # not acknowledged yet
    agent.receive_text(messages.encode(Ack(stream=1, seq=14)))
    assert (agent.dropped, agent.recovered) == (5, 15)  # 0..14 stored, 15..19 not yet known
    agent.receive_text(messages.encode(Ack(stream=1, seq=39)))
    assert (agent.dropped, agent.recovered, agent.keeper.dropped) == (0, 20, 20)
    agent.settle()
    assert lost(agent) == []


def test_agent_frames_dropped_before_being_sent_stay_lost_when_an_ack_passes_them():
    """Frames dropped before they were sent (here while offline) are lost even though the
    server later acks past their seqs (it acks what it received): one FramesDropped per
    dropped batch, with its seqs and the keeper's reason."""
    agent = online_agent()
    agent.connection_lost()
    for i in range(4):
        agent.send_batch("car-1", car_batch(i * 10, 10))
    events = [e for e in agent.events() if isinstance(e, FramesDropped)]
    assert [(e.first, e.last, e.n) for e in events] == [(0, 9, 10), (10, 19, 10)]
    assert events[0].reason == "queue full (25 frames kept in memory)"
    assert not events[0].provisional
    agent.connection_made()
    agent.receive_text(messages.encode(Ack(stream=1, seq=-1)))
    assert [d.seq for d in datas(agent.outgoing())] == [20, 30]
    agent.receive_text(messages.encode(Ack(stream=1, seq=39)))
    assert (agent.dropped, agent.recovered) == (20, 0)


def test_agent_frames_dropped_of_a_stream_never_acked_are_lost_with_provisional_seqs():
    """Frames dropped before the stream's first ack were never sent: lost, and reported with
    their provisional seqs."""
    agent = new_agent(max_unacked=25)
    for i in range(3):
        agent.send_batch("car-1", car_batch(i * 10, 10))
    (event,) = [e for e in agent.events() if isinstance(e, FramesDropped)]
    assert (event.first, event.last, event.n, event.provisional) == (0, 9, 10, True)


def test_agent_resume_ack_of_the_next_connection_settles_frames_dropped_awaiting_acks():
    """Frames sent on a connection that broke before their ack, then dropped: the next
    connection's resume ack (what the server received before it) shows which were stored;
    the rest are lost, and later acks on the new connection do not bring them back."""
    agent = online_agent()
    for i in range(4):
        agent.send_batch("car-1", car_batch(i * 10, 10))
    agent.outgoing()
    agent.connection_lost()
    agent.connection_made()
    agent.receive_text(messages.encode(Ack(stream=1, seq=9)))  # 0..9 arrived, 10..19 not
    assert (agent.dropped, agent.recovered) == (10, 10)
    assert lost(agent) == [(10, 19, 10)]
    assert [d.seq for d in datas(agent.outgoing())] == [20, 30]
    agent.receive_text(messages.encode(Ack(stream=1, seq=39)))
    assert (agent.dropped, agent.recovered) == (10, 10)


def test_agent_settle_reports_dropped_frames_still_waiting_for_their_ack():
    """When the agent stops, dropped frames that were sent but never acknowledged are
    reported lost."""
    agent = online_agent()
    for i in range(4):
        agent.send_batch("car-1", car_batch(i * 10, 10))
    agent.outgoing()
    assert lost(agent) == []
    agent.settle()
    assert lost(agent) == [(0, 19, 20)]  # adjacent drops are one range
    assert agent.dropped == 20


def test_agent_add_stream_while_connected_advertises_again():
    """A stream added while connected is advertised at once, with its new id."""
    agent, _ = connected_pair("car-1")
    agent.add_stream("car-2", car_channels(), driver="B")
    [adv] = texts(agent.outgoing())
    assert isinstance(adv, Advertise)
    assert [(s.id, s.stream) for s in adv.streams] == [(1, "car-1"), (2, "car-2")]
    agent.add_stream("car-2", car_channels())
    assert agent.outgoing() == []


def test_agent_learning_a_driver_or_track_later_advertises_again():
    """A driver/car or track that becomes known re-advertises; unchanged ones do not."""
    agent, _ = connected_pair("car-1")
    agent.add_stream("car-1", car_channels(), driver="Alice", car="F1")
    [adv] = texts(agent.outgoing())
    assert isinstance(adv, Advertise)
    assert [(s.stream, s.driver, s.car) for s in adv.streams] == [("car-1", "Alice", "F1")]
    agent.add_stream("car-1", car_channels(), driver="Alice", car="F1")
    agent.set_track("sim-ring")
    assert agent.outgoing() == []
    agent.set_track("Monza")
    [adv] = texts(agent.outgoing())
    assert isinstance(adv, Advertise) and adv.track == "Monza"


def test_agent_without_streams_does_not_advertise_until_it_has_one():
    """A game source that knows no car yet sends hello only; the first car advertises."""
    agent = AgentPeer(session="s1", streams=[])
    agent.connection_made()
    assert [type(m).__name__ for m in texts(agent.outgoing())] == ["Hello"]
    agent.set_track("Monza")
    assert agent.outgoing() == []
    agent.add_stream("car-0", car_channels())
    [adv] = texts(agent.outgoing())
    assert isinstance(adv, Advertise) and adv.track == "Monza"


def test_agent_ignores_acks_for_unknown_streams_and_reports_garbage():
    """An ack for a stream id it never advertised is ignored; garbage becomes a bad_message
    StatusReceived and nothing is sent back."""
    agent, _ = connected_pair("car-1")
    agent.receive_text(messages.encode(Ack(stream=42, seq=5)))
    assert agent.events() == []
    agent.receive_text("{nope")
    [ev] = agent.events()
    assert isinstance(ev, StatusReceived) and ev.status.code == "bad_message"
    agent.receive_text(messages.encode(Subscribe(id=1)))
    assert agent.events() == [] and agent.outgoing() == []
    assert not agent.closed


def test_agent_and_ingest_back_to_back_deliver_every_frame_once():
    """Two streams through AgentPeer → IngestPeer arrive complete, in order, with contiguous
    seqs per stream."""
    agent, ingest = connected_pair("car-1", "car-2")
    for i in range(4):
        for car in ("car-1", "car-2"):
            agent.send_batch(car, car_batch(i * 7, 7))
    feed(ingest, agent.outgoing())
    got: dict[str, list[int]] = {"car-1": [], "car-2": []}
    for ev in ingest.events():
        assert isinstance(ev, DataReceived)
        got[ev.stream].extend(range(ev.seq, ev.seq + ev.batch.n))
    assert got == {"car-1": list(range(28)), "car-2": list(range(28))}


def test_agent_channel_set_with_f8_channel_round_trips_through_ingest():
    """A stream mixing f4 and f8 channels reaches the ingest side with the same dtypes."""
    cset = ChannelSet([Channel(name="a", dtype="f8"), Channel(name="b")])
    agent = AgentPeer(session="s", streams=[("x", cset, "", "")])
    ingest = IngestPeer()
    agent.connection_made()
    feed(ingest, agent.outgoing())
    ingest.events()
    ingest.ack("x", -1)
    feed(agent, ingest.outgoing())
    from pitwire.model.frames import FrameBatch

    batch = FrameBatch(
        np.array([5, 6], np.int64),
        {"a": np.array([0.1, 0.2], "f8"), "b": np.array([1, 2], "f4")},
    )
    agent.send_batch("x", batch)
    feed(ingest, agent.outgoing())
    [ev] = ingest.events()
    assert isinstance(ev, DataReceived) and ev.batch.equals(batch)
    assert ev.batch.columns["a"].dtype == np.float64


# --- AgentPeer with a keeper --------------------------------------------------------------


class RecordingKeeper(MemoryKeeper):
    """A MemoryKeeper that logs the peer's calls and can pretend to be a reopened spool."""

    def __init__(self, restored: list[KeptStream] | None = None) -> None:
        super().__init__()
        self.calls: list[tuple[object, ...]] = []
        self._restored = restored or []

    def restored(self) -> list[KeptStream]:
        return self._restored

    def note_stream(self, stream, *, id, channels, driver, car):  # type: ignore[no-untyped-def]
        self.calls.append(("note_stream", stream, id, [c.name for c in channels], driver))

    def rebase(self, stream: str, shift: int) -> None:
        self.calls.append(("rebase", stream, shift))
        super().rebase(stream, shift)

    def release(self, stream: str, upto: int) -> None:
        self.calls.append(("release", stream, upto))
        super().release(stream, upto)


def test_agent_keeps_frames_in_its_keeper_and_tells_it_of_streams_rebase_and_acks():
    """The peer declares its streams to the keeper, keeps every frame there, rebases a
    stream's frames on its first ack and releases them on later acks."""
    keeper = RecordingKeeper()
    agent = AgentPeer(session="s1", streams=[("car-1", car_channels(), "A", "")], keeper=keeper)
    agent.send_batch("car-1", car_batch(0, 10))
    assert keeper.frames == agent.unacked_frames == 10
    agent.connection_made()
    agent.receive_text(messages.encode(Ack(stream=1, seq=41)))
    assert [d.seq for d in datas(agent.outgoing())] == [42]
    agent.receive_text(messages.encode(Ack(stream=1, seq=51)))
    assert keeper.calls == [
        ("note_stream", "car-1", 1, list(car_channels()), "A"),
        ("rebase", "car-1", 42),
        ("release", "car-1", 51),
    ]
    assert agent.unacked_frames == 0


def restored_frame(seq: int, n: int) -> bytes:
    """A frame of stream id 3 with channel ids 10.. as an earlier run encoded it."""
    batch = car_batch(seq, n)
    cols = [(i + 10, col) for i, col in enumerate(batch.columns.values())]
    return frames.serialize(group=3, seq=seq, t_ns=batch.t_ns, columns=cols)


def restored_keeper(next_seq: int = 120, acked: int = 99) -> RecordingKeeper:
    """A keeper as an earlier run left it: stream car-7 (id 3, channel ids 10..) synced, its
    frames acked up to ``acked`` and kept from there up to ``next_seq`` - 1 (batches of 10)."""
    restored = KeptStream(
        stream="car-7",
        id=3,
        channels=[channel_desc(i + 10, c) for i, c in enumerate(car_channels().values())],
        driver="Old",
        next_seq=next_seq,
        synced=True,
        acked=acked,
    )
    keeper = RecordingKeeper([restored])
    for seq in range(acked + 1, next_seq, 10):
        keeper.keep("car-7", seq + 9, restored_frame(seq, 10), 10)
    return keeper


def test_agent_continues_streams_its_keeper_restored_after_the_connections_ack():
    """Streams a keeper restores (a spool of an earlier run) keep their stream and channel
    ids and numbering: on connecting, once the server acks what it stores, their kept frames
    are re-sent and new frames follow them; new streams and channels get the next free ids."""
    keeper = restored_keeper()
    extra = ChannelSet([*car_channels().values(), Channel(name="boost")])
    agent = AgentPeer(session="s1", streams=[("car-1", extra, "", "")], keeper=keeper)
    assert agent.next_seq("car-7") == 120 and agent.acked == {"car-7": 99}
    agent.connection_made()
    out = agent.outgoing()
    adv = texts(out)[1]
    assert isinstance(adv, Advertise)
    assert [(s.id, s.stream, s.driver) for s in adv.streams] == [
        (3, "car-7", "Old"),
        (4, "car-1", ""),
    ]
    assert adv.streams[0].channels == list(range(10, 15))
    assert adv.streams[1].channels == [*range(10, 15), 15]
    assert datas(out) == []
    agent.receive_text(messages.encode(Ack(stream=3, seq=99)))
    out += agent.outgoing()
    assert [(d.group, d.seq) for d in datas(out)] == [(3, 100), (3, 110)]
    agent.send_batch("car-7", car_batch(20, 5))
    live = agent.outgoing()
    [df] = datas(live)
    assert (df.group, df.seq, sorted(df.columns)) == (3, 120, list(range(10, 15)))
    # A fresh ingest peer decodes the restored stream's old and new frames alike.
    ingest = IngestPeer()
    feed(ingest, out + live)
    got = [e for e in ingest.events() if isinstance(e, DataReceived)]
    assert [(e.stream, e.seq) for e in got] == [("car-7", 100), ("car-7", 110), ("car-7", 120)]
    assert got[2].batch.equals(car_batch(20, 5))


@pytest.mark.parametrize("stored", [124, 199])
def test_agent_moves_frames_numbered_past_what_it_knew_when_the_server_holds_those_seqs(
    stored, caplog
):
    """A restored stream's numbering can lag what the server stores (frames an earlier run
    sent but its spool lost: a failed write, a power cut): when the connection's ack reports
    seqs past any the agent knew of, the frames it numbered since move to follow them (with
    a warning) and are sent only then; the restored ones are acked, nothing is stored twice
    and no seq is reused."""
    caplog.set_level(logging.WARNING, "pitwire.protocol")
    keeper = restored_keeper()
    agent = AgentPeer(session="s1", streams=[], keeper=keeper)
    agent.connection_made()
    agent.outgoing()
    agent.send_batch("car-7", car_batch(120, 10))  # numbered 120..129 before the ack
    agent.send_batch("car-7", car_batch(130, 10))
    assert datas(agent.outgoing()) == []
    agent.receive_text(messages.encode(Ack(stream=3, seq=stored)))
    sent = datas(agent.outgoing())
    assert [(d.seq, d.n) for d in sent] == [(stored + 1, 10), (stored + 11, 10)]
    np.testing.assert_array_equal(sent[0].columns[14], car_batch(120, 10).columns["packet_id"])
    assert agent.next_seq("car-7") == stored + 21
    assert agent.send_batch("car-7", car_batch(140, 5)) == stored + 21
    assert agent.unacked_frames == 25 and agent.acked == {"car-7": stored}
    assert f"server stores frames of stream car-7 up to seq {stored}" in caplog.text


def test_agent_an_ack_past_every_seq_it_numbered_moves_its_numbering_past_it(caplog):
    """An ack of seqs the agent never numbered (the server holds frames of the stream it
    does not know of) moves the numbering past it, so new frames do not reuse those seqs."""
    caplog.set_level(logging.WARNING, "pitwire.protocol")
    agent, _ = connected_pair("car-1")
    for i in range(3):
        agent.send_batch("car-1", car_batch(i * 10, 10))
    agent.outgoing()
    agent.receive_text(messages.encode(Ack(stream=1, seq=49)))
    assert (agent.unacked_frames, agent.next_seq("car-1")) == (0, 50)
    assert agent.send_batch("car-1", car_batch(30, 10)) == 50
    assert [d.seq for d in datas(agent.outgoing())] == [50]
    assert "up to seq 49" in caplog.text


def test_agent_with_max_out_bytes_resends_in_parts_in_order_and_once():
    """With ``max_out_bytes`` a large backlog is re-sent a part per ``outgoing()`` while
    ``backlog`` is true; frames queued meanwhile follow the older ones; none is sent twice."""
    agent = AgentPeer(
        session="s1",
        streams=[(car, car_channels(), "", "") for car in ("car-1", "car-2")],
        max_out_bytes=2000,
    )
    for i in range(20):
        for car in ("car-1", "car-2"):
            agent.send_batch(car, car_batch(i * 10, 10))
    size = len(next(iter(agent.keeper.pending({"car-1": -1})))[2])
    agent.connection_made()
    agent.outgoing()
    agent.receive_text(messages.encode(Ack(stream=1, seq=-1)))
    agent.receive_text(messages.encode(Ack(stream=2, seq=-1)))
    got: dict[int, list[int]] = {1: [], 2: []}
    parts = 0
    while True:
        out = datas(agent.outgoing())
        assert len(out) * size <= 2000 + size
        for d in out:
            got[d.group].append(d.seq)
        parts += 1
        if parts == 3:  # new frames while re-sending wait for the older ones
            agent.send_batch("car-1", car_batch(200, 10))
        if not agent.backlog:
            break
    assert parts > 5
    assert got == {1: list(range(0, 210, 10)), 2: list(range(0, 200, 10))}
    agent.send_batch("car-1", car_batch(210, 10))
    assert [d.seq for d in datas(agent.outgoing())] == [210]


def test_agent_with_max_out_bytes_sends_live_frames_past_the_limit_from_the_keeper():
    """Connected and caught up, frames past ``max_out_bytes`` not yet drained wait in the
    keeper and come out, in order, on the next ``outgoing()`` calls."""
    agent, _ = connected_pair("car-1")
    agent.max_out_bytes = 1500
    for i in range(10):
        agent.send_batch("car-1", car_batch(i * 10, 10))
    sent: list[int] = []
    while True:
        sent += [d.seq for d in datas(agent.outgoing())]
        if not agent.backlog:
            break
    assert sent == list(range(0, 100, 10))
