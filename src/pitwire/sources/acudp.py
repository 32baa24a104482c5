"""Assetto Corsa remote telemetry (UDP port 9996), sans-I/O (formats.md B).

The client speaks first; AC answers to the address the handshake came from::

    client                                  AC
      handshaker(op HANDSHAKE)      ──►
                                    ◄──   handshakerResponse (408 B): car, driver, track
      handshaker(op SUBSCRIBE_UPDATE) ──►
                                    ◄──   RTCarInfo (328 B), one per physics step
                                    ◄──   RTLap (212 B) on spot events (SUBSCRIBE_SPOT)
      handshaker(op DISMISS)        ──►

:meth:`AcUdpDecoder.greeting` is the handshake; the response gives
:class:`SessionStarted` (when car, driver or track differ from the last one), a
:class:`StreamSeen` for stream ``car`` and a :class:`Send` of the subscription. RTCarInfo
becomes a sample of ``car`` with the document's field names (arrays as ``name[i]``, wheels
FL, FR, RL, RR). RTLap gives a sample with ``lap`` and ``time`` [ms] of the car it names:
stream ``car`` for the handshake's car and driver, ``car-N`` (N = carIdentifierNumber) for
the others, announced with their driver and car.

Strings are UTF-16LE ``wchar_t[50]`` (the document says ``char``); AC ends them with ``%``
and NULs, both stripped.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from pitwire.model.manifest import load_builtin
from pitwire.sources.base import (
    DecodeError,
    DecoderEvent,
    Notice,
    Sample,
    Send,
    SessionStarted,
    SourceError,
    StreamSeen,
)
from pitwire.sources.layout import F32, I32, U8, U16, Field, build, struct, wstr

STREAM = "car"

HANDSHAKE, SUBSCRIBE_UPDATE, SUBSCRIBE_SPOT, DISMISS = 0, 1, 2, 3
"""The handshaker's operationId values."""

HANDSHAKER = struct(
    "handshaker", [("identifier", I32), ("version", I32), ("operationId", I32)], size=12
)
HANDSHAKER_RESPONSE = struct(
    "handshackerResponse",
    [
        ("carName", U16, 50),
        ("driverName", U16, 50),
        ("identifier", I32),  # 4242
        ("version", I32),  # 1
        ("trackName", U16, 50),
        ("trackConfig", U16, 50),
    ],
    size=408,
)


def _array(name: str, n: int) -> list[Field]:
    return [(f"{name}[{i}]", F32) for i in range(n)]


RT_CAR_INFO = struct(
    "RTCarInfo",
    [
        ("_identifier", np.dtype("S1")),  # 'a'
        ("_pad0", U8, 3),
        ("size", I32),  # 328
        ("speed_Kmh", F32),
        ("speed_Mph", F32),
        ("speed_Ms", F32),
        ("isAbsEnabled", U8),
        ("isAbsInAction", U8),
        ("isTcInAction", U8),
        ("isTcEnabled", U8),
        ("isInPit", U8),
        ("isEngineLimiterOn", U8),
        ("_pad1", U8, 2),
        ("accG_vertical", F32),  # [g]
        ("accG_horizontal", F32),
        ("accG_frontal", F32),
        ("lapTime", I32),  # [ms]
        ("lastLap", I32),
        ("bestLap", I32),
        ("lapCount", I32),
        ("gas", F32),  # 0..1
        ("brake", F32),
        ("clutch", F32),
        ("engineRPM", F32),
        ("steer", F32),
        ("gear", I32),  # 0 R, 1 N, 2 first
        ("cgHeight", F32),  # [m]
        *_array("wheelAngularSpeed", 4),
        *_array("slipAngle", 4),
        *_array("slipAngle_ContactPatch", 4),
        *_array("slipRatio", 4),
        *_array("tyreSlip", 4),
        *_array("ndSlip", 4),
        *_array("load", 4),
        *_array("Dy", 4),
        *_array("Mz", 4),
        *_array("tyreDirtyLevel", 4),
        *_array("camberRAD", 4),
        *_array("tyreRadius", 4),
        *_array("tyreLoadedRadius", 4),
        *_array("suspensionHeight", 4),
        ("carPositionNormalized", F32),  # 0..1 along the lap
        ("carSlope", F32),
        *_array("carCoordinates", 3),  # [m] world, Y up
    ],
    size=328,
)
RT_LAP = struct(
    "RTLap",
    [
        ("carIdentifierNumber", I32),
        ("lap", I32),
        ("driverName", U16, 50),
        ("carName", U16, 50),
        ("time", I32),  # [ms]
    ],
    size=212,
)


