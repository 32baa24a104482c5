import struct

import numpy as np
import pytest

from pitwire.sources import kunos_layouts as L
from pitwire.sources.layout import build, parse, to_python, wstr


@pytest.mark.parametrize(
    ("layout", "size"),
    [
        (L.PHYSICS_AC, 580),
        (L.GRAPHICS_AC, 296),
        (L.STATIC_AC, 684),
        (L.PHYSICS_ACC, 800),
        (L.GRAPHICS_ACC, 1588),
        (L.STATIC_ACC, 820),
        (L.STATIC_AC_TC15, 648),
        (L.STATIC_ACC_TC15, 784),
    ],
)
def test_layout_sizes_match_the_documents(layout: np.dtype, size: int) -> None:
    """Each page layout adds up to the size the Kunos document states (A.3 variants: 36 less)."""
    assert layout.itemsize == size


# (field values to build, [(offset, struct format, expected)]) checked with struct.unpack_from
CASES = {
    "ac physics": (
        L.PHYSICS_AC,
        {
            "packetId": 77,
            "gas": 0.25,
            "rpms": 7123,
            "speedKmh": 212.5,
            "accG": [0.5, 1.5, -0.75],
            "wheelsPressure": [27.0, 27.5, 28.0, 28.5],
            "tyreCoreTemperature": [80, 81, 82, 83.5],
            "drs": 1.0,
            "brakeTemp": [300.0, 0, 0, 0],
            "clutch": 0.125,
            "tyreContactPoint": [[0, 0, 0], [0, 0, 9.5], [0, 0, 0], [0, 0, 0]],
            "brakeBias": 0.58,
            "localVelocity": [0, 0, 55.0],
        },
        [
            (0, "<i", 77),
            (4, "<f", 0.25),
            (20, "<i", 7123),
            (28, "<f", 212.5),
            (48, "<f", 1.5),
            (88, "<f", 27.0),
            (100, "<f", 28.5),
            (164, "<f", 83.5),
            (200, "<f", 1.0),
            (348, "<f", 300.0),
            (364, "<f", 0.125),
            (440, "<f", 9.5),
            (564, "<f", np.float32(0.58)),
            (576, "<f", 55.0),
        ],
    ),
    "acc physics": (
        L.PHYSICS_ACC,
        {
            "P2PActivations": 3,
            "currentMaxRpm": 8000,
            "tcinAction": 1,
            "waterTemp": 91.5,
            "padLife": [29.0, 0, 0, 0],
            "isEngineRunning": 1,
            "absVibrations": 0.5,
        },
        [
            (580, "<i", 3),
            (588, "<i", 8000),
            (672, "<i", 1),
            (712, "<f", 91.5),
            (740, "<f", 29.0),
            (780, "<i", 1),
            (796, "<f", 0.5),
        ],
    ),
    "ac graphics": (
        L.GRAPHICS_AC,
        {
            "status": 2,
            "completedLaps": 4,
            "iCurrentTime": 61234,
            "normalizedCarPosition": 0.5,
            "carCoordinates": [1.0, 2.0, 3.0],
            "flag": 5,
            "windDirection": 1.25,
        },
        [
            (4, "<i", 2),
            (132, "<i", 4),
            (140, "<i", 61234),
            (248, "<f", 0.5),
            (260, "<f", 3.0),
            (268, "<i", 5),
            (292, "<f", 1.25),
        ],
    ),
    "acc graphics": (
        L.GRAPHICS_ACC,
        {
            "activeCars": 12,
            "carCoordinates": [[0, 0, 0], [7.5, 0, 0]] + [[0, 0, 0]] * 58,
            "carID": [0, 0, 1001] + [0] * 57,
            "playerCarID": 1001,
            "TC": 4,
            "sessionIndex": 2,
            "iDeltaLapTime": -250,
            "missingMandatoryPits": 1,
            "gapBehind": 1500,
        },
        [
            (252, "<i", 12),
            (268, "<f", 7.5),
            (984, "<i", 1001),
            (1216, "<i", 1001),
            (1268, "<i", 4),
            (1320, "<i", 2),
            (1360, "<i", -250),
            (1484, "<i", 1),
            (1584, "<i", 1500),
        ],
    ),
    "ac static": (
        L.STATIC_AC,
        {
            "sectorCount": 3,
            "maxRpm": 8500,
            "trackSPlineLength": 5793.0,
            "ersMaxJ": 2.5,
            "PitWindowEnd": 20,
        },
        [(400, "<i", 3), (412, "<i", 8500), (520, "<f", 5793.0), (592, "<f", 2.5), (680, "<i", 20)],
    ),
    "acc static": (
        L.STATIC_ACC,
        {"isOnline": 1, "PitWindowEnd": 9},
        [(684, "<i", 1), (680, "<i", 9)],
    ),
    "ac static [15]": (
        L.STATIC_AC_TC15,
        {"ersMaxJ": 2.5, "PitWindowEnd": 20},
        [(556, "<f", 2.5), (644, "<i", 20)],
    ),
    "acc static [15]": (
        L.STATIC_ACC_TC15,
        {"isOnline": 1},
        [(648, "<i", 1)],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_documented_offsets_hold_the_built_values(case: str) -> None:
    """Values built into a page sit at the documented byte offsets (read back with struct)."""
    layout, values, checks = CASES[case]
    page = build(layout, values)
    assert len(page) == layout.itemsize
    for offset, fmt, expected in checks:
        (got,) = struct.unpack_from(fmt, page, offset)
        assert got == pytest.approx(float(expected)), (case, offset)


@pytest.mark.parametrize(
    ("layout", "field", "offset"),
    [
        (L.GRAPHICS_AC, "currentTime", 12),
        (L.GRAPHICS_AC, "split", 102),
        (L.GRAPHICS_AC, "tyreCompound", 176),
        (L.GRAPHICS_ACC, "estimatedLapTime", 1364),
        (L.GRAPHICS_ACC, "trackStatus", 1416),
        (L.STATIC_AC, "smVersion", 0),
        (L.STATIC_AC, "carModel", 68),
        (L.STATIC_AC, "track", 134),
        (L.STATIC_AC, "playerName", 200),
        (L.STATIC_AC, "playerNick", 332),
        (L.STATIC_AC, "trackConfiguration", 524),
        (L.STATIC_AC, "carSkin", 604),
        (L.STATIC_ACC, "dryTyresName", 688),
        (L.STATIC_ACC, "wetTyresName", 754),
        (L.STATIC_AC_TC15, "carSkin", 568),
        (L.STATIC_ACC_TC15, "dryTyresName", 652),
    ],
)
def test_strings_are_utf16_at_documented_offsets(layout: np.dtype, field: str, offset: int) -> None:
    """wchar_t fields are 2-byte UTF-16LE code units at the documented offsets."""
    text = "Nürburgring"
    page = build(layout, {field: text})
    raw = page[offset : offset + 2 * len(text) + 2]
    assert raw == text.encode("utf-16-le") + b"\0\0"
    assert wstr(parse(layout, page)[field]) == text


def test_acc_shares_the_ac_prefix() -> None:
    """ACC's pages begin with AC's fields at the same offsets (580/252/684 bytes)."""
    for tag, prefix in (("physics", 580), ("graphics", 252), ("static", 684)):
        ac, acc = L.LAYOUTS["ac"][tag], L.LAYOUTS["acc"][tag]
        for name in ac.names:
            if ac.fields[name][1] < prefix:
                assert acc.fields[name][:2] == ac.fields[name][:2], (tag, name)


def test_build_then_parse_round_trips() -> None:
    """A page built from values parses back to the same values."""
    values = {"packetId": 9, "gear": 3, "accG": [0.25, 0.5, 0.75], "brakeBias": 0.5}
    rec = to_python(parse(L.PHYSICS_ACC, build(L.PHYSICS_ACC, values)))
    assert {k: rec[k] for k in values} == values
