"""Forza "Data Out" UDP (Forza Motorsport 7 and 2023, Forza Horizon 4, 5 and 6), sans-I/O.

The game sends one datagram per frame to a configured address, one way, without a
handshake (formats.md D). The variant is known by the datagram's length [bytes]:

========  ==================================================================  ===========
length    variant                                                             games
========  ==================================================================  ===========
232       ``sled``: motion data                                               FM7, FM2023
311       ``dash``: sled + dashboard data                                     FM7
324       ``horizon``: sled + 12-byte Horizon block + dash + 1 padding byte   FH4, FH5, FH6
331       ``fm2023``: dash + 4 TireWear + TrackOrdinal                        FM2023
========  ==================================================================  ===========

Raw field names are the document's (``IsRaceOn``, ``TimestampMS``, ``CurrentEngineRpm``,
``TireTempFrontLeft``, ...). The Horizon block is undocumented: its first int is the car
category (community finding), the other two are kept as ``HorizonUnknown1``/``2``.

``IsRaceOn == 0`` means menus or pause: such datagrams give no sample (a :class:`Notice` when
the race stops). The car is announced as ``car ordinal N`` when its ordinal changes.

:func:`encode_dash` builds a datagram from field values (tests, replays) and
:func:`rows_from_csv` reads a recorder's CSV (one column per Dash field) back into them.
"""

from __future__ import annotations

import csv
import math
import os
import struct as pystruct
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from pitwire.model.manifest import load_builtin
from pitwire.sources.base import DecodeError, DecoderEvent, Notice, Sample, StreamSeen
from pitwire.sources.layout import F32, I8, I32, U8, U16, U32, Field, build, struct

STREAM = "car"
"""The one stream of a Forza feed: the player's car."""

_WHEELS = ("FrontLeft", "FrontRight", "RearLeft", "RearRight")


def _wheels(prefix: str, dtype: np.dtype[Any]) -> list[Field]:
    return [(f"{prefix}{w}", dtype) for w in _WHEELS]


SLED_FIELDS: list[Field] = [
    ("IsRaceOn", I32),  # 1 racing, 0 in menus / paused
    ("TimestampMS", U32),  # [ms], wraps
    ("EngineMaxRpm", F32),
    ("EngineIdleRpm", F32),
    ("CurrentEngineRpm", F32),
    ("AccelerationX", F32),  # [m/s²] car space: X right, Y up, Z forward
    ("AccelerationY", F32),
    ("AccelerationZ", F32),
    ("VelocityX", F32),  # [m/s] car space
    ("VelocityY", F32),
    ("VelocityZ", F32),
    ("AngularVelocityX", F32),  # [rad/s] X pitch, Y yaw, Z roll
    ("AngularVelocityY", F32),
    ("AngularVelocityZ", F32),
    ("Yaw", F32),  # [rad]
    ("Pitch", F32),
    ("Roll", F32),
    *_wheels("NormalizedSuspensionTravel", F32),  # 0 stretched .. 1 compressed
    *_wheels("TireSlipRatio", F32),
    *_wheels("WheelRotationSpeed", F32),  # [rad/s]
    *_wheels("WheelOnRumbleStrip", I32),
    *_wheels("WheelInPuddleDepth", F32),  # 0..1
    *_wheels("SurfaceRumble", F32),
    *_wheels("TireSlipAngle", F32),
    *_wheels("TireCombinedSlip", F32),
    *_wheels("SuspensionTravelMeters", F32),  # [m]
    ("CarOrdinal", I32),
    ("CarClass", I32),
    ("CarPerformanceIndex", I32),
    ("DrivetrainType", I32),  # 0 FWD, 1 RWD, 2 AWD
    ("NumCylinders", I32),
]

HORIZON_FIELDS: list[Field] = [
    ("CarCategory", I32),
    ("HorizonUnknown1", I32),
    ("HorizonUnknown2", I32),
]

