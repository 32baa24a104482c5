"""iRacing: the live memory map ``Local\\IRSDKMemMapFileName`` (decoder) and the layouts it
shares with ``.ibt`` files (``irsdk_defines.h``; formats.md E).

The map (~780 KiB) holds an ``irsdk_header`` (112 bytes), ``numVars`` variable headers
(144 bytes each) describing one sample row, the session info (YAML text) and ``numBuf``
(3) rotating row buffers, each stamped with the ``tickCount`` it holds. Instead of copying
the whole map, the poller calls :meth:`IRacingDecoder.snapshot` on the mapped memory each
tick and feeds back the small tagged pieces it returns:

=========  ==================================================================================
tag        bytes
=========  ==================================================================================
header     the 112-byte ``irsdk_header``
vars       the variable header block (only when it changed)
yaml       the session info, NUL padding stripped (only when ``sessionInfoUpdate`` changed)
row        ``int32 tickCount`` + the newest buffer row (highest ``tickCount``, re-checked
           after the copy so that a row the sim overwrote meanwhile is never passed on)
=========  ==================================================================================

:meth:`IRacingDecoder.feed` turns them into one :class:`Sample` per new tick for the
player's car (stream ``"car"``; values by variable name, array elements as ``Name[i]``),
:class:`SessionStarted` when ``SessionUniqueID`` or ``SessionNum`` changes (track:
``WeekendInfo.TrackDisplayName``) followed by :class:`StreamSeen` (driver and car from
``DriverInfo``), and a :class:`Notice` when the sim disconnects (``status`` bit 0 cleared:
no samples until it is set again). ``LapCompleted`` is ``Lap - 1`` (at least 0) where a
recording lacks that variable.
"""

from __future__ import annotations

import re
import struct as pystruct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import yaml

from pitwire.model.manifest import Manifest, load_builtin
from pitwire.sources.base import (
    DecodeError,
    DecoderEvent,
    Notice,
    Sample,
    SessionStarted,
    StreamSeen,
)
from pitwire.sources.layout import F64, I8, I32, I64, U8, U32, cstr, parse, struct

MAP_NAME = "Local\\IRSDKMemMapFileName"
DATA_VALID_EVENT = "Local\\IRSDKDataValidEvent"
STREAM = "car"

VAR_BUF = struct("irsdk_varBuf", [("tickCount", I32), ("bufOffset", I32), ("pad", I32, 2)], size=16)
HEADER = struct(
    "irsdk_header",
    [
        ("ver", I32),
        ("status", I32),
        ("tickRate", I32),
        ("sessionInfoUpdate", I32),
        ("sessionInfoLen", I32),
        ("sessionInfoOffset", I32),
        ("numVars", I32),
        ("varHeaderOffset", I32),
        ("numBuf", I32),
        ("bufLen", I32),
        ("pad", I32, 2),
        ("varBuf", VAR_BUF, 4),
    ],
    size=112,
)
DISK_SUB_HEADER = struct(
    "irsdk_diskSubHeader",
    [
        ("sessionStartDate", I64),
        ("sessionStartTime", F64),
        ("sessionEndTime", F64),
        ("sessionLapCount", I32),
        ("sessionRecordCount", I32),
    ],
    size=32,
)
VAR_HEADER = struct(
    "irsdk_varHeader",
    [
        ("type", I32),
        ("offset", I32),
        ("count", I32),
        ("countAsTime", I8),
        ("pad", U8, 3),
        ("name", np.dtype("S32")),
        ("desc", np.dtype("S64")),
        ("unit", np.dtype("S32")),
    ],
    size=144,
)

VAR_TYPES: dict[int, np.dtype[Any]] = {
    0: np.dtype("u1"),  # char
    1: np.dtype("?"),  # bool
    2: I32,  # int
    3: U32,  # bitField
    4: np.dtype("<f4"),  # float
    5: F64,  # double
}
"""irsdk_VarType → element dtype."""


