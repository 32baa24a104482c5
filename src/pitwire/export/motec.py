"""MoTeC i2 export: one ``.ld`` (logged data) and one ``.ldx`` (lap beacons) per stream.

Files: ``<dest>/<session>_<stream>.ld`` and the same name with ``.ldx`` (``dest`` rules in
:mod:`pitwire.export.base`), so i2 opens each car's log with its laps.

**Resampling.** An ``.ld`` channel has one sample rate [Hz]; every channel of a stream gets
the stream's rate: 1 s over the median interval between frames, rounded to an integer
(1-65535 Hz). Sample k sits at ``t0 + round(k / rate)`` (whole ns) from the stream's
earliest frame ``t0``; there are ``round((t_last - t0) * rate) + 1`` of them (halves
rounded down), so a stream
sampled at about its rate gives exactly one sample per frame (60 Hz frames 16666666 or
16666667 ns apart: one sample each, none repeated or dropped). Each sample takes the value
of the latest frame at or before its time plus half a period, i.e. the frame that falls
on it (sample and hold: no invented values, gear and lap stay integers; a gap in the data
holds the last value before it).
Frames are taken in time order (a stable sort: frames of a stream whose clock went
backwards, e.g. a game restart, are merged by time; of frames with the same time, the one
later in the stream wins).

**Storage.** A channel with a resolution that is a decimal step (``m * 10**-d``: 0.01, 0.5,
1, 0.0001) is stored as int16 or int32 steps with ``dec = d`` and multiplier ``m``, which i2
also uses for the displayed decimals; otherwise (no resolution, steps that do not fit int32,
NaN or infinities after resampling) it is float32 with NaN kept. float64 channels without
a resolution lose precision in float32 (the format has no float64).
Names are pitwire's channel names; units are written for i2 (``°C`` → ``C``, ``1/min`` →
``rpm``); strings are Windows-1252, cut to their field. Short names (7 characters and the
terminating zero) are unique within a file: a name that fits is kept, a longer one is
abbreviated word by word (``tyre_temp_fl`` → ``tyrtefl``, ``lap_distance`` → ``lapdist``)
and one that would still repeat an earlier short name (letter case ignored) gets a number
at its end (``throttle``, ``throttles`` → ``throttl``, ``thrott2``).

**The .ld layout** (little-endian; public descriptions of the format, all offsets hex)::

    header   0x000 u32 0x40 marker, 0x008 u32 first channel meta, 0x00C u32 first data,
             0x024 u32 event block, 0x040 u16 1, 0x4240, 0x0F, 0x046 u32 device serial,
             0x04A 8s device type, 0x052 u16 version, 0x054 u16 0xADB0, 0x056 u32 channels,
             0x05E 16s date dd/mm/yyyy, 0x07E 16s time hh:mm:ss, 0x09E 64s driver,
             0x0DE 64s vehicle, 0x11E 64s engine, 0x15E 64s venue, 0x5DE u32 0xC81A4,
             0x624 64s short comment; 0x6E2 bytes
    event    64s name, 64s session, 1024s comment, u32 venue block, u32 weather block (0)
    venue    64s name, 0x042 u32 length [mm], 0x44A u32 vehicle block
    vehicle  64s id, 0x0C0 u32 weight [kg], 32s type, 32s comment
    channel  u32 previous meta, u32 next meta (0 ends the list), u32 data, u32 samples,
             u16 0x2EE1 + index, u16 kind (3 int16, 5 int32, 7 float), u16 bytes per
             sample, u16 rate [Hz], i16 shift, i16 mul, i16 scale, i16 dec,
             32s name, 8s short name, 12s unit, 40 bytes zero; 0x7C bytes each
    data     each channel's samples, one channel after another

    value = (raw / scale * 10**-dec + shift) * mul

The header's date and time are the first frame's, in UTC; the header's driver, vehicle
and venue are the stream's driver, car and the session's track; the event block names the
session and its source.

**The .ldx** is XML: one ``Beacons`` marker (``Time`` [µs] from the log start) at each lap
start after the first sample, so i2's laps are pitwire's laps (the part before the first
beacon is a lap of its own in i2); details give the lap count and the fastest lap (lap 0,
the out lap, and laps whose time is NaN or infinite excluded; no fastest lap when none is
left).
"""

from __future__ import annotations

import math
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pitwire.export.base import (
    ExportError,
    Progress,
    SessionData,
    columns_of,
    select,
    stream_paths,
)
from pitwire.model.channels import Channel
from pitwire.model.frames import Column, FrameBatch
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo

