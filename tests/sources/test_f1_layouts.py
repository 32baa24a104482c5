import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pitwire.sources.f1_layouts import (
    CAR_ARRAYS,
    EVENT_DETAILS,
    FORMATS,
    LAYOUTS,
    NUM_CARS,
    PACKET_NAMES,
    SIZES,
    header,
    union,
)
from pitwire.sources.layout import F32, U8, LayoutError, build, cstr, parse, struct, to_python
from support import fixture

# formats.md C.4 (2023-2025) and the F1 22 document (2022): packet id -> size [bytes].
C4 = {
    2022: [1464, 632, 972, 40, 1257, 1102, 1347, 1058, 1015, 1191, 948, 1155],
    2023: [1349, 644, 1131, 45, 1306, 1107, 1352, 1239, 1020, 1218, 953, 1460, 231, 217],
    2024: [1349, 753, 1285, 45, 1350, 1133, 1352, 1239, 1020, 1306, 953, 1460, 231, 237, 101],
    2025: [1349, 753, 1285, 45, 1284, 1133, 1352, 1239, 1042, 954, 1041, 1460, 231, 273, 101, 1131],
}
ALL_PACKETS = [(fmt, pid) for fmt in FORMATS for pid in LAYOUTS[fmt]]


def _is_union(dtype: np.dtype[Any]) -> bool:
    fields = dtype.fields or {}
    return len(fields) > 1 and all(f[1] == 0 for f in fields.values())