def handshaker(operation: int, identifier: int = 1, version: int = 1) -> bytes:
    """The 12-byte client datagram asking for ``operation`` (HANDSHAKE, SUBSCRIBE_UPDATE,
    SUBSCRIBE_SPOT, DISMISS); AC ignores identifier and version (the document uses 1, 1)."""
    return build(
        HANDSHAKER, {"identifier": identifier, "version": version, "operationId": operation}
    )


class AcUdpDecoder:
    """Assetto Corsa remote telemetry → samples (see the module docstring).

    subscribe: ``update`` (RTCarInfo every physics step, the default) or ``spot`` (RTLap
    events only); anything else is a SourceError.
    """

    name: ClassVar[str] = "ac-udp"
    manifest = load_builtin("ac_udp")

    def __init__(self, subscribe: Literal["update", "spot"] = "update") -> None:
        if subscribe not in ("update", "spot"):
            raise SourceError(f"ac-udp: subscribe must be 'update' or 'spot', not {subscribe!r}")
        self.subscribe = subscribe
        self.session: tuple[str, str, str, str] | None = None
        """(car, driver, track, track config) of the last handshake response."""
        self._others: dict[int, tuple[str, str]] = {}

    def greeting(self) -> list[bytes]:
        return [handshaker(HANDSHAKE)]

    def dismiss(self) -> bytes:
        """The DISMISS datagram, ending the subscription (send it before closing)."""
        return handshaker(DISMISS)

    def feed(self, data: bytes, recv_ns: int, tag: str = "") -> list[DecoderEvent]:
        n = len(data)
        if n == RT_CAR_INFO.itemsize:
            return self._car_info(data, recv_ns)
        if n == RT_LAP.itemsize:
            return self._lap(data, recv_ns)
        if n == HANDSHAKER_RESPONSE.itemsize:
            return self._response(data)
        raise DecodeError(
            f"ac-udp: a {n}-byte datagram is none of handshackerResponse (408), "
            "RTCarInfo (328) or RTLap (212)"
        )

    def _response(self, data: bytes) -> list[DecoderEvent]:
        r = _record(HANDSHAKER_RESPONSE, data)
        car, driver = _text(r["carName"]), _text(r["driverName"])
        track, config = _text(r["trackName"]), _text(r["trackConfig"])
        events: list[DecoderEvent] = []
        if r["identifier"] != 4242:
            events.append(
                Notice(f"ac-udp: handshake response identifier {r['identifier']}, not 4242")
            )
        session = (car, driver, track, config)
        if session != self.session:
            self.session = session
            self._others.clear()
            where = f"{track} ({config})" if config else track
            events.append(SessionStarted(key=f"ac-udp:{where}:{car}:{driver}", track=where))
        events.append(StreamSeen(STREAM, driver=driver, car=car))
        op = SUBSCRIBE_UPDATE if self.subscribe == "update" else SUBSCRIBE_SPOT
        events.append(Send(handshaker(op)))
        return events

    def _car_info(self, data: bytes, recv_ns: int) -> list[DecoderEvent]:
        if data[:1] != b"a":
            raise DecodeError(f"ac-udp: RTCarInfo must start with identifier 'a', not {data[:1]!r}")
        record = _record(RT_CAR_INFO, data)
        if record["size"] != RT_CAR_INFO.itemsize:
            raise DecodeError(f"ac-udp: RTCarInfo says its size is {record['size']}, not 328")
        values = {
            name: float(value)
            for name, value in zip(RT_CAR_INFO.names or (), record.item(), strict=True)
            if not name.startswith("_") and name != "size"
        }
        return [Sample(STREAM, recv_ns, values)]

    def _lap(self, data: bytes, recv_ns: int) -> list[DecoderEvent]:
        r = _record(RT_LAP, data)
        car_id = int(r["carIdentifierNumber"])
        driver, car = _text(r["driverName"]), _text(r["carName"])
        values = {"lap": float(r["lap"]), "time": float(r["time"])}
        if self.session is not None and (car, driver) == self.session[:2]:
            return [Sample(STREAM, recv_ns, values)]
        stream = f"car-{car_id}"
        events: list[DecoderEvent] = []
        if self._others.get(car_id) != (driver, car):
            self._others[car_id] = (driver, car)
            events.append(StreamSeen(stream, driver=driver, car=car))
        events.append(Sample(stream, recv_ns, values))
        return events


def _record(layout: np.dtype[Any], data: bytes) -> Any:
    return np.frombuffer(data, dtype=layout, count=1)[0]


def _text(units: np.ndarray[Any, Any]) -> str:
    """A wchar_t[] field as text, without AC's ``%`` terminator."""
    return wstr(units).split("%", 1)[0].strip()
