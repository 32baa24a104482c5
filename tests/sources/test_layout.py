import struct as pystruct

import numpy as np
import pytest

from pitwire.sources.layout import (
    F32,
    I8,
    U8,
    U16,
    U64,
    LayoutError,
    build,
    cstr,
    parse,
    struct,
    to_python,
    wchars,
    wstr,
)

HEADER = struct("Header", [("format", U16), ("id", U8), ("uid", U64), ("name", "S8")], size=19)
CAR = struct("Car", [("x", F32), ("gear", I8), ("temps", U8, 4)], size=9)
PACKET = struct("Packet", [("header", HEADER), ("cars", CAR, 3), ("driver", U16, 6)], size=58)


def test_struct_checks_the_documented_size() -> None:
    """A field table that does not add up to the document's size is refused."""
    with pytest.raises(LayoutError, match="19 bytes, not 20"):
        struct("Header", [("format", U16), ("id", U8), ("uid", U64), ("name", "S8")], size=20)


def test_fields_sit_at_packed_little_endian_offsets() -> None:
    """Built bytes put every field where a packed C struct would (checked with struct)."""
    data = build(
        PACKET,
        {
            "header": {"format": 2025, "id": 6, "uid": 2**63 + 5, "name": "abc"},
            "cars": [{"x": 1.5}, {"gear": -1, "temps": [1, 2, 3, 4]}],
            "driver": "Zoë",
        },
    )
    assert len(data) == 58
    assert pystruct.unpack_from("<HBQ", data, 0) == (2025, 6, 2**63 + 5)
    assert data[11:19] == b"abc\0\0\0\0\0"
    assert pystruct.unpack_from("<f", data, 19)[0] == 1.5
    assert pystruct.unpack_from("<fb4B", data, 28) == (0.0, -1, 1, 2, 3, 4)
    assert data[46:58] == "Zoë".encode("utf-16-le") + bytes(6)


def test_parse_reads_back_what_build_wrote() -> None:
    """parse(build(values)) gives the values back, nested structs and arrays included."""
    values = {"header": {"format": 2024, "id": 2, "uid": 7, "name": b"car"}}
    rec = parse(PACKET, build(PACKET, values))
    assert to_python(rec)["header"] == {"format": 2024, "id": 2, "uid": 7, "name": b"car"}
    assert rec["cars"][2]["gear"] == 0
    assert cstr(rec["header"]["name"]) == "car"


def test_parse_at_an_offset_and_refuses_short_data() -> None:
    """A record can be read at an offset; data too short for it raises LayoutError."""
    data = b"\xff" * 3 + build(CAR, {"x": -2.0, "gear": 3})
    assert parse(CAR, data, offset=3)["gear"] == 3
    with pytest.raises(LayoutError, match="needs 12"):
        parse(CAR, data[:-1], offset=3)


def test_build_refuses_unknown_fields() -> None:
    """A misspelt field name is an error, not silently dropped."""
    with pytest.raises(KeyError, match="gaer"):
        build(CAR, {"gaer": 1})


def test_wide_strings_round_trip_and_stop_at_nul() -> None:
    """wchar_t text is UTF-16LE, NUL-terminated and truncated to leave room for the NUL."""
    units = wchars("Spa-Francorchamps", 8)
    assert units[-1] == 0
    assert wstr(units) == "Spa-Fra"
    assert wstr(np.array([0x41, 0, 0x42], dtype=U16)) == "A"
    assert cstr(b"Hamilton\0junk") == "Hamilton"
