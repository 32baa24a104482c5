"""EA F1 UDP telemetry packets, formats 2022 to 2025, as packed numpy layouts.

``LAYOUTS[packet_format][packet_id]`` is the whole datagram of one packet type as a
structured dtype (header included); every size is checked against the EA documents
(``SIZES``, the table of formats.md C.4, plus F1 22's document for format 2022). Wheel arrays
are in the order RL, RR, FL, FR. The per-car arrays have ``NUM_CARS`` entries.

Field names follow the EA documents as of F1 23 (the names every F1 reader uses). Where F1 24
renamed a field without changing what it holds (``m_sector1TimeMSPart`` for
``m_sector1TimeInMS``, ``m_deltaToCarInFrontMinutesPart`` for ``m_deltaToCarInFrontMinutes``,
``m_carSetupData`` for ``m_carSetups``, ``m_vehicleFIAFlags``), the F1 23 name is kept, so one
name means one thing in every format and one manifest reads them all. Format 2022 keeps its
own names where F1 23 changed the field (``m_warnings``, ``m_wheelSlip``).

The event details are a C union: ``m_eventDetails`` is a 12-byte dtype whose members
(``FastestLap``, ``Penalty``, ...) all start at offset 0; ``EVENT_DETAILS[code]`` names the
member an event code uses (codes without details are absent).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pitwire.sources.layout import (
    F32,
    F64,
    I8,
    I16,
    U8,
    U16,
    U32,
    U64,
    Field,
    LayoutError,
    struct,
)

NUM_CARS = 22
"""Cars in every per-car array (``cs_maxNumCarsInUDPData``)."""

FORMATS = (2022, 2023, 2024, 2025)

PACKET_NAMES = {
    0: "Motion",
    1: "Session",
    2: "Lap Data",
    3: "Event",
    4: "Participants",
    5: "Car Setups",
    6: "Car Telemetry",
    7: "Car Status",
    8: "Final Classification",
    9: "Lobby Info",
    10: "Car Damage",
    11: "Session History",
    12: "Tyre Sets",
    13: "Motion Ex",
    14: "Time Trial",
    15: "Lap Positions",
}

# Sizes [bytes] of each datagram, header included, from the EA documents.
_SIZE_COLUMNS = {  # packet id: sizes for 2022, 2023, 2024, 2025 (0 = no such packet)
    0: (1464, 1349, 1349, 1349),
    1: (632, 644, 753, 753),
    2: (972, 1131, 1285, 1285),
    3: (40, 45, 45, 45),
    4: (1257, 1306, 1350, 1284),
    5: (1102, 1107, 1133, 1133),
    6: (1347, 1352, 1352, 1352),
    7: (1058, 1239, 1239, 1239),
    8: (1015, 1020, 1020, 1042),
    9: (1191, 1218, 1306, 954),
    10: (948, 953, 953, 1041),
    11: (1155, 1460, 1460, 1460),
    12: (0, 231, 231, 231),
    13: (0, 217, 237, 273),
    14: (0, 0, 101, 101),
    15: (0, 0, 0, 1131),
}
SIZES: dict[int, dict[int, int]] = {
    fmt: {pid: sizes[k] for pid, sizes in _SIZE_COLUMNS.items() if sizes[k]}
    for k, fmt in enumerate(FORMATS)
}
"""``SIZES[packet_format][packet_id]``: the datagram size [bytes]."""

CAR_ARRAYS = {
    0: "m_carMotionData",
    2: "m_lapData",
    4: "m_participants",
    5: "m_carSetups",
    6: "m_carTelemetryData",
    7: "m_carStatusData",
    8: "m_classificationData",
    9: "m_lobbyPlayers",
    10: "m_carDamageData",
}
"""The per-car array of each packet id that has one."""


def _u8(names: str) -> list[Field]:
    """uint8 fields, named by a whitespace-separated list."""
    return [(name, U8) for name in names.split()]


def union(name: str, members: dict[str, np.dtype[Any]], size: int) -> np.dtype[Any]:
    """A C union: every member starts at offset 0 and the whole is ``size`` bytes."""
    too_big = [m for m, dtype in members.items() if dtype.itemsize > size]
    if too_big:
        raise LayoutError(f"union {name}: members {too_big} are larger than {size} bytes")
    return np.dtype(
        {
            "names": list(members),
            "formats": list(members.values()),
            "offsets": [0] * len(members),
            "itemsize": size,
        }
    )


# -- header ---------------------------------------------------------------------------------

HEADER_2022 = struct(
    "PacketHeader (2022)",
    [
        ("m_packetFormat", U16),
        *_u8("m_gameMajorVersion m_gameMinorVersion m_packetVersion m_packetId"),
        ("m_sessionUID", U64),
        ("m_sessionTime", F32),
        ("m_frameIdentifier", U32),
        *_u8("m_playerCarIndex m_secondaryPlayerCarIndex"),
    ],
    size=24,
)
HEADER = struct(
    "PacketHeader",
    [
        ("m_packetFormat", U16),
        *_u8("m_gameYear m_gameMajorVersion m_gameMinorVersion m_packetVersion m_packetId"),
        ("m_sessionUID", U64),
        ("m_sessionTime", F32),
        ("m_frameIdentifier", U32),
        ("m_overallFrameIdentifier", U32),
        *_u8("m_playerCarIndex m_secondaryPlayerCarIndex"),
    ],
    size=29,
)


def header(fmt: int) -> np.dtype[Any]:
    """The packet header of format ``fmt``."""
    return HEADER_2022 if fmt == 2022 else HEADER


# -- per-car and nested structs -------------------------------------------------------------

CAR_MOTION = struct(
    "CarMotionData",
    [
        *[(f"m_worldPosition{a}", F32) for a in "XYZ"],
        *[(f"m_worldVelocity{a}", F32) for a in "XYZ"],
        *[(f"m_worldForwardDir{a}", I16) for a in "XYZ"],
        *[(f"m_worldRightDir{a}", I16) for a in "XYZ"],
        ("m_gForceLateral", F32),
        ("m_gForceLongitudinal", F32),
        ("m_gForceVertical", F32),
        ("m_yaw", F32),
        ("m_pitch", F32),
        ("m_roll", F32),
    ],
    size=60,
)

CAR_TELEMETRY = struct(
    "CarTelemetryData",
    [
        ("m_speed", U16),
        ("m_throttle", F32),
        ("m_steer", F32),
        ("m_brake", F32),
        ("m_clutch", U8),
        ("m_gear", I8),
        ("m_engineRPM", U16),
        ("m_drs", U8),
        ("m_revLightsPercent", U8),
        ("m_revLightsBitValue", U16),
        ("m_brakesTemperature", U16, 4),
        ("m_tyresSurfaceTemperature", U8, 4),
        ("m_tyresInnerTemperature", U8, 4),
        ("m_engineTemperature", U16),
        ("m_tyresPressure", F32, 4),
        ("m_surfaceType", U8, 4),
    ],
    size=60,
)


def _lap_data(fmt: int) -> np.dtype[Any]:
    if fmt == 2022:
        times: list[Field] = [("m_sector1TimeInMS", U16), ("m_sector2TimeInMS", U16)]
    else:
        times = [
            ("m_sector1TimeInMS", U16),
            ("m_sector1TimeMinutes", U8),
            ("m_sector2TimeInMS", U16),
            ("m_sector2TimeMinutes", U8),
        ]
    if fmt == 2022:
        deltas: list[Field] = []
    elif fmt == 2023:
        deltas = [("m_deltaToCarInFrontInMS", U16), ("m_deltaToRaceLeaderInMS", U16)]
    else:
        deltas = [
            ("m_deltaToCarInFrontInMS", U16),
            ("m_deltaToCarInFrontMinutes", U8),
            ("m_deltaToRaceLeaderInMS", U16),
            ("m_deltaToRaceLeaderMinutes", U8),
        ]
    warnings = "m_warnings" if fmt == 2022 else "m_totalWarnings m_cornerCuttingWarnings"
    speed_trap: list[Field] = (
        [("m_speedTrapFastestSpeed", F32), ("m_speedTrapFastestLap", U8)] if fmt >= 2024 else []
    )
    return struct(
        f"LapData ({fmt})",
        [
            ("m_lastLapTimeInMS", U32),
            ("m_currentLapTimeInMS", U32),
            *times,
            *deltas,
            ("m_lapDistance", F32),
            ("m_totalDistance", F32),
            ("m_safetyCarDelta", F32),
            *_u8(
                "m_carPosition m_currentLapNum m_pitStatus m_numPitStops m_sector"
                f" m_currentLapInvalid m_penalties {warnings} m_numUnservedDriveThroughPens"
                " m_numUnservedStopGoPens m_gridPosition m_driverStatus m_resultStatus"
                " m_pitLaneTimerActive"
            ),
            ("m_pitLaneTimeInLaneInMS", U16),
            ("m_pitStopTimerInMS", U16),
            ("m_pitStopShouldServePen", U8),
            *speed_trap,
        ],
        size={2022: 43, 2023: 50}.get(fmt, 57),
    )


MARSHAL_ZONE = struct("MarshalZone", [("m_zoneStart", F32), ("m_zoneFlag", I8)], size=5)
WEATHER_FORECAST_SAMPLE = struct(
    "WeatherForecastSample",
    [
        *_u8("m_sessionType m_timeOffset m_weather"),
        ("m_trackTemperature", I8),
        ("m_trackTemperatureChange", I8),
        ("m_airTemperature", I8),
        ("m_airTemperatureChange", I8),
        ("m_rainPercentage", U8),
    ],
    size=8,
)


def _session(fmt: int) -> list[Field]:
    fields: list[Field] = [
        ("m_weather", U8),
        ("m_trackTemperature", I8),
        ("m_airTemperature", I8),
        ("m_totalLaps", U8),
        ("m_trackLength", U16),
        ("m_sessionType", U8),
        ("m_trackId", I8),
        ("m_formula", U8),
        ("m_sessionTimeLeft", U16),
        ("m_sessionDuration", U16),
        *_u8(
            "m_pitSpeedLimit m_gamePaused m_isSpectating m_spectatorCarIndex "
            "m_sliProNativeSupport m_numMarshalZones"
        ),
        ("m_marshalZones", MARSHAL_ZONE, 21),
        *_u8("m_safetyCarStatus m_networkGame m_numWeatherForecastSamples"),
        ("m_weatherForecastSamples", WEATHER_FORECAST_SAMPLE, 64 if fmt >= 2024 else 56),
        *_u8("m_forecastAccuracy m_aiDifficulty"),
        ("m_seasonLinkIdentifier", U32),
        ("m_weekendLinkIdentifier", U32),
        ("m_sessionLinkIdentifier", U32),
        *_u8(
            "m_pitStopWindowIdealLap m_pitStopWindowLatestLap m_pitStopRejoinPosition "
            "m_steeringAssist m_brakingAssist m_gearboxAssist m_pitAssist m_pitReleaseAssist "
            "m_ERSAssist m_DRSAssist m_dynamicRacingLine m_dynamicRacingLineType m_gameMode "
            "m_ruleSet"
        ),
        ("m_timeOfDay", U32),
        ("m_sessionLength", U8),
    ]
    if fmt >= 2023:
        fields += _u8(
            "m_speedUnitsLeadPlayer m_temperatureUnitsLeadPlayer "
            "m_speedUnitsSecondaryPlayer m_temperatureUnitsSecondaryPlayer "
            "m_numSafetyCarPeriods m_numVirtualSafetyCarPeriods m_numRedFlagPeriods"
        )
    if fmt >= 2024:
        fields += [
            *_u8(
                "m_equalCarPerformance m_recoveryMode m_flashbackLimit m_surfaceType "
                "m_lowFuelMode m_raceStarts m_tyreTemperature m_pitLaneTyreSim m_carDamage "
                "m_carDamageRate m_collisions m_collisionsOffForFirstLapOnly m_mpUnsafePitRelease "
                "m_mpOffForGriefing m_cornerCuttingStringency m_parcFermeRules "
                "m_pitStopExperience m_safetyCar m_safetyCarExperience m_formationLap "
                "m_formationLapExperience m_redFlags m_affectsLicenceLevelSolo "
                "m_affectsLicenceLevelMP m_numSessionsInWeekend"
            ),
            ("m_weekendStructure", U8, 12),
            ("m_sector2LapDistanceStart", F32),
            ("m_sector3LapDistanceStart", F32),
        ]
    return fields


def _event_details(fmt: int) -> np.dtype[Any]:
    vehicle: list[Field] = [("vehicleIdx", U8)]
    members: dict[str, list[Field]] = {
        "FastestLap": [("vehicleIdx", U8), ("lapTime", F32)],
        "Retirement": [*vehicle, ("reason", U8)] if fmt >= 2025 else vehicle,
        "TeamMateInPits": vehicle,
        "RaceWinner": vehicle,
        "Penalty": _u8(
            "penaltyType infringementType vehicleIdx otherVehicleIdx time lapNum placesGained"
        ),
        "SpeedTrap": [
            ("vehicleIdx", U8),
            ("speed", F32),
            *_u8("isOverallFastestInSession isDriverFastestInSession"),
            ("fastestVehicleIdxInSession", U8),
            ("fastestSpeedInSession", F32),
        ],
        "StartLights": [("numLights", U8)],
        "DriveThroughPenaltyServed": vehicle,
        "StopGoPenaltyServed": [*vehicle, ("stopTime", F32)] if fmt >= 2025 else vehicle,
        "Flashback": [("flashbackFrameIdentifier", U32), ("flashbackSessionTime", F32)],
        "Buttons": [("buttonStatus", U32)],
    }
    if fmt >= 2023:
        members["Overtake"] = _u8("overtakingVehicleIdx beingOvertakenVehicleIdx")
    if fmt >= 2024:
        members["SafetyCar"] = _u8("safetyCarType eventType")
        members["Collision"] = _u8("vehicle1Idx vehicle2Idx")
    if fmt >= 2025:
        members["DRSDisabled"] = _u8("reason")
    return union(
        f"EventDataDetails ({fmt})",
        {name: struct(name, fields) for name, fields in members.items()},
        size=12,
    )


EVENT_DETAILS = {
    "FTLP": "FastestLap",
    "RTMT": "Retirement",
    "DRSD": "DRSDisabled",
    "TMPT": "TeamMateInPits",
    "RCWN": "RaceWinner",
    "PENA": "Penalty",
    "SPTP": "SpeedTrap",
    "STLG": "StartLights",
    "DTSV": "DriveThroughPenaltyServed",
    "SGSV": "StopGoPenaltyServed",
    "FLBK": "Flashback",
    "BUTN": "Buttons",
    "OVTK": "Overtake",
    "SCAR": "SafetyCar",
    "COLL": "Collision",
}
"""Event code → the member of ``m_eventDetails`` it fills (where the format has it)."""

LIVERY_COLOUR = struct("LiveryColour", _u8("red green blue"), size=3)


def _participant(fmt: int) -> np.dtype[Any]:
    fields: list[Field] = [
        *_u8("m_aiControlled m_driverId m_networkId m_teamId m_myTeam m_raceNumber m_nationality"),
        ("m_name", np.dtype("S32" if fmt >= 2025 else "S48")),
        ("m_yourTelemetry", U8),
    ]
    if fmt >= 2023:
        fields.append(("m_showOnlineNames", U8))
    if fmt >= 2024:
        fields.append(("m_techLevel", U16))
    if fmt >= 2023:
        fields.append(("m_platform", U8))
    if fmt >= 2025:
        fields += [("m_numColours", U8), ("m_liveryColours", LIVERY_COLOUR, 4)]
    return struct(f"ParticipantData ({fmt})", fields)


def _car_setup(fmt: int) -> np.dtype[Any]:
    return struct(
        f"CarSetupData ({fmt})",
        [
            *_u8("m_frontWing m_rearWing m_onThrottle m_offThrottle"),
            *[(f"m_{n}", F32) for n in ("frontCamber", "rearCamber", "frontToe", "rearToe")],
            *_u8(
                "m_frontSuspension m_rearSuspension m_frontAntiRollBar m_rearAntiRollBar"
                " m_frontSuspensionHeight m_rearSuspensionHeight m_brakePressure m_brakeBias"
            ),
            *(_u8("m_engineBraking") if fmt >= 2024 else []),
            *[(f"m_{w}TyrePressure", F32) for w in ("rearLeft", "rearRight", "frontLeft")],
            ("m_frontRightTyrePressure", F32),
            ("m_ballast", U8),
            ("m_fuelLoad", F32),
        ],
        size=50 if fmt >= 2024 else 49,
    )


def _car_status(fmt: int) -> np.dtype[Any]:
    power: list[Field] = (
        [("m_enginePowerICE", F32), ("m_enginePowerMGUK", F32)] if fmt >= 2023 else []
    )
    return struct(
        f"CarStatusData ({fmt})",
        [
            *_u8(
                "m_tractionControl m_antiLockBrakes m_fuelMix m_frontBrakeBias m_pitLimiterStatus"
            ),
            ("m_fuelInTank", F32),
            ("m_fuelCapacity", F32),
            ("m_fuelRemainingLaps", F32),
            ("m_maxRPM", U16),
            ("m_idleRPM", U16),
            *_u8("m_maxGears m_drsAllowed"),
            ("m_drsActivationDistance", U16),
            *_u8("m_actualTyreCompound m_visualTyreCompound m_tyresAgeLaps"),
            ("m_vehicleFiaFlags", I8),
            *power,
            ("m_ersStoreEnergy", F32),
            ("m_ersDeployMode", U8),
            ("m_ersHarvestedThisLapMGUK", F32),
            ("m_ersHarvestedThisLapMGUH", F32),
            ("m_ersDeployedThisLap", F32),
            ("m_networkPaused", U8),
        ],
        size=55 if fmt >= 2023 else 47,
    )


def _final_classification(fmt: int) -> np.dtype[Any]:
    return struct(
        f"FinalClassificationData ({fmt})",
        [
            *_u8("m_position m_numLaps m_gridPosition m_points m_numPitStops m_resultStatus"),
            *(_u8("m_resultReason") if fmt >= 2025 else []),
            ("m_bestLapTimeInMS", U32),
            ("m_totalRaceTime", F64),
            *_u8("m_penaltiesTime m_numPenalties m_numTyreStints"),
            ("m_tyreStintsActual", U8, 8),
            ("m_tyreStintsVisual", U8, 8),
            ("m_tyreStintsEndLaps", U8, 8),
        ],
        size=46 if fmt >= 2025 else 45,
    )


def _lobby_player(fmt: int) -> np.dtype[Any]:
    online: list[Field] = (
        [*_u8("m_yourTelemetry m_showOnlineNames"), ("m_techLevel", U16)] if fmt >= 2024 else []
    )
    return struct(
        f"LobbyInfoData ({fmt})",
        [
            *_u8("m_aiControlled m_teamId m_nationality"),
            *(_u8("m_platform") if fmt >= 2023 else []),
            ("m_name", np.dtype("S32" if fmt >= 2025 else "S48")),
            ("m_carNumber", U8),
            *online,
            ("m_readyStatus", U8),
        ],
        size={2022: 53, 2023: 54, 2024: 58, 2025: 42}[fmt],
    )


def _car_damage(fmt: int) -> np.dtype[Any]:
    return struct(
        f"CarDamageData ({fmt})",
        [
            ("m_tyresWear", F32, 4),
            ("m_tyresDamage", U8, 4),
            ("m_brakesDamage", U8, 4),
            *([("m_tyreBlisters", U8, 4)] if fmt >= 2025 else []),
            *_u8(
                "m_frontLeftWingDamage m_frontRightWingDamage m_rearWingDamage m_floorDamage "
                "m_diffuserDamage m_sidepodDamage m_drsFault m_ersFault m_gearBoxDamage "
                "m_engineDamage m_engineMGUHWear m_engineESWear m_engineCEWear m_engineICEWear "
                "m_engineMGUKWear m_engineTCWear m_engineBlown m_engineSeized"
            ),
        ],
        size=46 if fmt >= 2025 else 42,
    )


def _lap_history(fmt: int) -> np.dtype[Any]:
    if fmt == 2022:
        sectors: list[Field] = [(f"m_sector{k}TimeInMS", U16) for k in (1, 2, 3)]
    else:
        sectors = []
        for k in (1, 2, 3):
            sectors += [(f"m_sector{k}TimeInMS", U16), (f"m_sector{k}TimeMinutes", U8)]
    return struct(
        f"LapHistoryData ({fmt})",
        [("m_lapTimeInMS", U32), *sectors, ("m_lapValidBitFlags", U8)],
        size=11 if fmt == 2022 else 14,
    )


TYRE_STINT_HISTORY = struct(
    "TyreStintHistoryData",
    _u8("m_endLap m_tyreActualCompound m_tyreVisualCompound"),
    size=3,
)
TYRE_SET = struct(
    "TyreSetData",
    [
        *_u8(
            "m_actualTyreCompound m_visualTyreCompound m_wear m_available m_recommendedSession "
            "m_lifeSpan m_usableLife"
        ),
        ("m_lapDeltaTime", I16),
        ("m_fitted", U8),
    ],
    size=10,
)
TIME_TRIAL_DATA_SET = struct(
    "TimeTrialDataSet",
    [
        *_u8("m_carIdx m_teamId"),
        ("m_lapTimeInMS", U32),
        ("m_sector1TimeInMS", U32),
        ("m_sector2TimeInMS", U32),
        ("m_sector3TimeInMS", U32),
        *_u8(
            "m_tractionControl m_gearboxAssist m_antiLockBrakes m_equalCarPerformance "
            "m_customSetup m_valid"
        ),
    ],
    size=24,
)

_WHEEL_FLOATS = ("m_suspensionPosition", "m_suspensionVelocity", "m_suspensionAcceleration")
_LOCAL = [
    *[(f"m_localVelocity{a}", F32) for a in "XYZ"],
    *[(f"m_angularVelocity{a}", F32) for a in "XYZ"],
    *[(f"m_angularAcceleration{a}", F32) for a in "XYZ"],
    ("m_frontWheelsAngle", F32),
]


def _motion_player_2022() -> list[Field]:
    """The player-car block that format 2022 appends to the motion packet."""
    wheels = [*_WHEEL_FLOATS, "m_wheelSpeed", "m_wheelSlip"]
    return [*[(name, F32, 4) for name in wheels], *_LOCAL]


def _motion_ex(fmt: int) -> list[Field]:
    wheels = [
        *_WHEEL_FLOATS,
        "m_wheelSpeed",
        "m_wheelSlipRatio",
        "m_wheelSlipAngle",
        "m_wheelLatForce",
        "m_wheelLongForce",
    ]
    fields: list[Field] = [
        *[(name, F32, 4) for name in wheels],
        ("m_heightOfCOGAboveGround", F32),
        *_LOCAL,
        ("m_wheelVertForce", F32, 4),
    ]
    if fmt >= 2024:
        fields += [
            (f"m_{n}", F32)
            for n in (
                "frontAeroHeight",
                "rearAeroHeight",
                "frontRollAngle",
                "rearRollAngle",
                "chassisYaw",
            )
        ]
    if fmt >= 2025:
        fields += [
            ("m_chassisPitch", F32),
            ("m_wheelCamber", F32, 4),
            ("m_wheelCamberGain", F32, 4),
        ]
    return fields


# -- packets --------------------------------------------------------------------------------


def _packets(fmt: int) -> dict[int, list[Field]]:
    """The fields after the header of every packet id of format ``fmt``."""
    cars = NUM_CARS
    packets: dict[int, list[Field]] = {
        0: [
            ("m_carMotionData", CAR_MOTION, cars),
            *(_motion_player_2022() if fmt == 2022 else []),
        ],
        1: _session(fmt),
        2: [
            ("m_lapData", _lap_data(fmt), cars),
            *_u8("m_timeTrialPBCarIdx m_timeTrialRivalCarIdx"),
        ],
        3: [("m_eventStringCode", np.dtype("S4")), ("m_eventDetails", _event_details(fmt))],
        4: [("m_numActiveCars", U8), ("m_participants", _participant(fmt), cars)],
        5: [
            ("m_carSetups", _car_setup(fmt), cars),
            *([("m_nextFrontWingValue", F32)] if fmt >= 2024 else []),
        ],
        6: [
            ("m_carTelemetryData", CAR_TELEMETRY, cars),
            *_u8("m_mfdPanelIndex m_mfdPanelIndexSecondaryPlayer"),
            ("m_suggestedGear", I8),
        ],
        7: [("m_carStatusData", _car_status(fmt), cars)],
        8: [("m_numCars", U8), ("m_classificationData", _final_classification(fmt), cars)],
        9: [("m_numPlayers", U8), ("m_lobbyPlayers", _lobby_player(fmt), cars)],
        10: [("m_carDamageData", _car_damage(fmt), cars)],
        11: [
            *_u8(
                "m_carIdx m_numLaps m_numTyreStints m_bestLapTimeLapNum m_bestSector1LapNum "
                "m_bestSector2LapNum m_bestSector3LapNum"
            ),
            ("m_lapHistoryData", _lap_history(fmt), 100),
            ("m_tyreStintsHistoryData", TYRE_STINT_HISTORY, 8),
        ],
    }
    if fmt >= 2023:
        packets[12] = [("m_carIdx", U8), ("m_tyreSetData", TYRE_SET, 20), ("m_fittedIdx", U8)]
        packets[13] = _motion_ex(fmt)
    if fmt >= 2024:
        packets[14] = [
            ("m_playerSessionBestDataSet", TIME_TRIAL_DATA_SET),
            ("m_personalBestDataSet", TIME_TRIAL_DATA_SET),
            ("m_rivalDataSet", TIME_TRIAL_DATA_SET),
        ]
    if fmt >= 2025:
        packets[15] = [*_u8("m_numLaps m_lapStart"), ("m_positionForVehicleIdx", U8, (50, 22))]
    return packets


def _build(fmt: int) -> dict[int, np.dtype[Any]]:
    out = {}
    for pid, fields in _packets(fmt).items():
        name = f"{PACKET_NAMES[pid]} ({fmt})"
        out[pid] = struct(name, [("m_header", header(fmt)), *fields], size=SIZES[fmt][pid])
    return out


LAYOUTS: dict[int, dict[int, np.dtype[Any]]] = {fmt: _build(fmt) for fmt in FORMATS}
"""``LAYOUTS[packet_format][packet_id]``: the whole datagram as a structured dtype."""
