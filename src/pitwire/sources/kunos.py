"""Assetto Corsa (``ac``) and Assetto Corsa Competizione (``acc``) shared-memory decoders.

Sans-I/O: the shared-memory poller reads the three maps (``kunos_layouts.MAP_NAMES``) and
feeds each page that changed with its tag, ``"physics"``, ``"graphics"`` or ``"static"``.
A page may be longer than its layout (maps are opened at ``max(size, 1024)`` bytes, or at
a file's size); the layout's prefix is read. A shorter page raises :class:`DecodeError`.

What comes out, for the one stream ``"car"`` (the player's car):

- one :class:`Sample` per physics page whose ``packetId`` differs from the last one, at
  the page's receive time, with the physics fields plus the latest graphics and static
  values, named as in the documents (arrays element-wise: ``accG[0]``, ``tyreContactPoint[1][2]``;
  for ACC, ``carCoordinates[0..2]`` is the player's row of the 60-car table);
- :class:`SessionStarted` when the game starts a session: the first live graphics page,
  status back from OFF, a new session type, a new ACC ``sessionIndex``, ``completedLaps``
  going backwards (a restart) or a new track in the static page. It is followed by
  :class:`StreamSeen` (driver = ``playerName playerSurname``, car = ``carModel``), which is
  also sent when the static page changes the driver or car mid-session;
- no samples while graphics ``status`` is OFF, REPLAY or PAUSE, with a :class:`Notice`
  when the status changes.

Physics pages that arrive before the graphics page (and, for up to 60 physics pages, the
static page) are held back, the latest one only, so that the session starts with its track.
Feed ``static``, ``graphics``, then ``physics`` each tick where the order is yours.

Units as documented: speed [km/h], accG [g], wheelsPressure [psi], temperatures [°C],
iCurrentTime [ms], steerAngle is the normalised steering input [-1, 1] (no angle: the
manifests keep it as ``steer_input`` and leave the standard ``steer`` to sources that know
the wheel angle).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

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
from pitwire.sources.kunos_layouts import (
    LAYOUTS,
    SESSION_NAMES,
    STATIC_AC,
    STATIC_AC_TC15,
    STATIC_ACC,
    STATIC_ACC_TC15,
    STATUS_NAMES,
)
from pitwire.sources.layout import U16, parse, wstr

Game = Literal["ac", "acc"]

OFF, REPLAY, LIVE, PAUSE = 0, 1, 2, 3
STREAM = "car"
STATIC_WAIT = 60
"""Physics pages to hold back waiting for the static page before starting without it."""

_CONFIG_OFFSET = 524  # static trackConfiguration, in both readings of A.3
_VERSION = re.compile(r"\d+(\.\d+)*")


def flat_fields(layout: np.dtype[Any]) -> list[tuple[str, int, str]]:
    """The 32-bit number fields of ``layout`` element-wise: (name, word index, kind ``i``/``f``).

    Arrays become ``name[i]`` (``name[i][j]`` for 2-d); strings and padding are left out.
    """
    out: list[tuple[str, int, str]] = []
    for name in layout.names or ():
        sub, offset = layout.fields[name][:2]  # type: ignore[index]
        base, shape = sub.subdtype if sub.subdtype is not None else (sub, ())
        if name.startswith("_pad") or base.kind not in "if" or base.itemsize != 4:
            continue
        if offset % 4:
            raise ValueError(f"field {name!r} at offset {offset} is not 4-byte aligned")
        for k, index in enumerate(np.ndindex(*shape)):
            label = name + "".join(f"[{i}]" for i in index)
            out.append((label, offset // 4 + k, base.kind))
    return out


@dataclass(frozen=True, slots=True)
class StaticInfo:
    """What the static page says about the session and car (strings decoded).

    track_length: ``trackSPlineLength`` [m], NaN when the game leaves it 0
    variant: ``trackConfiguration`` length read, 33 (documents) or 15 (A.3 variant)
    """

    sm_version: str
    ac_version: str
    car_model: str
    track: str
    track_config: str
    player: str
    car_skin: str
    track_length: float
    variant: int
    values: dict[str, float]

    @property
    def track_name(self) -> str:
        """``track`` with its layout: ``ks_nordschleife/endurance``."""
        return f"{self.track}/{self.track_config}" if self.track_config else self.track


def _is_text(units: np.ndarray[Any, Any]) -> bool:
    """True when ``units`` hold a non-empty NUL-terminated printable string."""
    text = wstr(units)
    return bool(text) and text.isprintable()


def _looks_tc15(page: bytes | memoryview, full_size: int) -> bool:
    """True when the static page was written with ``trackConfiguration[15]`` (A.3).

    In the [33] reading, the units after a short configuration name are zero. In the [15]
    reading they hold ``ersMaxJ``, ``isTimedRace``, ``hasExtraLap`` (0/1) and the start of
    ``carSkin``, which must look like that.
    """
    if len(page) < full_size:
        return True
    units = np.frombuffer(page, U16, count=33, offset=_CONFIG_OFFSET)
    nul = np.flatnonzero(units == 0)
    if not nul.size or nul[0] >= 15 or not units[15:].any():
        return False
    words = np.frombuffer(page, "<i4", count=2, offset=_CONFIG_OFFSET + 36)
    ers = float(np.frombuffer(page, "<f4", count=1, offset=_CONFIG_OFFSET + 32)[0])
    skin = np.frombuffer(page, U16, count=33, offset=_CONFIG_OFFSET + 44)
    return bool(np.isin(words, (0, 1)).all()) and math.isfinite(ers) and ers >= 0 and _is_text(skin)


def read_static(page: bytes | memoryview, game: Game) -> StaticInfo:
    """Decode a static page of ``game``, in whichever reading of A.3 it was written."""
    full, short = (STATIC_ACC, STATIC_ACC_TC15) if game == "acc" else (STATIC_AC, STATIC_AC_TC15)
    if len(page) < short.itemsize:
        raise DecodeError(
            f"{game}: static page of {len(page)} bytes, the layout needs {full.itemsize}"
        )
    variant = 15 if _looks_tc15(page, full.itemsize) else 33
    layout = short if variant == 15 else full
    rec = parse(layout, page)
    words_f = np.frombuffer(page, "<f4", count=layout.itemsize // 4)
    words_i = np.frombuffer(page, "<i4", count=layout.itemsize // 4)
    values = {
        name: float(words_f[i] if kind == "f" else words_i[i])
        for name, i, kind in flat_fields(layout)
    }
    length = values["trackSPlineLength"]
    values["trackSPlineLength"] = length if length > 0 else math.nan
    player = f"{wstr(rec['playerName'])} {wstr(rec['playerSurname'])}".strip()
    return StaticInfo(
        sm_version=wstr(rec["smVersion"]),
        ac_version=wstr(rec["acVersion"]),
        car_model=wstr(rec["carModel"]),
        track=wstr(rec["track"]),
        track_config=wstr(rec["trackConfiguration"]),
        player=player,
        car_skin=wstr(rec["carSkin"]),
        track_length=values["trackSPlineLength"],
        variant=variant,
        values=values,
    )


def detect(static_page: bytes | memoryview) -> Game | None:
    """Which game wrote ``static_page``: ``"acc"``, ``"ac"``, or None (no game, not a page).

    ``smVersion`` must read as a version number (``1.7``). ACC then fills the fields it
    appends after AC's 684 bytes (``isOnline`` 0/1 and ``dryTyresName``, e.g. ``DHF``);
    AC leaves that space zero (or the page ends there).
    """
    if len(static_page) < STATIC_AC_TC15.itemsize:
        return None
    sm = wstr(np.frombuffer(static_page, U16, count=15))
    if not _VERSION.fullmatch(sm):
        return None
    size = STATIC_AC_TC15.itemsize if _looks_tc15(static_page, 684) else STATIC_AC.itemsize
    if len(static_page) >= size + 136:
        online = int(np.frombuffer(static_page, "<i4", count=1, offset=size)[0])
        dry = np.frombuffer(static_page, U16, count=33, offset=size + 4)
        if online in (0, 1) and _is_text(dry):
            return "acc"
    return "ac"


class _KunosDecoder:
    """Shared by :class:`AcDecoder` and :class:`AccDecoder` (see the module docstring)."""

    name: ClassVar[str]
    game: ClassVar[Game]
    manifest: Manifest

    def __init__(self, manifest: Manifest | None = None) -> None:
        if manifest is not None:
            self.manifest = manifest
        self._layouts = LAYOUTS[self.game]
        wanted = set(self.manifest.raw_fields)
        physics = [f for f in flat_fields(self._layouts["physics"]) if f[0] in wanted]
        self._pf = _Plan(physics)
        taken = {f[0] for f in flat_fields(self._layouts["physics"])}
        graphics = [
            f
            for f in flat_fields(self._layouts["graphics"])
            if f[0] in wanted and f[0] not in taken and not f[0].startswith(("carCoord", "carID"))
        ]
        self._gf = _Plan(graphics)
        self._coords = [f"carCoordinates[{i}]" for i in range(3)]
        static_names = {f[0] for f in flat_fields(STATIC_AC if self.game == "ac" else STATIC_ACC)}
        self._static_names = sorted(wanted & static_names - taken - {f[0] for f in graphics})
        known = taken | {f[0] for f in graphics} | set(self._coords) | static_names
        unknown = wanted - known
        if unknown:
            raise ValueError(
                f"{self.name}: the manifest maps raw fields this decoder does not produce: "
                + ", ".join(sorted(unknown))
            )
        self._last_packet: int | None = None
        self._status: int | None = None
        self._ident: tuple[int, int] | None = None
        self._laps = -1
        self._gvals: dict[str, float] = {}
        self._static: StaticInfo | None = None
        self._svals: dict[str, float] = {}
        self._want_session = False
        self._in_session = False
        self._pending: tuple[dict[str, float], int] | None = None
        self._waited = 0
        self._variant_noticed = False

    def greeting(self) -> list[bytes]:
        """Nothing: shared memory needs no handshake."""
        return []

    def feed(self, data: bytes, recv_ns: int, tag: str = "") -> list[DecoderEvent]:
        """Decode one page (``tag`` physics, graphics or static) received at ``recv_ns``."""
        layout = self._layouts.get(tag)
        if layout is None:
            raise DecodeError(
                f"{self.name}: unknown page tag {tag!r} (expected physics, graphics or static)"
            )
        if tag == "static":
            return self._on_static(data, recv_ns)
        if len(data) < layout.itemsize:
            raise DecodeError(
                f"{self.name}: {tag} page of {len(data)} bytes, the layout needs {layout.itemsize}"
            )
        if tag == "physics":
            return self._on_physics(data, recv_ns)
        return self._on_graphics(data, recv_ns)

    # -- pages -------------------------------------------------------------------------------

    def _on_physics(self, data: bytes, recv_ns: int) -> list[DecoderEvent]:
        n = self._layouts["physics"].itemsize // 4
        words_f = np.frombuffer(data, "<f4", count=n)
        words_i = np.frombuffer(data, "<i4", count=n)
        packet = int(words_i[0])
        if packet == self._last_packet:
            return []
        self._last_packet = packet
        values = self._pf.extract(words_f, words_i)
        events: list[DecoderEvent] = []
        if self._status is not None and self._static is None:
            self._waited += 1
            if self._waited == STATIC_WAIT:
                events.append(
                    Notice(f"{self.name}: no static page yet; track, driver and car unknown")
                )
        if not self._ready():
            self._pending = (values, recv_ns)
            return events
        events += self._release(recv_ns)
        if self._status == LIVE and not self._want_session:
            events.append(self._sample(values, recv_ns))
        return events

    def _on_graphics(self, data: bytes, recv_ns: int) -> list[DecoderEvent]:
        g = parse(self._layouts["graphics"], data)
        status = int(g["status"])
        if status not in STATUS_NAMES:
            raise DecodeError(f"{self.name}: graphics status {status} is not a documented status")
        events: list[DecoderEvent] = []
        if status != self._status:
            if self._status is not None or status != LIVE:
                was = "none" if self._status is None else STATUS_NAMES[self._status]
                then = "" if status == LIVE else ": no samples until LIVE"
                events.append(
                    Notice(f"{self.name}: game status {was} -> {STATUS_NAMES[status]}{then}")
                )
            self._status = status
        if status == OFF:
            self._ident = None  # the session ended: the next live page starts a new one
        else:
            index = int(g["sessionIndex"]) if self.game == "acc" else 0
            ident = (int(g["session"]), index)
            laps = int(g["completedLaps"])
            restarted = status == LIVE and 0 <= laps < self._laps
            if ident != self._ident or restarted:
                self._want_session = True
            self._ident = ident
            if status == LIVE:
                self._laps = laps
        n = self._layouts["graphics"].itemsize // 4
        gvals = self._gf.extract(
            np.frombuffer(data, "<f4", count=n), np.frombuffer(data, "<i4", count=n)
        )
        gvals.update(zip(self._coords, self._player_coordinates(g), strict=True))
        self._gvals = gvals
        return events + self._release(recv_ns)

    def _player_coordinates(self, g: Any) -> list[float]:
        coords = g["carCoordinates"]
        if self.game == "ac":
            return [float(v) for v in coords]
        active = min(max(int(g["activeCars"]), 0), len(coords))
        slot = np.flatnonzero(g["carID"][:active] == g["playerCarID"])
        return [float(v) for v in coords[slot[0]]] if slot.size else [math.nan] * 3

    def _on_static(self, data: bytes, recv_ns: int) -> list[DecoderEvent]:
        info = read_static(data, self.game)
        old = self._static
        if info == old:
            return []
        events: list[DecoderEvent] = []
        if info.variant == 15 and not self._variant_noticed:
            self._variant_noticed = True
            events.append(
                Notice(
                    f"{self.name}: static page written with trackConfiguration[15] "
                    "(formats.md A.3); reading it that way"
                )
            )
        self._static = info
        self._svals = {k: info.values[k] for k in self._static_names}
        if old is not None and old.track_name != info.track_name:
            self._want_session = True
        elif (
            old is not None
            and self._in_session
            and (old.player, old.car_model) != (info.player, info.car_model)
        ):
            events.append(StreamSeen(STREAM, driver=info.player, car=info.car_model))
        return events + self._release(recv_ns)

    # -- session and samples -----------------------------------------------------------------

    def _ready(self) -> bool:
        return self._status is not None and (
            self._static is not None or self._waited >= STATIC_WAIT
        )

    def _release(self, recv_ns: int) -> list[DecoderEvent]:
        """Start a wanted session and emit a held-back sample once the game is live."""
        if not self._ready() or self._status != LIVE:
            self._pending = None if self._ready() else self._pending
            return []
        events: list[DecoderEvent] = []
        if self._want_session:
            self._want_session = False
            self._in_session = True
            info = self._static
            track = info.track_name if info else ""
            session = SESSION_NAMES.get(self._ident[0] if self._ident else -1, "UNKNOWN")
            key = f"{self.name}:{track or '?'}:{session}:{recv_ns}"
            events.append(SessionStarted(key=key, track=track))
            events.append(
                StreamSeen(
                    STREAM, driver=info.player if info else "", car=info.car_model if info else ""
                )
            )
        if self._pending is not None:
            values, t_ns = self._pending
            self._pending = None
            events.append(self._sample(values, t_ns))
        return events

    def _sample(self, values: dict[str, float], recv_ns: int) -> Sample:
        values.update(self._gvals)
        values.update(self._svals)
        return Sample(STREAM, recv_ns, values)


class _Plan:
    """Picks named 32-bit words out of a page in two vectorised takes."""

    __slots__ = ("fi", "fn", "ii", "in_")

    def __init__(self, fields: list[tuple[str, int, str]]) -> None:
        self.fn = [n for n, _, k in fields if k == "f"]
        self.fi = np.array([i for _, i, k in fields if k == "f"], dtype=np.intp)
        self.in_ = [n for n, _, k in fields if k == "i"]
        self.ii = np.array([i for _, i, k in fields if k == "i"], dtype=np.intp)

    def extract(
        self, words_f: np.ndarray[Any, Any], words_i: np.ndarray[Any, Any]
    ) -> dict[str, float]:
        out: dict[str, float] = dict(zip(self.fn, words_f[self.fi].tolist(), strict=True))
        out.update(zip(self.in_, words_i[self.ii].tolist(), strict=True))
        return out


class AccDecoder(_KunosDecoder):
    """Assetto Corsa Competizione shared memory (physics 800, graphics 1588, static 820 B)."""

    name: ClassVar[str] = "acc"
    game: ClassVar[Game] = "acc"
    manifest = load_builtin("acc")


class AcDecoder(_KunosDecoder):
    """Assetto Corsa shared memory (physics 580, graphics 296, static 684 B)."""

    name: ClassVar[str] = "ac"
    game: ClassVar[Game] = "ac"
    manifest = load_builtin("ac")
