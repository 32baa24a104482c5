"""Tests of JSON control messages (pitwire.protocol.messages) against spec/vectors/control.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pitwire.protocol import messages
from pitwire.protocol.messages import (
    Ack,
    Advertise,
    Clock,
    Control,
    Hello,
    ProtocolError,
    Replay,
    ServerInfo,
    Status,
    Subscribe,
    Subscribed,
    Unsubscribe,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "spec" / "vectors" / "control.json").read_text()
)
VALID = VECTORS["valid"]
INVALID = VECTORS["invalid"]

EXPECTED_TYPES = {
    "hello_viewer": Hello,
    "hello_agent": Hello,
    "server_info": ServerInfo,
    "advertise": Advertise,
    "subscribe_all": Subscribe,
    "subscribe_some": Subscribe,
    "subscribed": Subscribed,
    "unsubscribe": Unsubscribe,
    "status_lagging": Status,
    "ack": Ack,
    "replay": Replay,
    "replay_delayed": Replay,
    "control_seek_lap": Control,
    "control_step": Control,
    "clock": Clock,
}


@pytest.mark.parametrize("case", VALID, ids=[c["name"] for c in VALID])
def test_valid_vector_round_trips_to_the_same_text(case):
    """Each valid control message decodes to its tagged struct and encodes back to the
    identical text."""
    msg = messages.decode(case["text"])
    assert type(msg) is EXPECTED_TYPES[case["name"]]
    assert messages.encode(msg) == case["text"]


@pytest.mark.parametrize("case", INVALID, ids=[c["name"] for c in INVALID])
def test_invalid_vector_raises_protocol_error(case):
    """Each invalid control message raises ProtocolError."""
    with pytest.raises(ProtocolError, match="bad control message"):
        messages.decode(case["text"])


def test_every_vector_name_is_known():
    """The valid vectors cover every message type (a new op needs a vector)."""
    assert {c["name"] for c in VALID} == set(EXPECTED_TYPES)
    assert set(EXPECTED_TYPES.values()) == set(messages.Message.__args__)


def test_decode_accepts_bytes():
    """decode takes UTF-8 bytes as well as str."""
    assert messages.decode(b'{"op":"ack","stream":1,"seq":2}') == Ack(stream=1, seq=2)


def test_unknown_fields_are_ignored():
    """A newer peer's extra fields are ignored, not rejected."""
    msg = messages.decode('{"op":"unsubscribe","id":3,"reason":"bored","extra":{"a":1}}')
    assert msg == Unsubscribe(id=3)


def test_defaults_are_omitted_and_restored():
    """Optional fields at their default are left out of the text and come back on decode."""
    text = messages.encode(Subscribe(id=1))
    assert text == '{"op":"subscribe","id":1}'
    msg = messages.decode(text)
    assert isinstance(msg, Subscribe)
    assert (msg.streams, msg.channels, msg.maxRate) == (None, None, 0.0)


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '"hello"',
        "{}",
        '{"op":null}',
        '{"op":"status","level":"fatal","code":"x","message":"y"}',
        '{"op":"subscribe","id":1,"streams":"all"}',
        '{"op":"hello","protocol":"1","role":"viewer"}',
        "",
    ],
    ids=[
        "array",
        "string",
        "no_op",
        "null_op",
        "bad_level",
        "streams_not_list",
        "str_int",
        "empty",
    ],
)
def test_more_malformed_messages_raise_protocol_error(text):
    """Non-objects, missing or null ops, bad enum values and wrong types raise ProtocolError."""
    with pytest.raises(ProtocolError):
        messages.decode(text)


def test_protocol_error_is_a_value_error():
    """ProtocolError is a ValueError."""
    assert issubclass(ProtocolError, ValueError)
