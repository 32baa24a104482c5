"""Live for Speed and BeamNG.drive UDP feeds on one port, sans-I/O (formats.md F).

Three one-way protocols often share a port (BeamNG sends OutGauge and MotionSim to 4444);
each datagram is told apart by its length [bytes] and magic:

====================  ==========  ============================================================
datagram              length      fields
====================  ==========  ============================================================
OutGauge              92, 96      dashboard: speed, rpm, gear, pedals, temps, lights; 96 = +ID
OutSim (legacy)       64, 68      motion: angular velocity, heading, accel, velocity, position
OutSimPack2           from opts   LFS ``OutSim Opts`` blocks; needs ``outsim_opts``
BeamNG MotionSim      88          ``"BNG1"``, then 21 floats of motion
====================  ==========  ============================================================

Every datagram becomes a sample of stream ``car`` with only its own fields (the others are
NaN in that frame). Raw names are the documents' (``Speed``, ``RPM``, ``Gear``, ``PosX``,
``OSWheels[2].AirTemp``, ``posX`` for BeamNG). OutGauge and OutSimPack2 share ``Time``,
``ID``, ``Gear``, ``Throttle``, ``Brake`` and ``Clutch``: same meaning, same channel. The
OutGauge ``Car`` name (``XRT`` in LFS, ``beam`` in BeamNG) is announced with StreamSeen.

``outsim_opts`` is LFS's ``OutSim Opts`` value (``0x1ff`` = every block). 0 or None means
the legacy OutSimPack. A Pack2 size that another datagram also has needs the ``OSO_HEADER``
block (its ``"LFST"`` magic tells them apart); without it the decoder refuses to start
(unless the two layouts are the same: Opts ``0xc`` is the legacy packet).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from pitwire.model.manifest import load_builtin
from pitwire.sources.base import DecodeError, DecoderEvent, Sample, SourceError, StreamSeen
from pitwire.sources.layout import F32, I32, U8, U16, U32, Field, cstr, struct

STREAM = "car"

# -- OutGauge -------------------------------------------------------------------------------

OUTGAUGE_FIELDS: list[Field] = [
    ("Time", U32),  # [ms] (BeamNG: 0)
    ("Car", np.dtype("S4")),
    ("Flags", U16),  # OG_SHIFT 1, OG_CTRL 2, OG_TURBO 8192, OG_KM 16384, OG_BAR 32768
    ("Gear", U8),  # 0 R, 1 N, 2 first
    ("PLID", U8),
    ("Speed", F32),  # [m/s]
    ("RPM", F32),
    ("Turbo", F32),  # [bar]
    ("EngTemp", F32),  # [°C]
    ("Fuel", F32),  # 0..1
    ("OilPressure", F32),  # [bar]
    ("OilTemp", F32),  # [°C]
    ("DashLights", U32),  # DL_x bits available
    ("ShowLights", U32),  # DL_x bits on
    ("Throttle", F32),  # 0..1
    ("Brake", F32),
    ("Clutch", F32),
    ("Display1", np.dtype("S16")),
    ("Display2", np.dtype("S16")),
]
OUTGAUGE = struct("OutGaugePack", OUTGAUGE_FIELDS, size=92)
OUTGAUGE_ID = struct("OutGaugePack+ID", [*OUTGAUGE_FIELDS, ("ID", I32)], size=96)

# -- OutSim ---------------------------------------------------------------------------------


def _vector(name: str, dtype: np.dtype[Any] = F32) -> list[Field]:
    return [(f"{name}{axis}", dtype) for axis in "XYZ"]


MAIN_FIELDS: list[Field] = [
    *_vector("AngVel"),  # [rad/s]
    ("Heading", F32),  # [rad] anticlockwise from above, 0 = facing world Y
    ("Pitch", F32),
    ("Roll", F32),
    *_vector("Accel"),  # [m/s²] world: X, Y on the ground, Z up
    *_vector("Vel"),  # [m/s] world
    *_vector("Pos", I32),  # [1/65536 m] world
]
OUTSIM = struct("OutSimPack", [("Time", U32), *MAIN_FIELDS], size=64)
OUTSIM_ID = struct("OutSimPack+ID", [("Time", U32), *MAIN_FIELDS, ("ID", I32)], size=68)

WHEEL_FIELDS: list[tuple[str, np.dtype[Any]]] = [
    ("SuspDeflect", F32),  # [m] compression from unloaded
    ("Steer", F32),  # [rad] including Ackermann and toe
    ("XForce", F32),  # [N] right
    ("YForce", F32),  # [N] forward
    ("VerticalLoad", F32),  # [N]
    ("AngVel", F32),  # [rad/s]
    ("LeanRelToRoad", F32),  # [rad]
    ("AirTemp", U8),  # [°C]
    ("SlipFraction", U8),  # 0..255
    ("Touching", U8),
    ("_Sp3", U8),
    ("SlipRatio", F32),
    ("TanSlipAngle", F32),
]

OSO_HEADER, OSO_ID, OSO_TIME, OSO_MAIN = 1, 2, 4, 8
OSO_INPUTS, OSO_DRIVE, OSO_DISTANCE, OSO_WHEELS, OSO_EXTRA_1 = 16, 32, 64, 128, 256

PACK2_BLOCKS: list[tuple[int, list[Field]]] = [
    (OSO_HEADER, [("_Header", np.dtype("S4"))]),
    (OSO_ID, [("ID", I32)]),
    (OSO_TIME, [("Time", U32)]),
    (OSO_MAIN, MAIN_FIELDS),
    (
        OSO_INPUTS,
        [
            ("Throttle", F32),
            ("Brake", F32),
            ("InputSteer", F32),
            ("Clutch", F32),
            ("Handbrake", F32),
        ],
    ),
    (
        OSO_DRIVE,
        [
            ("Gear", U8),  # 0 R, 1 N, 2 first
            ("_Sp1", U8),
            ("_Sp2", U8),
            ("_Sp3", U8),
            ("EngineAngVel", F32),  # [rad/s]
            ("MaxTorqueAtVel", F32),  # [N·m]
        ],
    ),
    (OSO_DISTANCE, [("CurrentLapDist", F32), ("IndexedDistance", F32)]),
    (
        OSO_WHEELS,
        [
            (f"_OSWheels[{i}]{name}" if name[0] == "_" else f"OSWheels[{i}].{name}", dtype)
            for i in range(4)
            for name, dtype in WHEEL_FIELDS
        ],
    ),
    (OSO_EXTRA_1, [("SteerTorque", F32), ("_Spare", F32)]),
]
"""OutSimPack2's optional blocks in datagram order: (OSO_x bit, fields)."""

