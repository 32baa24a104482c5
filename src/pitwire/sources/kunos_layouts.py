"""Assetto Corsa (AC) and Assetto Corsa Competizione (ACC) shared-memory pages as layouts.

Three pages per game, ``acpmf_physics``, ``acpmf_graphics`` and ``acpmf_static``: C structs
with ``#pragma pack(4)``, 32-bit ints and floats, ``wchar_t`` strings of 2 bytes (UTF-16LE)
followed by 2 bytes of padding when they end off a 4-byte boundary. Field names follow the
AC document; ACC keeps AC's first 580 physics, 252 graphics and 684 static bytes (its
document renames a few: ``rpm`` for ``rpms``, ``wheelPressure``, ``TyreCoreTemp``; the AC
names are used here for both games). Sizes [bytes], as the Kunos documents state them:

=========  ====  ====
page       AC    ACC
=========  ====  ====
physics    580   800
graphics   296   1588
static     684   820
=========  ====  ====

Discrepancy (formats.md A.3), decided once: static ``trackConfiguration`` is
``wchar_t[33]`` as in the official AC document and most readers. Content Manager and one
ACC transcription declare ``[15]``, which moves every later static field 36 bytes down
(AC 648, ACC 784 bytes); those variants are kept as :data:`STATIC_AC_TC15` and
:data:`STATIC_ACC_TC15` so that a page written that way can still be read (see
``kunos.read_static``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pitwire.sources.layout import F32, I32, U8, U16, Field, struct


def _w(name: str, n: int) -> Field:
    """A ``wchar_t[n]`` string."""
    return (name, U16, n)


def _pad(i: int) -> Field:
    return (f"_pad{i}", U8, 2)


# -- physics ---------------------------------------------------------------------------------

_PHYSICS_AC: list[Field] = [
    ("packetId", I32),
    ("gas", F32),
    ("brake", F32),
    ("fuel", F32),
    ("gear", I32),
    ("rpms", I32),
    ("steerAngle", F32),
    ("speedKmh", F32),
    ("velocity", F32, 3),
    ("accG", F32, 3),
    ("wheelSlip", F32, 4),
    ("wheelLoad", F32, 4),
    ("wheelsPressure", F32, 4),
    ("wheelAngularSpeed", F32, 4),
    ("tyreWear", F32, 4),
    ("tyreDirtyLevel", F32, 4),
    ("tyreCoreTemperature", F32, 4),
    ("camberRAD", F32, 4),
    ("suspensionTravel", F32, 4),
    ("drs", F32),
    ("tc", F32),
    ("heading", F32),
    ("pitch", F32),
    ("roll", F32),
    ("cgHeight", F32),
    ("carDamage", F32, 5),
    ("numberOfTyresOut", I32),
    ("pitLimiterOn", I32),
    ("abs", F32),
    ("kersCharge", F32),
    ("kersInput", F32),
    ("autoShifterOn", I32),
    ("rideHeight", F32, 2),
    ("turboBoost", F32),
    ("ballast", F32),
    ("airDensity", F32),
    ("airTemp", F32),
    ("roadTemp", F32),
    ("localAngularVel", F32, 3),
    ("finalFF", F32),
    ("performanceMeter", F32),
    ("engineBrake", I32),
    ("ersRecoveryLevel", I32),
    ("ersPowerLevel", I32),
    ("ersHeatCharging", I32),
    ("ersIsCharging", I32),
    ("kersCurrentKJ", F32),
    ("drsAvailable", I32),
    ("drsEnabled", I32),
    ("brakeTemp", F32, 4),
    ("clutch", F32),
    ("tyreTempI", F32, 4),
    ("tyreTempM", F32, 4),
    ("tyreTempO", F32, 4),
    ("isAIControlled", I32),
    ("tyreContactPoint", F32, (4, 3)),
    ("tyreContactNormal", F32, (4, 3)),
    ("tyreContactHeading", F32, (4, 3)),
    ("brakeBias", F32),
    ("localVelocity", F32, 3),
]

PHYSICS_AC = struct("AC SPageFilePhysics", _PHYSICS_AC, size=580)
"""AC ``acpmf_physics``: the player's car, rewritten at each graphics step."""