DASH_FIELDS: list[Field] = [
    ("PositionX", F32),  # [m] world, Y up
    ("PositionY", F32),
    ("PositionZ", F32),
    ("Speed", F32),  # [m/s]
    ("Power", F32),  # [W]
    ("Torque", F32),  # [N·m]
    *_wheels("TireTemp", F32),  # [°F]
    ("Boost", F32),  # [psi]
    ("Fuel", F32),  # 0..1
    ("DistanceTraveled", F32),  # [m]
    ("BestLap", F32),  # [s]
    ("LastLap", F32),
    ("CurrentLap", F32),
    ("CurrentRaceTime", F32),
    ("LapNumber", U16),  # completed laps
    ("RacePosition", U8),
    ("Accel", U8),  # 0..255
    ("Brake", U8),
    ("Clutch", U8),
    ("HandBrake", U8),
    ("Gear", U8),  # 0 reverse, 1..10, 11 neutral
    ("Steer", I8),  # -127..127, positive = right
    ("NormalizedDrivingLine", I8),
    ("NormalizedAIBrakeDifference", I8),
]

FM2023_FIELDS: list[Field] = [*_wheels("TireWear", F32), ("TrackOrdinal", I32)]

SLED = struct("Sled", SLED_FIELDS, size=232)
DASH = struct("Dash", [*SLED_FIELDS, *DASH_FIELDS], size=311)
HORIZON = struct(
    "HorizonDash", [*SLED_FIELDS, *HORIZON_FIELDS, *DASH_FIELDS, ("_pad", U8)], size=324
)
FM2023 = struct("Fm2023Dash", [*SLED_FIELDS, *DASH_FIELDS, *FM2023_FIELDS], size=331)

VARIANTS: dict[str, np.dtype[Any]] = {
    "sled": SLED,
    "dash": DASH,
    "horizon": HORIZON,
    "fm2023": FM2023,
}
"""Layouts by variant name (see the module docstring)."""

_BY_LENGTH = {layout.itemsize: layout for layout in VARIANTS.values()}
_SIZES = ", ".join(f"{layout.itemsize} ({name})" for name, layout in VARIANTS.items())


def field_names(variant: str = "dash") -> list[str]:
    """The raw field names of ``variant``, in datagram order (padding left out)."""
    return [name for name in _layout(variant).names or () if not name.startswith("_")]


class ForzaDecoder:
    """Forza Data Out datagrams → samples of stream ``car`` (see the module docstring)."""

    name: ClassVar[str] = "forza"
    manifest = load_builtin("forza")

    def __init__(self) -> None:
        self._racing: bool | None = None
        self._car: int | None = None

    def greeting(self) -> list[bytes]:
        return []

    def feed(self, data: bytes, recv_ns: int, tag: str = "") -> list[DecoderEvent]:
        layout = _BY_LENGTH.get(len(data))
        if layout is None:
            raise DecodeError(
                f"forza: a {len(data)}-byte datagram is no Data Out variant "
                f"(known lengths: {_SIZES})"
            )
        record = np.frombuffer(data, dtype=layout, count=1)[0]
        values = {
            name: float(value)
            for name, value in zip(layout.names or (), record.item(), strict=True)
            if not name.startswith("_")
        }
        if values["IsRaceOn"] not in (0, 1):
            # No magic number in this format: a 32-bit flag that is neither 0 nor 1 is how
            # stray datagrams of the right length show themselves.
            raise DecodeError(
                f"forza: IsRaceOn is {values['IsRaceOn']:g}, not 0 or 1: not a Data Out datagram"
            )
        if values["IsRaceOn"] == 0:
            events: list[DecoderEvent] = []
            if self._racing is not False:
                events.append(Notice("forza: IsRaceOn is 0 (menus or paused); no samples"))
            self._racing = False
            return events
        self._racing = True
        events = []
        car = int(values["CarOrdinal"])
        if car != self._car:
            self._car = car
            events.append(StreamSeen(STREAM, car=f"car ordinal {car}"))
        events.append(Sample(STREAM, recv_ns, values))
        return events