@dataclass(frozen=True, slots=True)
class Var:
    """One variable of a sample row: ``count`` elements of ``type`` at byte ``offset``."""

    name: str
    type: int
    offset: int
    count: int = 1
    count_as_time: bool = False
    desc: str = ""
    unit: str = ""

    @property
    def dtype(self) -> np.dtype[Any]:
        return VAR_TYPES[self.type]

    @property
    def end(self) -> int:
        """The byte after the variable's last element."""
        return self.offset + self.dtype.itemsize * self.count


def parse_vars(block: bytes | memoryview, buf_len: int | None = None) -> list[Var]:
    """The variable headers in ``block`` (a multiple of 144 bytes), checked: known types,
    unique names, inside a row of ``buf_len`` bytes when given."""
    if len(block) % VAR_HEADER.itemsize:
        raise DecodeError(f"iracing: variable headers of {len(block)} bytes, not a multiple of 144")
    heads = np.frombuffer(block, VAR_HEADER)
    out: list[Var] = []
    seen: set[str] = set()
    for h in heads:
        name = cstr(h["name"])
        kind, offset, count = int(h["type"]), int(h["offset"]), int(h["count"])
        if kind not in VAR_TYPES or not name or name in seen or offset < 0 or count < 1:
            raise DecodeError(
                f"iracing: bad variable header #{len(out)} ({name!r}: type {kind}, "
                f"offset {offset}, count {count})"
            )
        var = Var(
            name, kind, offset, count, bool(h["countAsTime"]), cstr(h["desc"]), cstr(h["unit"])
        )
        if buf_len is not None and var.end > buf_len:
            raise DecodeError(
                f"iracing: variable {name!r} ends at byte {var.end}, past the {buf_len}-byte row"
            )
        seen.add(name)
        out.append(var)
    return out


def row_dtype(
    vars: Sequence[Var], buf_len: int, names: Iterable[str] | None = None
) -> np.dtype[Any]:
    """A structured dtype reading rows of ``buf_len`` bytes: every variable (arrays as
    sub-arrays), or only ``names`` (``Name`` or ``Name[i]`` for one element; unknown
    names are left out)."""
    by_name = {v.name: v for v in vars}
    fields: list[tuple[str, Any, int]] = []
    if names is None:
        fields = [
            (v.name, v.dtype if v.count == 1 else (v.dtype, (v.count,)), v.offset) for v in vars
        ]
    else:
        for raw in names:
            base, index = _element(raw)
            var = by_name.get(base)
            if var is None or index >= var.count:
                continue
            fields.append((raw, var.dtype, var.offset + index * var.dtype.itemsize))
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [f[1] for f in fields],
            "offsets": [f[2] for f in fields],
            "itemsize": buf_len,
        }
    )


_ELEMENT = re.compile(r"(.+)\[(\d+)\]")


def _element(raw: str) -> tuple[str, int]:
    m = _ELEMENT.fullmatch(raw)
    return (m.group(1), int(m.group(2))) if m else (raw, 0)


# -- session info (YAML) ---------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML without the timestamp resolver (dates stay strings, as in pyirsdk)."""