HEADER = struct.Struct("<I4xII20xI24xHHHI8sHHI4x16s16x16s16x64s64s64s64s64x1024xI66x64s126x")
EVENT = struct.Struct("<64s64s1024sII")
VENUE = struct.Struct("<64s2xI1028xI")
VEHICLE = struct.Struct("<64s128xI32s32s")
CHANNEL = struct.Struct("<IIIIHHHHhhhh32s8s12s40x")

KIND_INT16 = 0x03
KIND_INT32 = 0x05
KIND_FLOAT = 0x07
MAX_RATE = 65535
MAX_HOLD = 20
"""At most this many samples per frame (plus a million) when resampling onto the fixed rate."""
SHORT_NAME = 7
"""Characters of a channel's short name (its 8-byte field keeps a terminating zero)."""
UNITS = {"°C": "C", "1/min": "rpm"}
"""pitwire units spelt the way i2 spells them."""


def _text(value: str, size: int) -> bytes:
    """``value`` as Windows-1252, cut to leave a terminating zero in a ``size``-byte field."""
    return value.encode("cp1252", errors="replace")[: size - 1]


# -- short names ----------------------------------------------------------------------------

_WORDS = re.compile(r"[\W_]+")


def abbreviate(name: str, size: int = SHORT_NAME) -> str:
    """``name`` in at most ``size`` characters: itself when it fits; else its words (split
    at ``_`` and other non-word characters) each cut to the same length, the longest that
    fits, the characters left over given to the first words (``tyre_temp_fl`` →
    ``tyrtefl``); a single word is cut."""
    if len(name) <= size:
        return name
    words = [w for w in _WORDS.split(name) if w]
    if len(words) < 2:
        return (words[0] if words else name)[:size]
    if len(words) > size:
        return "".join(w[0] for w in words)[:size]
    k = 1
    while sum(min(len(w), k + 1) for w in words) <= size and any(len(w) > k for w in words):
        k += 1
    cut = [w[:k] for w in words]
    spare = size - sum(len(c) for c in cut)
    for i, w in enumerate(words):
        extra = min(spare, len(w) - len(cut[i]))
        cut[i] = w[: len(cut[i]) + extra]
        spare -= extra
    return "".join(cut)


def short_names(names: Sequence[str], size: int = SHORT_NAME) -> list[str]:
    """A short name per name, unique (ignoring letter case) and at most ``size`` characters
    as Windows-1252 writes them: :func:`abbreviate`, with a number at the end of one that
    repeats an earlier one."""
    used: set[str] = set()
    out: list[str] = []
    for name in names:
        base = abbreviate(name.encode("cp1252", errors="replace").decode("cp1252"), size)
        short, number = base, 1
        while short.casefold() in used or not short:
            number += 1
            suffix = str(number)
            short = base[: size - len(suffix)] + suffix
        used.add(short.casefold())
        out.append(short)
    return out


# -- resampling -----------------------------------------------------------------------------


def sample_rate(t_ns: np.ndarray) -> int:
    """The stream's rate [Hz]: 1 s / median interval between frames in time order, rounded
    (1 when unknown)."""
    if len(t_ns) < 2:
        return 1
    dt = np.diff(np.sort(t_ns, kind="stable"))
    dt = dt[dt > 0]
    if not len(dt):
        return 1
    return int(min(MAX_RATE, max(1, round(1e9 / float(np.median(dt))))))


def time_order(t_ns: np.ndarray) -> np.ndarray:
    """The frames' indices in time order (stable: equal times keep their order)."""
    if len(t_ns) < 2 or bool((t_ns[1:] >= t_ns[:-1]).all()):
        return np.arange(len(t_ns), dtype=np.intp)
    order: np.ndarray = np.argsort(t_ns, kind="stable")
    return order