PHYSICS_ACC = struct(
    "ACC SPageFilePhysics",
    [
        *_PHYSICS_AC,
        ("P2PActivations", I32),
        ("P2PStatus", I32),
        ("currentMaxRpm", I32),
        ("mz", F32, 4),
        ("fx", F32, 4),
        ("fy", F32, 4),
        ("slipRatio", F32, 4),
        ("slipAngle", F32, 4),
        ("tcinAction", I32),
        ("absInAction", I32),
        ("suspensionDamage", F32, 4),
        ("tyreTemp", F32, 4),
        ("waterTemp", F32),
        ("brakePressure", F32, 4),
        ("frontBrakeCompound", I32),
        ("rearBrakeCompound", I32),
        ("padLife", F32, 4),
        ("discLife", F32, 4),
        ("ignitionOn", I32),
        ("starterEngineOn", I32),
        ("isEngineRunning", I32),
        ("kerbVibration", F32),
        ("slipVibrations", F32),
        ("gVibrations", F32),
        ("absVibrations", F32),
    ],
    size=800,
)
"""ACC ``acpmf_physics``: AC's 580 bytes, then ACC's own fields."""

# -- graphics --------------------------------------------------------------------------------

_GRAPHICS_HEAD: list[Field] = [
    ("packetId", I32),
    ("status", I32),
    ("session", I32),
    _w("currentTime", 15),
    _w("lastTime", 15),
    _w("bestTime", 15),
    _w("split", 15),
    ("completedLaps", I32),
    ("position", I32),
    ("iCurrentTime", I32),
    ("iLastTime", I32),
    ("iBestTime", I32),
    ("sessionTimeLeft", F32),
    ("distanceTraveled", F32),
    ("isInPit", I32),
    ("currentSectorIndex", I32),
    ("lastSectorTime", I32),
    ("numberOfLaps", I32),
    _w("tyreCompound", 33),
    _pad(0),
    ("replayTimeMultiplier", F32),
    ("normalizedCarPosition", F32),
]

GRAPHICS_AC = struct(
    "AC SPageFileGraphic",
    [
        *_GRAPHICS_HEAD,
        ("carCoordinates", F32, 3),
        ("penaltyTime", F32),
        ("flag", I32),
        ("idealLineOn", I32),
        ("isInPitLane", I32),
        ("surfaceGrip", F32),
        ("mandatoryPitDone", I32),
        ("windSpeed", F32),
        ("windDirection", F32),
    ],
    size=296,
)
"""AC ``acpmf_graphics``: session state, timing, the player's position."""

GRAPHICS_ACC = struct(
    "ACC SPageFileGraphic",
    [
        *_GRAPHICS_HEAD,
        ("activeCars", I32),
        ("carCoordinates", F32, (60, 3)),
        ("carID", I32, 60),
        ("playerCarID", I32),
        ("penaltyTime", F32),
        ("flag", I32),
        ("penalty", I32),
        ("idealLineOn", I32),
        ("isInPitLane", I32),
        ("surfaceGrip", F32),
        ("mandatoryPitDone", I32),
        ("windSpeed", F32),
        ("windDirection", F32),
        ("isSetupMenuVisible", I32),
        ("mainDisplayIndex", I32),
        ("secondaryDisplayIndex", I32),
        ("TC", I32),
        ("TCCut", I32),
        ("EngineMap", I32),
        ("ABS", I32),
        ("fuelXLap", F32),
        ("rainLights", I32),
        ("flashingLights", I32),
        ("lightsStage", I32),
        ("exhaustTemperature", F32),
        ("wiperLV", I32),
        ("DriverStintTotalTimeLeft", I32),
        ("DriverStintTimeLeft", I32),
        ("rainTyres", I32),
        ("sessionIndex", I32),
        ("usedFuel", F32),
        _w("deltaLapTime", 15),
        _pad(1),
        ("iDeltaLapTime", I32),
        _w("estimatedLapTime", 15),
        _pad(2),
        ("iEstimatedLapTime", I32),
        ("isDeltaPositive", I32),
        ("iSplit", I32),
        ("isValidLap", I32),
        ("fuelEstimatedLaps", F32),
        _w("trackStatus", 33),
        _pad(3),
        ("missingMandatoryPits", I32),
        ("Clock", F32),
        ("directionLightsLeft", I32),
        ("directionLightsRight", I32),
        ("GlobalYellow", I32),
        ("GlobalYellow1", I32),
        ("GlobalYellow2", I32),
        ("GlobalYellow3", I32),
        ("GlobalWhite", I32),
        ("GlobalGreen", I32),
        ("GlobalChequered", I32),
        ("GlobalRed", I32),
        ("mfdTyreSet", I32),
        ("mfdFuelToAdd", F32),
        ("mfdTyrePressureLF", F32),
        ("mfdTyrePressureRF", F32),
        ("mfdTyrePressureLR", F32),
        ("mfdTyrePressureRR", F32),
        ("trackGripStatus", I32),
        ("rainIntensity", I32),
        ("rainIntensityIn10min", I32),
        ("rainIntensityIn30min", I32),
        ("currentTyreSet", I32),
        ("strategyTyreSet", I32),
        ("gapAhead", I32),
        ("gapBehind", I32),
    ],
    size=1588,
)
"""ACC ``acpmf_graphics``: AC's first 252 bytes, then 60 cars' coordinates and ACC's own."""