_KNOWN_OPTS = sum(bit for bit, _ in PACK2_BLOCKS)


def outsim_pack2(opts: int) -> np.dtype[Any]:
    """The OutSimPack2 layout LFS sends for ``OutSim Opts`` = ``opts`` (bits OSO_x)."""
    if not 0 < opts <= _KNOWN_OPTS:
        raise ValueError(f"OutSim Opts {opts:#x}: expected a bitmask 0x1 to {_KNOWN_OPTS:#x}")
    fields = [f for bit, block in PACK2_BLOCKS if opts & bit for f in block]
    return struct(f"OutSimPack2[{opts:#x}]", fields)


# -- BeamNG MotionSim -----------------------------------------------------------------------

MOTIONSIM_FIELDS: list[Field] = [
    ("_magic", np.dtype("S4")),  # "BNG1"
    *[(f"pos{a}", F32) for a in "XYZ"],  # [m] world, Z up
    *[(f"vel{a}", F32) for a in "XYZ"],  # [m/s]
    *[(f"acc{a}", F32) for a in "XYZ"],  # [m/s²] gravity not included
    *[(f"up{a}", F32) for a in "XYZ"],  # up vector of the car
    *[(f"{r}Pos", F32) for r in ("roll", "pitch", "yaw")],  # [rad]
    *[(f"{r}Vel", F32) for r in ("roll", "pitch", "yaw")],  # [rad/s]
    *[(f"{r}Acc", F32) for r in ("roll", "pitch", "yaw")],  # [rad/s²]
]
MOTIONSIM = struct("MotionSim", MOTIONSIM_FIELDS, size=88)