def sample_count(span_ns: int, rate: int) -> int:
    """Samples at ``rate`` [Hz] over ``span_ns`` from the first frame to the last: the span
    in periods, rounded (halves down), plus one, so that frames at about ``rate`` give one
    sample each (1200 frames 16666666 or 16666667 ns apart: 1200 samples at 60 Hz) and the
    last sample is the first whose window (its time plus half a period) reaches the last
    frame."""
    return -((500_000_000 - int(span_ns) * rate) // 1_000_000_000) + 1


def sample_times(t0_ns: int, count: int, rate: int) -> np.ndarray:
    """``t0 + round(k * 1 s / rate)`` [ns] for k in 0 .. count - 1 (halves rounded up; exact
    integer arithmetic)."""
    k = np.arange(count, dtype=np.int64)
    offsets: np.ndarray = (k * 2_000_000_000 + rate) // (2 * rate)
    return int(t0_ns) + offsets


def hold_indices(t_ns: np.ndarray, rate: int) -> np.ndarray:
    """For each sample time (:func:`sample_times` from the earliest frame, :func:`sample_count`
    of them), the index in ``t_ns`` of the latest frame at or before the sample time plus
    half a period (the frame nearest a sample on a grid that matches the frames, the last
    one held across a gap); ``t_ns`` in any order: of equal times, the later index. Raises
    ExportError when there would be over MAX_HOLD times the frames (a stray timestamp far
    from the rest)."""
    if not len(t_ns):
        return np.empty(0, np.intp)
    order = time_order(t_ns)
    t = t_ns[order]
    count = sample_count(int(t[-1]) - int(t[0]), rate)
    if count > MAX_HOLD * len(t) + 1_000_000:
        raise ExportError(
            f"{len(t)} frames span {(t[-1] - t[0]) / 1e9:.0f} s: {count} samples at "
            f"{rate} Hz is too many for a fixed-rate .ld (a stray timestamp?)"
        )
    half = 500_000_000 // rate
    grid = sample_times(int(t[0]), count, rate) + half
    idx: np.ndarray = order[np.searchsorted(t, grid, side="right") - 1]
    return idx


# -- channel storage ------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """One channel as the .ld stores it: ``value = raw * 10**-dec * mul``."""

    kind: int
    dec: int
    mul: int
    raw: np.ndarray

    @property
    def width(self) -> int:
        return int(self.raw.dtype.itemsize)


def decimal_step(resolution: float) -> tuple[int, int] | None:
    """``(dec, mul)`` with ``resolution == mul * 10**-dec`` and mul an int16; None if none."""
    for dec in range(10):
        scaled = resolution * 10**dec
        mul = round(scaled)
        if abs(scaled - mul) <= 1e-6:
            return (dec, mul) if 1 <= mul <= 32767 else None
    return None


def store(channel: Channel, values: Column) -> Stored:
    """How ``values`` of ``channel`` are stored: int16/int32 steps of the resolution where
    possible, else float32."""
    step = None if channel.resolution is None else decimal_step(channel.resolution)
    if step is not None and channel.resolution is not None and np.isfinite(values).all():
        steps = np.rint(values.astype(np.float64) / channel.resolution)
        lo, hi = (float(steps.min()), float(steps.max())) if len(steps) else (0.0, 0.0)
        for kind, dtype in ((KIND_INT16, np.dtype("<i2")), (KIND_INT32, np.dtype("<i4"))):
            info = np.iinfo(dtype)
            if info.min <= lo and hi <= info.max:
                return Stored(kind, step[0], step[1], steps.astype(dtype))
    return Stored(KIND_FLOAT, 0, 1, values.astype("<f4"))


# -- writing --------------------------------------------------------------------------------


def ld_bytes(
    info: SessionInfo, stream: StreamInfo, batch: FrameBatch, channels: list[Channel]
) -> tuple[bytes, int]:
    """The .ld file of one stream, and its sample rate [Hz]."""
    rate = sample_rate(batch.t_ns)
    idx = hold_indices(batch.t_ns, rate)
    columns = columns_of(batch, channels)
    stored = [store(c, columns[c.name][idx]) for c in channels]

    event_at = HEADER.size
    venue_at = event_at + EVENT.size
    vehicle_at = venue_at + VENUE.size
    meta_at = vehicle_at + VEHICLE.size
    data_at = meta_at + CHANNEL.size * len(channels)
    start = datetime.fromtimestamp(log_start(batch, info) / 1e9, UTC)
    shorts = short_names([c.name for c in channels])

    out = bytearray()
    out += HEADER.pack(
        0x40,
        meta_at if channels else 0,
        data_at,
        event_at,
        1,
        0x4240,
        0x0F,
        0x1F44,
        b"ADL",
        420,
        0xADB0,
        len(channels),
        start.strftime("%d/%m/%Y").encode(),
        start.strftime("%H:%M:%S").encode(),
        _text(stream.driver, 64),
        _text(stream.car, 64),
        b"",
        _text(info.track, 64),
        0xC81A4,
        _text(stream.stream_id, 64),
    )
    out += EVENT.pack(
        _text(info.session_id, 64),
        _text(info.source, 64),
        _text(f"pitwire export of stream {stream.stream_id}", 1024),
        venue_at,
        0,
    )
    out += VENUE.pack(_text(info.track, 64), 0, vehicle_at)
    out += VEHICLE.pack(_text(stream.car, 64), 0, b"", b"")
    pointer = data_at
    for i, (c, s, short) in enumerate(zip(channels, stored, shorts, strict=True)):
        here = meta_at + i * CHANNEL.size
        out += CHANNEL.pack(
            here - CHANNEL.size if i else 0,
            here + CHANNEL.size if i + 1 < len(channels) else 0,
            pointer,
            len(s.raw),
            (0x2EE1 + i) & 0xFFFF,
            s.kind,
            s.width,
            rate,
            0,
            s.mul,
            1,
            s.dec,
            _text(c.name, 32),
            _text(short, SHORT_NAME + 1),
            _text(UNITS.get(c.unit, c.unit), 12),
        )
        pointer += s.raw.nbytes
    for s in stored:
        out += s.raw.tobytes()
    return bytes(out), rate


def log_start(batch: FrameBatch, info: SessionInfo) -> int:
    """When the .ld log starts [ns since epoch]: the earliest frame (the session's start
    when there are none)."""
    return int(batch.t_ns.min()) if batch.n else info.started_ns


def ldx_text(laps: list[LapInfo], start_ns: int) -> str:
    """The .ldx of a log starting at ``start_ns``: a beacon at each lap start after it."""
    laps = sorted(laps, key=lambda lap: lap.t0_ns)
    beacons = sorted({lap.t0_ns - start_ns for lap in laps if lap.t0_ns > start_ns})
    root = ET.Element(
        "LDXFile", Locale="English_United States.1252", DefaultLocale="C", Version="1.6"
    )
    layers = ET.SubElement(root, "Layers")
    layer = ET.SubElement(layers, "Layer")
    group = ET.SubElement(ET.SubElement(layer, "MarkerBlock"), "MarkerGroup")
    group.set("Name", "Beacons")
    group.set("Index", "0")
    for i, t in enumerate(beacons, 1):
        ET.SubElement(
            group,
            "Marker",
            Version="100",
            ClassName="BCN",
            Name=f"Manual.{i}",
            Flags="77",
            Time=f"{t / 1e3:.17e}",
        )
    ET.SubElement(layer, "RangeBlock")
    details = ET.SubElement(layers, "Details")
    ET.SubElement(details, "String", Id="Total Laps", Value=str(len(beacons) + 1))
    timed = [(lap_seconds(lap), lap) for lap in laps if lap.lap != 0]
    timed = [(t, lap) for t, lap in timed if math.isfinite(t)]  # NaN/inf: no usable time
    if timed:
        best, lap = min(timed, key=lambda pair: pair[0])
        # i2 numbers the stretches between beacons from 1: the lap starting at the i-th
        # beacon is i2's lap i + 1.
        number = sum(1 for t in beacons if t <= lap.t0_ns - start_ns) + 1
        minutes, rest = divmod(best, 60.0)
        ET.SubElement(details, "String", Id="Fastest Time", Value=f"{int(minutes)}:{rest:06.3f}")
        ET.SubElement(details, "String", Id="Fastest Lap", Value=str(number))
    ET.indent(root, space=" ")
    return '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def lap_seconds(lap: LapInfo) -> float:
    """The lap's time [s]: the official one (which may be NaN or infinite), else first to
    last frame."""
    return lap.lap_time if lap.lap_time is not None else (lap.t1_ns - lap.t0_ns) / 1e9


class MotecWriter:
    """MoTeC i2 ``.ld`` + ``.ldx`` per stream."""

    name = "ld"
    suffix = ".ld"

    def paths(
        self,
        session: SessionData,
        dest: Path,
        *,
        streams: list[str] | None = None,
        channels: list[str] | None = None,
    ) -> list[Path]:
        """The files ``write`` would write (nothing is created)."""
        ids = [s.stream_id for s in select(session, streams, channels)]
        ld = stream_paths(session.info.session_id, ids, dest, self.suffix, create=False)
        return [p for path in ld for p in (path, path.with_suffix(".ldx"))]

    def write(
        self,
        session: SessionData,
        dest: Path,
        *,
        streams: list[str] | None = None,
        channels: list[str] | None = None,
        progress: Progress | None = None,
    ) -> list[Path]:
        """Write each selected stream's ``.ld`` and ``.ldx``; return the files."""
        selected = select(session, streams, channels)
        ids = [s.stream_id for s in selected]
        paths = stream_paths(session.info.session_id, ids, dest, self.suffix)
        written: list[Path] = []
        for sel, path in zip(selected, paths, strict=True):
            batch = session.frames(sel.stream_id)
            data, _ = ld_bytes(session.info, sel.stream, batch, sel.channels)
            path.write_bytes(data)
            laps = [lap for lap in session.laps if lap.stream_id == sel.stream_id]
            ldx = path.with_suffix(".ldx")
            ldx.write_text(ldx_text(laps, log_start(batch, session.info)), encoding="utf-8")
            written += [path, ldx]
            if progress is not None:
                progress(batch.n)
        return written