_Loader.yaml_implicit_resolvers = {
    key: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A value starting with a YAML indicator (iRacing does not quote names like ",Bob" or "@x").
_UNQUOTED = re.compile(r"^(\s*(?:- )?[A-Za-z0-9_]+: )([,@`%&*!|>].*)$", re.MULTILINE)


def parse_session_info(text: str) -> dict[str, Any]:
    """The session info YAML as nested dicts; DecodeError when it is not readable."""
    text = _CONTROL.sub("", text)
    text = _UNQUOTED.sub(
        lambda m: m.group(1) + '"' + m.group(2).replace("\\", "\\\\").replace('"', '\\"') + '"',
        text,
    )
    try:
        data = yaml.load(text, Loader=_Loader)  # a safe loader (no arbitrary objects)
    except yaml.YAMLError as e:
        raise DecodeError(f"iracing: session info is not readable YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DecodeError(f"iracing: session info is a {type(data).__name__}, not a mapping")
    return data


def decode_session_info(raw: bytes) -> str:
    """Session info bytes as text (latin-1, as iRacing writes names; NUL padding removed)."""
    return raw.split(b"\0", 1)[0].decode("latin-1")


def player(info: Mapping[str, Any]) -> tuple[str, str]:
    """(driver name, car name) of the player's car in the session info, ("", "") if absent."""
    drivers = info.get("DriverInfo") if isinstance(info, Mapping) else None
    if not isinstance(drivers, Mapping):
        return "", ""
    idx = drivers.get("DriverCarIdx")
    listed = drivers.get("Drivers")
    for d in listed if isinstance(listed, list) else []:
        if isinstance(d, Mapping) and d.get("CarIdx") == idx:
            return str(d.get("UserName") or ""), str(d.get("CarScreenName") or "")
    return "", ""


def track(info: Mapping[str, Any]) -> str:
    """The track's display name in the session info ("" if absent)."""
    weekend = info.get("WeekendInfo") if isinstance(info, Mapping) else None
    if not isinstance(weekend, Mapping):
        return ""
    return str(weekend.get("TrackDisplayName") or weekend.get("TrackName") or "")


# -- the live decoder ------------------------------------------------------------------------


class IRacingDecoder:
    """The live map's pieces (see the module docstring) → events."""

    name: ClassVar[str] = "iracing"
    manifest = load_builtin("iracing")

    def __init__(self, manifest: Manifest | None = None) -> None:
        if manifest is not None:
            self.manifest = manifest
        self._wanted = [
            *dict.fromkeys([*self.manifest.raw_fields, "SessionUniqueID", "SessionNum", "Lap"])
        ]
        # snapshot side (what was last handed out)
        self._r_vars: bytes = b""
        self._r_update: int | None = None
        # feed side
        self._connected: bool | None = None
        self._buf_len: int | None = None
        self._vars: list[Var] | None = None
        self._plan: np.dtype[Any] | None = None
        self._names: list[str] = []
        self._lap_from_lap = False
        self._info: dict[str, Any] = {}
        self._last_tick: int | None = None
        self._ident: tuple[Any, ...] | None = None
        self._seen: tuple[str, str] | None = None
        self._early_noticed = False

    def greeting(self) -> list[bytes]:
        """Nothing: the memory map needs no handshake."""
        return []

    # -- reading the map ---------------------------------------------------------------------

    def snapshot(self, view: memoryview) -> list[tuple[str, bytes]]:
        """The pieces to feed from the mapped memory ``view`` now (see the module docstring)."""
        if len(view) < HEADER.itemsize:
            return []
        head = bytes(view[: HEADER.itemsize])
        h = parse(HEADER, head)
        out = [("header", head)]
        if not int(h["status"]) & 1:
            self._r_vars, self._r_update = b"", None  # send everything again on reconnect
            return out
        start, n = int(h["varHeaderOffset"]), int(h["numVars"]) * VAR_HEADER.itemsize
        if (
            n > 0
            and start >= 0
            and start + n <= len(view)
            and view[start : start + n] != self._r_vars
        ):
            self._r_vars = bytes(view[start : start + n])
            out.append(("vars", self._r_vars))
        update = int(h["sessionInfoUpdate"])
        start, n = int(h["sessionInfoOffset"]), int(h["sessionInfoLen"])
        if update != self._r_update and n > 0 and start >= 0 and start + n <= len(view):
            text = bytes(view[start : start + n]).split(b"\0", 1)[0]
            if _int_at(view, 12) == update:  # not rewritten while we copied it
                self._r_update = update
                out.append(("yaml", text))
        row = self._newest_row(view, h)
        if row is not None:
            out.append(("row", row))
        return out

    def _newest_row(self, view: memoryview, h: Any) -> bytes | None:
        bufs, length = int(h["numBuf"]), int(h["bufLen"])
        if not 1 <= bufs <= 4 or length <= 0:
            return None
        for _ in range(3):
            ticks = [_int_at(view, 48 + 16 * i) for i in range(bufs)]
            slot = max(range(bufs), key=ticks.__getitem__)
            start = _int_at(view, 52 + 16 * slot)
            if start < 0 or start + length > len(view):
                return None
            data = self._copy(view, start, length)
            if _int_at(view, 48 + 16 * slot) == ticks[slot]:
                return pystruct.pack("<i", ticks[slot]) + data
        return None  # the sim kept overwriting the row: try again next tick

    def _copy(self, view: memoryview, start: int, length: int) -> bytes:
        return bytes(view[start : start + length])

    # -- decoding pieces ---------------------------------------------------------------------

    def feed(self, data: bytes, recv_ns: int, tag: str = "") -> list[DecoderEvent]:
        """Decode one piece from :meth:`snapshot` (``tag`` header, vars, yaml or row)."""
        match tag:
            case "header":
                return self._on_header(data)
            case "vars":
                self._set_vars(parse_vars(data, self._buf_len))
                return []
            case "yaml":
                return self._on_yaml(data)
            case "row":
                return self._on_row(data, recv_ns)
        raise DecodeError(
            f"iracing: unknown piece tag {tag!r} (expected header, vars, yaml or row)"
        )

    def _on_header(self, data: bytes) -> list[DecoderEvent]:
        if len(data) < HEADER.itemsize:
            raise DecodeError(f"iracing: header of {len(data)} bytes, not {HEADER.itemsize}")
        h = parse(HEADER, data)
        if not 1 <= int(h["ver"]) <= 9 or not 0 <= int(h["numBuf"]) <= 4:
            raise DecodeError(
                f"iracing: not an irsdk header (ver {h['ver']}, numBuf {h['numBuf']})"
            )
        connected = bool(int(h["status"]) & 1)
        self._buf_len = int(h["bufLen"]) if int(h["bufLen"]) > 0 else None
        events: list[DecoderEvent] = []
        if connected != self._connected:
            if not connected:
                events.append(
                    Notice("iracing: the sim is not connected (status bit 0 clear): no samples")
                )
            elif self._connected is not None:
                events.append(Notice("iracing: the sim is connected again"))
            self._connected = connected
        return events

    def _set_vars(self, vars: list[Var]) -> None:
        buf_len = max((v.end for v in vars), default=0)
        names = {v.name for v in vars}
        self._vars = vars
        self._lap_from_lap = "LapCompleted" not in names and "Lap" in names
        self._plan = row_dtype(vars, buf_len, self._wanted)
        self._names = list(self._plan.names or ())

    def _on_yaml(self, data: bytes) -> list[DecoderEvent]:
        self._info = parse_session_info(decode_session_info(data))
        who = player(self._info)
        if self._ident is not None and who != self._seen:
            self._seen = who
            return [StreamSeen(STREAM, driver=who[0], car=who[1])]
        return []

    def _on_row(self, data: bytes, recv_ns: int) -> list[DecoderEvent]:
        if len(data) < 4:
            raise DecodeError(f"iracing: row piece of {len(data)} bytes has no tick count")
        if self._plan is None:
            if self._early_noticed:
                return []
            self._early_noticed = True
            return [Notice("iracing: rows before the variable headers are skipped")]
        if self._connected is False:
            return []
        tick = int.from_bytes(data[:4], "little", signed=True)
        row = memoryview(data)[4:]
        if len(row) < self._plan.itemsize:
            raise DecodeError(
                f"iracing: row of {len(row)} bytes, the variables need {self._plan.itemsize}"
            )
        if tick == self._last_tick:
            return []
        self._last_tick = tick
        values = dict(
            zip(self._names, np.frombuffer(row, self._plan, count=1)[0].item(), strict=True)
        )
        if self._lap_from_lap:
            values["LapCompleted"] = max(values["Lap"] - 1, 0)
        events: list[DecoderEvent] = []
        ident = (values.get("SessionUniqueID"), values.get("SessionNum"))
        if ident != self._ident:
            self._ident = ident
            weekend = self._info.get("WeekendInfo") or {}
            sub = weekend.get("SubSessionID") or weekend.get("SessionID") or "?"
            uid, num = ("?" if v is None else v for v in ident)
            key = f"iracing:{sub}:{uid}:{num}"
            self._seen = player(self._info)
            events.append(SessionStarted(key=key, track=track(self._info)))
            events.append(StreamSeen(STREAM, driver=self._seen[0], car=self._seen[1]))
        events.append(Sample(STREAM, recv_ns, values))
        return events


def _int_at(view: memoryview, offset: int) -> int:
    return int.from_bytes(view[offset : offset + 4], "little", signed=True)