_FIXED: dict[int, tuple[str, np.dtype[Any]]] = {
    92: ("OutGauge", OUTGAUGE),
    96: ("OutGauge with ID", OUTGAUGE_ID),
    64: ("OutSim", OUTSIM),
    68: ("OutSim with ID", OUTSIM_ID),
    88: ("MotionSim", MOTIONSIM),
}


class OutGaugeDecoder:
    """OutGauge, OutSim and MotionSim datagrams → samples of stream ``car``.

    outsim_opts: LFS ``OutSim Opts`` (see the module docstring); SourceError when the
    OutSimPack2 it selects cannot be told apart from the other datagrams.
    """

    name: ClassVar[str] = "outgauge"
    manifest = load_builtin("outgauge")

    def __init__(self, outsim_opts: int | None = None) -> None:
        self.outsim_opts = outsim_opts or 0
        self._pack2: np.dtype[Any] | None = None
        self._magic = False
        if self.outsim_opts:
            try:
                self._pack2 = outsim_pack2(self.outsim_opts)
            except ValueError as e:
                raise SourceError(f"outgauge: {e}") from None
            self._magic = bool(self.outsim_opts & OSO_HEADER)
            size = self._pack2.itemsize
            if size in _FIXED and not self._magic and self._pack2 != _FIXED[size][1]:
                raise SourceError(
                    f"outgauge: OutSim Opts {self.outsim_opts:#x} gives {size}-byte packets, "
                    f"the size of {_FIXED[size][0]}; add the "
                    f"header block (Opts {self.outsim_opts | OSO_HEADER:#x}) to tell them apart"
                )
        self._car: str | None = None

    def greeting(self) -> list[bytes]:
        return []

    def feed(self, data: bytes, recv_ns: int, tag: str = "") -> list[DecoderEvent]:
        n = len(data)
        pack2 = self._pack2
        if pack2 is not None and n == pack2.itemsize:
            if not self._magic or data[:4] == b"LFST":
                return [Sample(STREAM, recv_ns, _values(pack2, data))]
            if n not in _FIXED:
                raise DecodeError(
                    f"outgauge: {n} bytes (the OutSimPack2 size) without the LFST header: "
                    f"{data[:4]!r}"
                )
        fixed = _FIXED.get(n)
        if fixed is None:
            expected = sorted([*_FIXED, *([pack2.itemsize] if pack2 is not None else [])])
            raise DecodeError(
                f"outgauge: a {n}-byte datagram is none of OutGauge, OutSim or MotionSim "
                f"(lengths {', '.join(map(str, expected))})"
            )
        kind, layout = fixed
        if kind == "MotionSim" and data[:4] != b"BNG1":
            raise DecodeError(f"outgauge: 88 bytes that do not start with BNG1: {data[:4]!r}")
        if not kind.startswith("OutGauge"):
            return [Sample(STREAM, recv_ns, _values(layout, data))]
        record = np.frombuffer(data, dtype=layout, count=1)[0]
        events: list[DecoderEvent] = []
        car = cstr(record["Car"])
        if car != self._car:
            self._car = car
            events.append(StreamSeen(STREAM, car=car))
        events.append(Sample(STREAM, recv_ns, _values(layout, data)))
        return events


def _values(layout: np.dtype[Any], data: bytes) -> dict[str, float]:
    record = np.frombuffer(data, dtype=layout, count=1)[0]
    return {
        name: float(value)
        for name, value in zip(layout.names or (), record.item(), strict=True)
        if not (name.startswith("_") or isinstance(value, bytes))
    }