# -- static ----------------------------------------------------------------------------------

_STATIC_HEAD: list[Field] = [
    _w("smVersion", 15),
    _w("acVersion", 15),
    ("numberOfSessions", I32),
    ("numCars", I32),
    _w("carModel", 33),
    _w("track", 33),
    _w("playerName", 33),
    _w("playerSurname", 33),
    _w("playerNick", 33),
    _pad(0),
    ("sectorCount", I32),
    ("maxTorque", F32),
    ("maxPower", F32),
    ("maxRpm", I32),
    ("maxFuel", F32),
    ("suspensionMaxTravel", F32, 4),
    ("tyreRadius", F32, 4),
    ("maxTurboBoost", F32),
    ("deprecated_1", F32),
    ("deprecated_2", F32),
    ("penaltiesEnabled", I32),
    ("aidFuelRate", F32),
    ("aidTireRate", F32),
    ("aidMechanicalDamage", F32),
    ("aidAllowTyreBlankets", I32),
    ("aidStability", F32),
    ("aidAutoClutch", I32),
    ("aidAutoBlip", I32),
    ("hasDRS", I32),
    ("hasERS", I32),
    ("hasKERS", I32),
    ("kersMaxJ", F32),
    ("engineBrakeSettingsCount", I32),
    ("ersPowerControllerCount", I32),
    ("trackSPlineLength", F32),
]


def _static_tail(config_chars: int) -> list[Field]:
    return [
        _w("trackConfiguration", config_chars),
        _pad(1),
        ("ersMaxJ", F32),
        ("isTimedRace", I32),
        ("hasExtraLap", I32),
        _w("carSkin", 33),
        _pad(2),
        ("reversedGridPositions", I32),
        ("PitWindowStart", I32),
        ("PitWindowEnd", I32),
    ]


_STATIC_ACC_TAIL: list[Field] = [
    ("isOnline", I32),
    _w("dryTyresName", 33),
    _w("wetTyresName", 33),
]

STATIC_AC = struct("AC SPageFileStatic", [*_STATIC_HEAD, *_static_tail(33)], size=684)
"""AC ``acpmf_static``: written once per session (car, track, driver, car limits)."""

STATIC_ACC = struct(
    "ACC SPageFileStatic", [*_STATIC_HEAD, *_static_tail(33), *_STATIC_ACC_TAIL], size=820
)
"""ACC ``acpmf_static``: AC's 684 bytes, then ``isOnline`` and the tyre names."""

STATIC_AC_TC15 = struct(
    "AC SPageFileStatic, trackConfiguration[15]", [*_STATIC_HEAD, *_static_tail(15)], size=648
)
"""The A.3 variant of :data:`STATIC_AC` (``trackConfiguration`` as ``wchar_t[15]``)."""

STATIC_ACC_TC15 = struct(
    "ACC SPageFileStatic, trackConfiguration[15]",
    [*_STATIC_HEAD, *_static_tail(15), *_STATIC_ACC_TAIL],
    size=784,
)
"""The A.3 variant of :data:`STATIC_ACC` (``trackConfiguration`` as ``wchar_t[15]``)."""

LAYOUTS: dict[str, dict[str, np.dtype[Any]]] = {
    "ac": {"physics": PHYSICS_AC, "graphics": GRAPHICS_AC, "static": STATIC_AC},
    "acc": {"physics": PHYSICS_ACC, "graphics": GRAPHICS_ACC, "static": STATIC_ACC},
}
"""Each game's three pages by the tag the transport feeds them with."""

MAP_NAMES: dict[str, str] = {
    "physics": "Local\\acpmf_physics",
    "graphics": "Local\\acpmf_graphics",
    "static": "Local\\acpmf_static",
}
"""The Windows names of the three maps (the same for both games); under Wine/Proton they
appear as ``/dev/shm/acpmf_*``. Map ``max(layout size, 1024)`` bytes: decoders read the
prefix."""

# Enums of both documents (ACC adds session types 7, 8 and flags 7, 8).
STATUS_NAMES = {0: "OFF", 1: "REPLAY", 2: "LIVE", 3: "PAUSE"}
SESSION_NAMES = {
    -1: "UNKNOWN",
    0: "PRACTICE",
    1: "QUALIFY",
    2: "RACE",
    3: "HOTLAP",
    4: "TIME_ATTACK",
    5: "DRIFT",
    6: "DRAG",
    7: "HOTSTINT",
    8: "HOTSTINTSUPERPOLE",
}