def _values(dtype: np.dtype[Any], rng: random.Random) -> Any:
    """Spec-typed values for every field of ``dtype`` (one member of a union)."""
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return _array(base, shape, rng)
    if dtype.names is not None:
        names = [rng.choice(dtype.names)] if _is_union(dtype) else dtype.names
        return {name: _values(dtype.fields[name][0], rng) for name in names}  # type: ignore[index]
    if dtype.kind == "S":
        return "".join(rng.choice("ABCDÉ xyz") for _ in range(rng.randrange(dtype.itemsize // 2)))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.randint(int(info.min), int(info.max))
    return float(np.float32(rng.uniform(-1e4, 1e4)).astype(dtype))


def _array(base: np.dtype[Any], shape: tuple[int, ...], rng: random.Random) -> list[Any]:
    if len(shape) > 1:
        return [_array(base, shape[1:], rng) for _ in range(shape[0])]
    return [_values(base, rng) for _ in range(shape[0])]


def _differences(expected: Any, got: Any, path: str = "") -> Iterator[str]:
    """Where ``got`` (a parsed record) differs from ``expected`` (nested dicts and lists)."""
    if isinstance(expected, dict):
        for key, value in expected.items():
            if key not in (got.dtype.names or ()):
                yield f"{path}.{key}: not in the layout"
            else:
                yield from _differences(value, got[key], f"{path}.{key}")
    elif isinstance(expected, list):
        if len(expected) != len(got):
            yield f"{path}: {len(expected)} items, the layout has {len(got)}"
        for i, (a, b) in enumerate(zip(expected, got, strict=False)):
            yield from _differences(a, b, f"{path}[{i}]")
    elif isinstance(got, bytes | np.bytes_):
        if cstr(got) != expected:
            yield f"{path}: {expected!r} != {cstr(got)!r}"
    elif isinstance(expected, str):  # the reference writes the 64-bit session UID as text
        if expected != str(int(got)):
            yield f"{path}: {expected} != {got}"
    elif got.dtype.kind == "f":
        if np.array(expected, got.dtype) != got:
            yield f"{path}: {expected!r} != {got!r} as {got.dtype}"
    elif expected != int(got):
        yield f"{path}: {expected!r} != {got!r}"


def test_sizes_match_the_documents() -> None:
    """Every packet id of every format has the size the EA documents give (C.4)."""
    assert {fmt: [SIZES[fmt][pid] for pid in sorted(SIZES[fmt])] for fmt in FORMATS} == C4
    for fmt in FORMATS:
        assert sorted(LAYOUTS[fmt]) == list(range(len(C4[fmt])))
        assert [LAYOUTS[fmt][pid].itemsize for pid in sorted(LAYOUTS[fmt])] == C4[fmt]


def test_headers_and_per_car_arrays() -> None:
    """Headers are 24 bytes in 2022 and 29 after; per-car arrays hold 22 cars after the header."""
    assert header(2022).itemsize == 24
    assert all(header(fmt).itemsize == 29 for fmt in FORMATS[1:])
    for fmt, pid in ALL_PACKETS:
        layout = LAYOUTS[fmt][pid]
        assert layout.names[0] == "m_header" and layout["m_header"] == header(fmt)
        if pid in CAR_ARRAYS:
            assert layout[CAR_ARRAYS[pid]].shape == (NUM_CARS,)


def test_per_car_structs_have_documented_sizes() -> None:
    """Motion/telemetry cars are 60 bytes, lap data 43/50/57, status 47/55, damage 42/46."""
    car = {
        (fmt, pid): LAYOUTS[fmt][pid][CAR_ARRAYS[pid]].base.itemsize
        for fmt, pid in ALL_PACKETS
        if pid in CAR_ARRAYS
    }
    assert {car[fmt, 0] for fmt in FORMATS} == {car[fmt, 6] for fmt in FORMATS} == {60}
    assert [car[fmt, 2] for fmt in FORMATS] == [43, 50, 57, 57]
    assert [car[fmt, 7] for fmt in FORMATS] == [47, 55, 55, 55]
    assert [car[fmt, 10] for fmt in FORMATS] == [42, 42, 42, 46]
    assert [car[fmt, 4] for fmt in FORMATS] == [56, 58, 60, 57]


@pytest.mark.parametrize(("fmt", "pid"), ALL_PACKETS, ids=lambda v: str(v))
def test_every_packet_round_trips(fmt: int, pid: int) -> None:
    """Spec-typed values for every field build bytes of the documented size that parse back."""
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    layout = LAYOUTS[fmt][pid]
    values = _values(layout, rng)
    data = build(layout, values)
    assert len(data) == SIZES[fmt][pid]
    assert list(_differences(values, parse(layout, data))) == []
    if pid != 3:  # a union's members overlap, so only one of them can be written back
        assert build(layout, to_python(parse(layout, data))) == data


def test_event_details_are_a_union() -> None:
    """Event details are 12 bytes whose members all start at offset 0."""
    for fmt in FORMATS:
        details = LAYOUTS[fmt][3]["m_eventDetails"]
        assert details.itemsize == 12
        assert {offset for _, offset in details.fields.values()} == {0}
        assert set(EVENT_DETAILS.values()) >= set(details.names)
    assert "Collision" not in LAYOUTS[2023][3]["m_eventDetails"].names
    assert "DRSDisabled" in LAYOUTS[2025][3]["m_eventDetails"].names


def test_union_rejects_members_larger_than_itself() -> None:
    """A union member larger than the union is a LayoutError naming it."""
    big = struct("big", [("a", F32), ("b", F32)])
    with pytest.raises(LayoutError, match="big"):
        union("u", {"big": big, "small": struct("small", [("c", U8)])}, size=4)


def test_packet_names_cover_every_id() -> None:
    """Every packet id of every format has a name."""
    assert all(pid in PACKET_NAMES for _, pid in ALL_PACKETS)


# -- real captures ---------------------------------------------------------------------------


def _captures(year: int) -> list[tuple[bytes, dict[str, Any]]]:
    path: Path = fixture(f"f1-udp/{year}.jsonl")
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        message = row["message"]
        out.append(
            (bytes(message["data"] if isinstance(message, dict) else message), row["parsed"])
        )
    return out


def _reference_session_layout(fmt: int) -> np.dtype[Any]:
    """The session layout of the reference parser: 56 forecast samples, as in F1 23.

    Its 2024 and 2025 decodes read the fields after the samples 64 bytes early (the F1 24 and
    F1 25 documents give 64 samples; the plausible sector distances below agree)."""
    layout = LAYOUTS[fmt][1]
    start = layout.fields["m_weatherForecastSamples"][1]
    sample = layout["m_weatherForecastSamples"].base
    names, formats, offsets = [], [], []
    for name in layout.names:
        dtype, offset = layout.fields[name][:2]
        if name == "m_weatherForecastSamples":
            dtype = np.dtype((sample, 56))
        elif offset > start:
            offset -= 8 * sample.itemsize
        names.append(name)
        formats.append(dtype)
        offsets.append(offset)
    return np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": layout.itemsize}
    )


def _expected(fmt: int, pid: int, parsed: dict[str, Any], record: Any) -> dict[str, Any]:
    """The reference decode as this layout reads it, its known departures undone."""
    parsed = dict(parsed)
    if pid in (2, 11):
        # Where a time has whole minutes, the reference folds them into its milliseconds
        # field and leaves the minutes field out.
        key = "m_lapData" if pid == 2 else "m_lapHistoryData"
        rows = []
        for row, got in zip(parsed[key], record[key], strict=True):
            row = dict(row)
            for name in list(row):
                minutes = name.replace("InMS", "Minutes")
                if minutes in (got.dtype.names or ()) and minutes not in row:
                    row[name] -= 60000 * int(got[minutes])
            rows.append(row)
        parsed[key] = rows
    return parsed


@pytest.mark.parametrize("year", FORMATS)
def test_every_captured_datagram_matches_the_reference_decode(year: int) -> None:
    """Every real datagram parses to the reference project's values, field by field."""
    captures = _captures(year)
    assert captures
    for data, parsed in captures:
        pid = parsed["m_header"]["m_packetId"]
        layout = LAYOUTS[year][pid]
        record = parse(layout, data)
        assert len(data) == layout.itemsize
        expected = _expected(year, pid, parsed, record)
        problems: list[str] = []
        if pid == 3 and "m_eventDetails" in expected:
            details = expected.pop("m_eventDetails")
            member = EVENT_DETAILS[expected["m_eventStringCode"]]
            problems += _differences(details, record["m_eventDetails"][member], member)
        if pid == 1 and year >= 2024:
            reference = parse(_reference_session_layout(year), data)
            forecast = expected.pop("m_weatherForecastSamples")
            problems += _differences(forecast, reference["m_weatherForecastSamples"], "forecast")
            problems += _differences(forecast, record["m_weatherForecastSamples"][:56], "ours")
            after = list(expected)[list(expected).index("m_numWeatherForecastSamples") + 1 :]
            problems += _differences({k: expected.pop(k) for k in after}, reference, "after")
            assert 0 < record["m_sector2LapDistanceStart"] < record["m_sector3LapDistanceStart"]
            assert record["m_sector3LapDistanceStart"] < record["m_trackLength"]
        problems += _differences(expected, record)
        assert problems == [], f"{year} {PACKET_NAMES[pid]}"


@pytest.mark.parametrize("year", FORMATS)
def test_captures_cover_the_packet_ids(year: int) -> None:
    """The captures hold these packet types, so the comparison above covers each of them."""
    ids = {parsed["m_header"]["m_packetId"] for _, parsed in _captures(year)}
    expected = {
        2022: set(range(12)) - {9},
        2023: set(range(14)) - {9},
        2024: set(range(14)) - {8, 9},
        2025: {0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13},
    }
    assert ids == expected[year]
