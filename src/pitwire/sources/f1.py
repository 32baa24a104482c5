"""The EA F1 UDP telemetry decoder (formats 2022, 2023, 2024, 2025), sans-I/O.

Every datagram is one packet: a header (``m_packetFormat``, ``m_packetId``, the session UID,
frame identifiers), then the packet's data, often an array of the 22 cars. The decoder keeps the
latest per-car values of the motion, lap data, car status, car damage, session and event packets
in one ``(22, fields)`` float64 table, and when a Car Telemetry packet arrives (the game sends
one per frame at the configured rate) it returns one :class:`Sample` per active car with the
whole row: the car's telemetry and everything else known about it. A car is stream
``car-{index}``, its index in the game's arrays; the 22 cars are the streams of one session.

- Participants → :class:`StreamSeen` (driver name, team) when a car appears or changes.
- A new nonzero ``m_sessionUID`` → :class:`SessionStarted` (track from the session packet when
  this datagram is it), and the per-car table starts empty (NaN) again.
- Events: ``FTLP`` marks which car holds the session's fastest lap; others are ignored.
- Session History (one car per packet) gives each car's best lap time.
- Active cars: the first ``m_numActiveCars`` indices once participants are known; before, the
  cars whose lap data says they exist (``m_resultStatus`` not 0), or, before lap data, whose
  telemetry is not all zeros.

Raw names in samples are the layout field names (``m_speed``), array elements with their index
(``m_tyresPressure[2]``, wheel order RL, RR, FL, FR); a few values combine fields and have names
of their own: ``sector1TimeMS``, ``sector2TimeMS``, ``deltaToCarInFrontMS``,
``deltaToRaceLeaderMS`` (whole minutes and milliseconds parts added up [ms]), ``bestLapTimeMS``
[ms] and ``fastestLap`` (1 for the holder of the session's fastest lap, else 0). Format 2022 has
no ``m_overallFrameIdentifier``; its ``m_frameIdentifier`` fills that name.

Bytes that are not an F1 packet of a supported format (too short, unknown format or packet id,
wrong size for its id) raise :class:`DecodeError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pitwire.model.manifest import Manifest, load_builtin
from pitwire.sources.base import (
    DecodeError,
    DecoderEvent,
    Notice,
    Sample,
    SessionStarted,
    StreamSeen,
)
from pitwire.sources.f1_layouts import (
    CAR_ARRAYS,
    EVENT_DETAILS,
    LAYOUTS,
    NUM_CARS,
    PACKET_NAMES,
    header,
)
from pitwire.sources.layout import cstr

TRACKS: dict[int, str] = {
    0: "Melbourne",
    1: "Paul Ricard",
    2: "Shanghai",
    3: "Sakhir (Bahrain)",
    4: "Catalunya",
    5: "Monaco",
    6: "Montreal",
    7: "Silverstone",
    8: "Hockenheim",
    9: "Hungaroring",
    10: "Spa",
    11: "Monza",
    12: "Singapore",
    13: "Suzuka",
    14: "Abu Dhabi",
    15: "Texas",
    16: "Brazil",
    17: "Austria",
    18: "Sochi",
    19: "Mexico",
    20: "Baku (Azerbaijan)",
    21: "Sakhir Short",
    22: "Silverstone Short",
    23: "Texas Short",
    24: "Suzuka Short",
    25: "Hanoi",
    26: "Zandvoort",
    27: "Imola",
    28: "Portimão",
    29: "Jeddah",
    30: "Miami",
    31: "Las Vegas",
    32: "Losail",
    39: "Silverstone (Reverse)",
    40: "Austria (Reverse)",
    41: "Zandvoort (Reverse)",
    42: "Madrid",
}
"""``m_trackId`` → track name (the appendix of the EA documents; -1 is unknown)."""

_TEAMS_2022: tuple[str, ...] = ("Mercedes", "Ferrari", "Red Bull Racing", "Williams")
_TEAMS_2022 += ("Aston Martin", "Alpine", "Alpha Tauri", "Haas", "McLaren", "Alfa Romeo")
_TEAMS_2024 = (*_TEAMS_2022[:6], "RB", "Haas", "McLaren", "Sauber")
_F2_24: tuple[str, ...] = ("Art GP", "Campos", "Rodin Motorsport", "AIX Racing", "DAMS")
_F2_24 += ("Hitech", "MP Motorsport", "Prema", "Trident", "Van Amersfoort Racing", "Invicta")
_F2_23: tuple[str, ...] = ("Art GP", "Campos", "Carlin", "PHM", "Dams", "Hitech")
_F2_23 += ("MP Motorsport", "Prema", "Trident", "Van Amersfoort Racing", "Virtuosi")
_OTHER_TEAMS = {41: "F1 Generic", 104: "F1 Custom Team"}


def _teams(fmt: int) -> dict[int, str]:
    current = _TEAMS_2024 if fmt >= 2024 else _TEAMS_2022
    teams = {**dict(enumerate(current)), **_OTHER_TEAMS}
    if fmt == 2024:
        teams |= {143 + k: f"{name} '23" for k, name in enumerate(_F2_23)}
    if fmt >= 2025:
        teams |= {129: "Konnersport", 142: "APXGP '24", 154: "APXGP '25", 155: "Konnersport '24"}
        teams |= {158 + k: f"{name} '24" for k, name in enumerate(_F2_24)}
        teams |= {185 + k: f"{name} '24" for k, name in enumerate(_TEAMS_2024)}
    return teams


TEAMS: dict[int, dict[int, str]] = {fmt: _teams(fmt) for fmt in LAYOUTS}
"""``TEAMS[packet_format][m_teamId]`` → team name (other ids read ``team {id}``)."""


def track_name(track_id: int) -> str:
    """The name of ``m_trackId`` (``""`` for -1, ``track {id}`` for ids not in the table)."""
    if track_id < 0:
        return ""
    return TRACKS.get(track_id, f"track {track_id}")


def team_name(fmt: int, team_id: int) -> str:
    """The name of ``m_teamId`` in format ``fmt`` (``""`` for 255, no team)."""
    if team_id == 255:
        return ""
    return TEAMS.get(fmt, {}).get(team_id, f"team {team_id}")


# -- what the decoder keeps per car ---------------------------------------------------------

_PER_CAR: dict[int, tuple[str, ...]] = {
    0: (
        *("m_worldPositionX", "m_worldPositionY", "m_worldPositionZ"),
        *("m_gForceLateral", "m_gForceLongitudinal", "m_gForceVertical"),
        *("m_yaw", "m_pitch", "m_roll"),
    ),
    2: (
        *("m_lastLapTimeInMS", "m_currentLapTimeInMS", "m_lapDistance", "m_totalDistance"),
        *("m_carPosition", "m_currentLapNum", "m_pitStatus", "m_numPitStops", "m_sector"),
        *("m_currentLapInvalid", "m_penalties", "m_gridPosition", "m_driverStatus"),
        *("m_resultStatus", "m_speedTrapFastestSpeed"),
    ),
    6: (
        *("m_speed", "m_throttle", "m_steer", "m_brake", "m_clutch", "m_gear", "m_engineRPM"),
        *("m_drs", "m_revLightsPercent", "m_brakesTemperature", "m_tyresSurfaceTemperature"),
        *("m_tyresInnerTemperature", "m_engineTemperature", "m_tyresPressure"),
    ),
    7: (
        *("m_frontBrakeBias", "m_pitLimiterStatus", "m_fuelInTank", "m_fuelRemainingLaps"),
        *("m_maxRPM", "m_drsAllowed", "m_actualTyreCompound", "m_visualTyreCompound"),
        *("m_tyresAgeLaps", "m_vehicleFiaFlags", "m_ersStoreEnergy", "m_ersDeployMode"),
    ),
    10: (
        *("m_tyresWear", "m_frontLeftWingDamage", "m_frontRightWingDamage", "m_rearWingDamage"),
        *("m_floorDamage", "m_diffuserDamage", "m_sidepodDamage", "m_gearBoxDamage"),
        "m_engineDamage",
    ),
}
"""Per packet id: the fields of its per-car array the decoder keeps (arrays: every element)."""

_MINUTES_AND_MS: dict[str, tuple[str, str]] = {
    "sector1TimeMS": ("m_sector1TimeMinutes", "m_sector1TimeInMS"),
    "sector2TimeMS": ("m_sector2TimeMinutes", "m_sector2TimeInMS"),
    "deltaToCarInFrontMS": ("m_deltaToCarInFrontMinutes", "m_deltaToCarInFrontInMS"),
    "deltaToRaceLeaderMS": ("m_deltaToRaceLeaderMinutes", "m_deltaToRaceLeaderInMS"),
}
"""Lap data times kept as one number [ms]: (minutes part, milliseconds part) added up."""

_HEADER_FIELDS = ("m_overallFrameIdentifier", "m_sessionTime")
_SESSION_FIELDS = ("m_trackTemperature", "m_airTemperature", "m_weather", "m_safetyCarStatus")
_EXTRA_FIELDS = ("bestLapTimeMS", "fastestLap")


def _expand(car: np.dtype[Any], names: Sequence[str]) -> list[str]:
    out = []
    for name in names:
        shape = car.fields[name][0].shape if car.fields else ()
        out += [f"{name}[{k}]" for k in range(shape[0])] if shape else [name]
    return out


def _raw_fields() -> tuple[str, ...]:
    newest = LAYOUTS[max(LAYOUTS)]
    names = list(_HEADER_FIELDS)
    for pid, wanted in _PER_CAR.items():
        names += _expand(newest[pid][CAR_ARRAYS[pid]].base, wanted)
        if pid == 2:
            names += list(_MINUTES_AND_MS)
    return (*names, *_SESSION_FIELDS, *_EXTRA_FIELDS)


RAW_FIELDS: tuple[str, ...] = _raw_fields()
"""Every raw field name a sample carries, in column order."""

_COLUMN = {name: k for k, name in enumerate(RAW_FIELDS)}
_STREAMS = tuple(f"car-{i}" for i in range(NUM_CARS))


@dataclass(frozen=True, slots=True)
class _Copy:
    """state[:, start:stop] = cars[field] (* 60000 + cars[ms], for a minutes/ms pair)."""

    start: int
    stop: int
    field: str
    ms: str | None = None


def _plan(fmt: int, pid: int) -> tuple[np.dtype[Any], int, tuple[_Copy, ...]]:
    """The per-car dtype, its offset and the copies that update the table from packet ``pid``."""
    layout = LAYOUTS[fmt][pid]
    name = CAR_ARRAYS[pid]
    car: np.dtype[Any] = layout[name].base
    fields: Mapping[str, Any] = car.fields or {}
    copies = []
    for field in _PER_CAR[pid]:
        if field in fields:
            first = f"{field}[0]" if fields[field][0].shape else field
            start = _COLUMN[first]
            copies.append(_Copy(start, start + max(fields[field][0].shape or (1,)), field))
    if pid == 2:
        for raw, (minutes, ms) in _MINUTES_AND_MS.items():
            col = _COLUMN[raw]
            if minutes in fields:
                copies.append(_Copy(col, col + 1, minutes, ms))
            elif ms in fields:
                copies.append(_Copy(col, col + 1, ms))
    packet_fields: Mapping[str, Any] = layout.fields or {}
    return car, packet_fields[name][1], tuple(copies)


_PLANS = {(fmt, pid): _plan(fmt, pid) for fmt in LAYOUTS for pid in _PER_CAR}
_HEADERS = {fmt: header(fmt) for fmt in LAYOUTS}
_HEADER_INDEX = {  # positions in header(fmt).item(): packet id, UID, session time, frame
    fmt: tuple(
        (_HEADERS[fmt].names or ()).index(n)
        for n in (
            "m_packetId",
            "m_sessionUID",
            "m_sessionTime",
            "m_frameIdentifier" if fmt == 2022 else "m_overallFrameIdentifier",
        )
    )
    for fmt in LAYOUTS
}
_MIN_HEADER = min(h.itemsize for h in _HEADERS.values())


class F1Decoder:
    """EA F1 UDP datagrams → decoder events (see the module docstring).

    manifest: raw field → channel mapping; the builtin ``f1`` manifest by default.
    """

    name: ClassVar[str] = "f1"

    def __init__(self, manifest: Manifest | None = None) -> None:
        self.manifest = load_builtin("f1") if manifest is None else manifest
        self._state = np.full((NUM_CARS, len(RAW_FIELDS)), np.nan)
        self._uid = 0
        self._track = ""
        self._num_active: int | None = None
        self._seen: dict[int, tuple[str, str]] = {}
        self._restricted_noted = False

    def greeting(self) -> list[bytes]:
        """F1 games send unprompted: nothing to say."""
        return []

    def feed(self, data: bytes, recv_ns: int, tag: str = "") -> list[DecoderEvent]:
        """Decode one datagram received at ``recv_ns`` [ns since epoch]."""
        size = len(data)
        if size < _MIN_HEADER:
            raise DecodeError(f"{size}-byte datagram is shorter than an F1 packet header")
        fmt = data[0] | data[1] << 8
        layouts = LAYOUTS.get(fmt)
        if layouts is None:
            known = ", ".join(map(str, LAYOUTS))
            raise DecodeError(f"unknown F1 packet format {fmt} (this decoder reads {known})")
        if size < _HEADERS[fmt].itemsize:
            raise DecodeError(f"{size}-byte datagram is shorter than an F1 {fmt} packet header")
        head = np.frombuffer(data, _HEADERS[fmt], 1)[0].item()
        i_pid, i_uid, i_time, i_frame = _HEADER_INDEX[fmt]
        pid = head[i_pid]
        layout = layouts.get(pid)
        if layout is None:
            raise DecodeError(f"unknown packet id {pid} in F1 format {fmt}")
        if size != layout.itemsize:
            raise DecodeError(
                f"F1 {fmt} {PACKET_NAMES[pid]} packet (id {pid}) is {layout.itemsize} bytes, "
                f"this datagram {size}"
            )
        events: list[DecoderEvent] = []
        uid = head[i_uid]
        if uid and uid != self._uid:
            self._new_session(uid, fmt, pid, data, events)
        if pid in _PER_CAR:
            car, offset, copies = _PLANS[fmt, pid]
            cars = np.frombuffer(data, car, NUM_CARS, offset)
            state = self._state
            with np.errstate(invalid="ignore"):  # signalling NaNs are kept as NaN, silently
                for c in copies:
                    if c.ms is not None:
                        state[:, c.start] = cars[c.field] * 60000.0 + cars[c.ms]
                    elif c.stop - c.start == 1:
                        state[:, c.start] = cars[c.field]
                    else:
                        state[:, c.start : c.stop] = cars[c.field]
            if pid == 6:
                state[:, _COLUMN["m_overallFrameIdentifier"]] = head[i_frame]
                state[:, _COLUMN["m_sessionTime"]] = head[i_time]
                events += self._samples(cars, recv_ns)
        elif pid == 1:
            self._session(layout, data)
            track = track_name(int(np.frombuffer(data, layout, 1)[0]["m_trackId"]))
            if track and track != self._track:  # the session's track became known
                self._track = track
                events.append(SessionStarted(key=str(self._uid), track=track))
        elif pid == 3:
            self._event(layout, data)
        elif pid == 4:
            events += self._participants(fmt, layout, data, head[-2])
        elif pid == 11:
            self._history(layout, data)
        return events

    # -- per packet ---------------------------------------------------------------------------

    def _new_session(
        self, uid: int, fmt: int, pid: int, data: bytes, events: list[DecoderEvent]
    ) -> None:
        self._uid = uid
        self._state.fill(np.nan)
        self._num_active = None
        self._seen.clear()
        self._restricted_noted = False
        track = ""
        if pid == 1:
            track = track_name(int(np.frombuffer(data, LAYOUTS[fmt][1], 1)[0]["m_trackId"]))
        self._track = track
        events.append(SessionStarted(key=str(uid), track=track))

    def _samples(self, telemetry: np.ndarray[Any, Any], recv_ns: int) -> list[DecoderEvent]:
        if self._num_active is not None:
            active: Sequence[int] = range(self._num_active)
            rows = self._state[: self._num_active].tolist()
        else:
            status = self._state[:, _COLUMN["m_resultStatus"]]
            raw = telemetry.view(np.uint8).reshape(NUM_CARS, -1)
            present = np.where(np.isnan(status), raw.any(axis=1), status != 0)
            active = np.flatnonzero(present).tolist()
            rows = self._state[active].tolist()
        names = RAW_FIELDS  # every row has len(RAW_FIELDS) values: no need to check
        return [
            Sample(_STREAMS[i], recv_ns, dict(zip(names, row, strict=False)))
            for i, row in zip(active, rows, strict=True)
        ]

    def _session(self, layout: np.dtype[Any], data: bytes) -> None:
        session = np.frombuffer(data, layout, 1)[0]
        for name in _SESSION_FIELDS:
            self._state[:, _COLUMN[name]] = session[name]

    def _event(self, layout: np.dtype[Any], data: bytes) -> None:
        event = np.frombuffer(data, layout, 1)[0]
        if bytes(event["m_eventStringCode"]) == b"FTLP":
            car = int(event["m_eventDetails"][EVENT_DETAILS["FTLP"]]["vehicleIdx"])
            if car < NUM_CARS:
                column = self._state[:, _COLUMN["fastestLap"]]
                column[:] = 0.0
                column[car] = 1.0

    def _participants(
        self, fmt: int, layout: np.dtype[Any], data: bytes, player: int
    ) -> list[DecoderEvent]:
        packet = np.frombuffer(data, layout, 1)[0]
        count = min(int(packet["m_numActiveCars"]), NUM_CARS)
        self._num_active = count
        cars = packet["m_participants"][:count]
        events: list[DecoderEvent] = []
        restricted = []
        for i, (name, team, ai, public) in enumerate(
            zip(
                cars["m_name"].tolist(),
                cars["m_teamId"].tolist(),
                cars["m_aiControlled"].tolist(),
                cars["m_yourTelemetry"].tolist(),
                strict=True,
            )
        ):
            known = (cstr(name), team_name(fmt, team))
            if self._seen.get(i) != known:
                self._seen[i] = known
                events.append(StreamSeen(_STREAMS[i], driver=known[0], car=known[1]))
            if not ai and not public and i != player:
                restricted.append(_STREAMS[i])
        if restricted and not self._restricted_noted:
            self._restricted_noted = True
            events.append(
                Notice(
                    f"F1: {len(restricted)} human player(s) restrict their telemetry "
                    f"({', '.join(restricted)}): the game sends zeros for some of their data "
                    "(car status, damage, setups)"
                )
            )
        return events

    def _history(self, layout: np.dtype[Any], data: bytes) -> None:
        history = np.frombuffer(data, layout, 1)[0]
        car, best = int(history["m_carIdx"]), int(history["m_bestLapTimeLapNum"])
        if car < NUM_CARS:
            laps = history["m_lapHistoryData"]
            value = float(laps[best - 1]["m_lapTimeInMS"]) if 1 <= best <= len(laps) else np.nan
            self._state[car, _COLUMN["bestLapTimeMS"]] = value