def encode_dash(values: Mapping[str, float], variant: str = "dash") -> bytes:
    """A ``variant`` datagram (``sled``, ``dash``, ``horizon``, ``fm2023``) from raw field
    values; fields not given are 0. Integer fields must get whole numbers in their type's
    range, float fields are rounded to float32; anything else raises ValueError."""
    layout = _layout(variant)
    checked: dict[str, float | int] = {}
    for name, value in values.items():
        if name not in (layout.names or ()) or name.startswith("_"):
            raise ValueError(f"forza {variant}: no field {name!r}")
        dtype = _field_dtype(layout, name)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if not (float(value).is_integer() and info.min <= value <= info.max):
                raise ValueError(
                    f"forza {variant}: {name} must be a whole number in "
                    f"[{info.min}, {info.max}], not {value!r}"
                )
            checked[name] = int(value)
        else:
            checked[name] = float(value)
    return build(layout, checked)


def rows_from_csv(path: str | os.PathLike[str]) -> list[dict[str, float]]:
    """The rows of a Data Out CSV as raw Dash field values, exactly as a decoded datagram
    carries them (``ForzaDecoder`` gives the same values for ``encode_dash(row)``).

    The CSV has a header line and one column per Dash field in document order (311-byte
    layout, 85 columns; the header's names may differ from the document's: columns are read
    by position); a UTF-8 byte-order mark is allowed. Recorders that read fields with the
    wrong type are undone: ``True``/``False`` is 1/0; a whole-number field holding a
    fraction was read as float32 (``1E-45`` is the int 1); a signed byte above 127 was read
    unsigned (174 is -82). Fields the recorder truncated stay truncated. Raises ValueError
    naming the line of a value that does not fit.
    """
    names = field_names("dash")
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or len(header) != len(names):
            got = "no header" if header is None else f"{len(header)} columns"
            raise ValueError(f"{os.fspath(path)}: {got}; a Dash CSV has {len(names)} columns")
        rows = []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(names):
                raise ValueError(
                    f"{os.fspath(path)}:{line}: {len(row)} values, expected {len(names)}"
                )
            try:
                rows.append({n: _csv_value(n, text) for n, text in zip(names, row, strict=True)})
            except ValueError as e:
                raise ValueError(f"{os.fspath(path)}:{line}: {e}") from None
    return rows


def _csv_value(name: str, text: str) -> float:
    dtype = _field_dtype(DASH, name)
    word = text.strip()
    value = {"true": 1.0, "false": 0.0}.get(word.lower())
    if value is None:
        value = float(word)
    if not math.isfinite(value):
        raise ValueError(f"{name} = {text!r} is not a finite number")
    if dtype.kind == "f":
        return float(np.float32(value))
    if not value.is_integer():
        # A recorder read this int field as a float32: take its bits back.
        value = float(pystruct.unpack("<i", pystruct.pack("<f", value))[0])
    info = np.iinfo(dtype)
    if dtype.kind == "i" and dtype.itemsize == 1 and info.max < value <= 255:
        value -= 256  # a signed byte read unsigned
    if not info.min <= value <= info.max:
        raise ValueError(f"{name} = {text!r} does not fit {dtype}")
    return value


def _layout(variant: str) -> np.dtype[Any]:
    layout = VARIANTS.get(variant)
    if layout is None:
        raise ValueError(f"unknown Forza variant {variant!r} (known: {', '.join(VARIANTS)})")
    return layout


def _field_dtype(layout: np.dtype[Any], name: str) -> np.dtype[Any]:
    fields = layout.fields
    if fields is None or name not in fields:
        raise ValueError(f"no field {name!r}")
    dtype: np.dtype[Any] = fields[name][0]
    return dtype
