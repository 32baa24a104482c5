"""Historical Formula 1 from FastF1: a loaded session converted to pitwire streams and laps.

Pure: ``convert`` takes a FastF1-shaped session (duck-typed: ``fastf1.core.Session`` after
``load(laps=True, telemetry=True)``, or the test doubles in tests/f1shapes.py) and returns an
``F1Session`` value. Nothing here imports fastf1 or touches the network; ``load_session`` is
the only function that does, and imports fastf1 when called.

What the data is: F1 live timing sends car data (speed, rpm, gear, throttle, brake, DRS) about
every 240 ms and positions (X/Y/Z) about every 220 ms per car, on separate clocks. Each
driver becomes one stream whose frames sit at the union of both sources' real sample times
(``Date``), so a stream runs at an irregular 4-8 Hz; nothing is resampled to a fixed rate.
At each frame, a continuous channel (speed, rpm, throttle, x, y, z) is interpolated linearly
between the two neighbouring samples of its own source, unless they are more than
``max_gap`` apart (then NaN: a gap is shown as a gap); a discrete channel (gear, brake, drs,
on_track) holds the last sample of its source for at most ``max_gap``.

Errors: bad or missing data degrades: a driver without car or position data is skipped, an
unusable lap is left out; each such problem is logged as a warning and listed in
``F1Session.problems``. ``F1DataError`` (from ``convert``) means there is nothing to convert
at all; ``F1Unavailable``/``F1LoadError`` come from ``load_session`` only::

    F1Error
    ├── F1DataError       the session holds no usable driver telemetry
    ├── F1Unavailable     fastf1 is not installed (the ``f1`` extra)
    └── F1LoadError       fastf1 could not load the session (network, unknown event, ...)
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from pitwire.model.channels import STANDARD, Channel, ChannelSet
from pitwire.model.frames import Column, FrameBatch
from pitwire.model.ids import ID_PATTERN
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo

log = logging.getLogger("pitwire.sources.fastf1")

NS = 1_000_000_000
MAX_GAP_NS = NS
"""Default longest time between two samples of one source that is bridged [ns]."""

TRACK_STREAM = "track"
"""The stream that carries the track status."""


class F1Error(Exception):
    """Historical F1 data could not be had or used."""


class F1DataError(F1Error):
    """The session holds nothing convertible (no driver with telemetry)."""


class F1Unavailable(F1Error):
    """fastf1 is not installed."""


class F1LoadError(F1Error):
    """fastf1 failed to load the session (network, unknown event or session, ...)."""


def _ch(base: str, **changes: Any) -> Channel:
    return msgspec.structs.replace(STANDARD[base], **changes)


DRIVER_CHANNELS = ChannelSet(
    [
        _ch("speed", resolution=1.0),  # live timing reports whole km/h
        _ch("rpm", resolution=1.0),
        _ch("gear", lo=0, hi=8),
        _ch("throttle", resolution=0.01),  # whole percent
        _ch("brake", resolution=1.0, description="brake on (1) / off (0): F1 sends no pressure"),
        _ch("x", resolution=0.1),  # live timing positions are in 1/10 m
        _ch("y", resolution=0.1),
        _ch("z", resolution=0.1),
        _ch("lap"),
        Channel(
            name="drs",
            lo=0,
            hi=255,
            resolution=1.0,
            description="raw DRS code: 0/1 off, 8 eligible (detected), 10/12/14 open",
        ),
        Channel(name="on_track", lo=0, hi=1, resolution=1.0, description="1 on track, 0 off track"),
        Channel(name="car_number", lo=0, hi=999, resolution=1.0, description="racing number"),
    ]
)
"""The channels of one driver's stream: units as the standard set says (throttle 0-1, x/y/z
in m, lap = completed laps), resolutions what live timing delivers."""

TRACK_CHANNELS = ChannelSet(
    [
        Channel(
            name="track_status",
            lo=0,
            hi=9,
            resolution=1.0,
            description="F1 track status at each change: 1 green, 2 yellow, 4 safety car, "
            "5 red, 6 VSC, 7 VSC ending",
        )
    ]
)

_CONTINUOUS = {"speed": "Speed", "rpm": "RPM", "throttle": "Throttle"}
_POSITION = {"x": "X", "y": "Y", "z": "Z"}
_DISCRETE = {"gear": "nGear", "brake": "Brake", "drs": "DRS"}

SESSION_CODES = {
    "race": "r",
    "qualifying": "q",
    "sprint": "s",
    "sprint qualifying": "sq",
    "sprint shootout": "ss",
    "practice 1": "fp1",
    "practice 2": "fp2",
    "practice 3": "fp3",
}


@dataclass(frozen=True)
class F1Session:
    """A converted session: its info, one (StreamInfo, frames) per driver plus the track
    status stream (``TRACK_STREAM``, last), the laps, and what was skipped or degraded."""

    info: SessionInfo
    streams: list[tuple[StreamInfo, FrameBatch]]
    laps: list[LapInfo]
    problems: list[str] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(batch.n for _, batch in self.streams)


# -- loading (the only part that imports fastf1) ---------------------------------------------


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pitwire/fastf1`` (``~/.cache/pitwire/fastf1``)."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pitwire" / "fastf1"


def load_session(year: int, event: str | int, session: str, cache: Path | None = None) -> Any:
    """A fastf1 session with laps and telemetry loaded (network on first use, then the cache
    in ``cache``, created if missing). F1Unavailable without fastf1; F1LoadError when fastf1
    cannot load it."""
    try:
        import fastf1
    except ImportError as exc:
        raise F1Unavailable("historical F1 needs the f1 extra: pip install 'pitwire[f1]'") from exc
    folder = cache or default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fastf1.Cache.enable_cache(str(folder))
        found = fastf1.get_session(year, event, session)
        found.load(laps=True, telemetry=True, weather=False, messages=False)
        _ = found.car_data  # raises when telemetry did not load
    except F1Error:
        raise
    except Exception as exc:  # fastf1 raises many kinds (requests, ValueError, its own)
        raise F1LoadError(
            f"cannot load F1 {year} {event!r} {session!r}: {type(exc).__name__}: {exc}"
        ) from exc
    return found


# -- conversion ------------------------------------------------------------------------------


def slug(text: str) -> str:
    """``text`` as lowercase letters, digits and '-' (``São Paulo`` → ``sao-paulo``)."""
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


def session_id_for(year: int, location: str, session: str) -> str:
    """``f1-<year>-<location>-<session>``, e.g. ``f1-2024-monza-r`` (at most 64 characters)."""
    code = SESSION_CODES.get(session.strip().lower(), session)
    return "-".join(p for p in ("f1", str(year), slug(location), slug(code)) if p)[:64]


def convert(
    session: Any, *, session_id: str | None = None, max_gap_ns: int = MAX_GAP_NS
) -> F1Session:
    """Convert a loaded FastF1-shaped session (see the module docstring).

    session_id: the pitwire session id (default ``session_id_for`` its year, location, name)
    max_gap_ns: the longest gap between two samples of a source bridged [ns]
    """
    import pandas as pd

    problems: list[str] = []

    def problem(text: str) -> None:
        log.warning("%s", text)
        problems.append(text)

    t0_ns = _timestamp_ns(getattr(session, "t0_date", None))
    if t0_ns is None:
        raise F1DataError("the session has no t0_date (was it loaded with telemetry=True?)")
    event: Any = _get(session, "event", None)
    location = str(_value(event, "Location") or _value(event, "EventName") or "")
    name = str(_get(session, "name", "") or "")
    if session_id is None:
        year = _year(session, event, t0_ns)
        session_id = session_id_for(year, location, name)
    if not ID_PATTERN.match(session_id):
        raise F1DataError(f"session id {session_id!r} is not a valid id")
    info = SessionInfo(session_id=session_id, track=location, source="fastf1", started_ns=t0_ns)

    car_data: Mapping[str, Any] = _get(session, "car_data", None) or {}
    pos_data: Mapping[str, Any] = _get(session, "pos_data", None) or {}
    laps_table = _get(session, "laps", None)
    streams: list[tuple[StreamInfo, FrameBatch]] = []
    laps: list[LapInfo] = []
    seen: set[str] = set()
    for number in [str(n) for n in list(_get(session, "drivers", None) or [])]:
        meta = _driver(session, number)
        stream_id = str(meta.get("Abbreviation") or "").strip() or number
        if not ID_PATTERN.match(stream_id) or stream_id in (seen | {TRACK_STREAM}):
            stream_id = f"car-{number}"
        car, pos = car_data.get(number), pos_data.get(number)
        if _empty(car) or _empty(pos):
            missing = " and ".join(w for w, df in (("car", car), ("position", pos)) if _empty(df))
            problem(f"driver {number} ({stream_id}) has no {missing} data; skipped")
            continue
        driver_laps = _driver_laps(laps_table, number, pd)
        try:
            batch = merge_driver(car, pos, driver_laps, t0_ns, int(number), max_gap_ns, pd)
        except (KeyError, ValueError, TypeError) as exc:
            problem(f"driver {number} ({stream_id}): unusable telemetry ({exc}); skipped")
            continue
        if batch.n == 0:
            problem(f"driver {number} ({stream_id}) has no timed samples; skipped")
            continue
        seen.add(stream_id)
        colour = str(meta.get("TeamColor") or "").strip().lstrip("#")
        stream = StreamInfo(
            stream_id=stream_id,
            driver=str(meta.get("FullName") or meta.get("Abbreviation") or number),
            car=str(meta.get("TeamName") or ""),
            channels=list(DRIVER_CHANNELS.values()),
            colour=f"#{colour.lower()}" if re.fullmatch(r"[0-9A-Fa-f]{6}", colour) else "",
        )
        streams.append((stream, batch))
        laps.extend(lap_infos(driver_laps, stream_id, batch.t_ns, t0_ns, problem, pd))
    if not streams:
        raise F1DataError(
            "no driver of the session has car and position data"
            + (f" ({problems[0]}; ...)" if problems else "")
        )
    track = track_status_batch(_get(session, "track_status", None), t0_ns, problem, pd)
    streams.append(
        (StreamInfo(stream_id=TRACK_STREAM, channels=list(TRACK_CHANNELS.values())), track)
    )
    return F1Session(info=info, streams=streams, laps=laps, problems=problems)


def merge_driver(
    car: Any, pos: Any, laps: Any, t0_ns: int, number: int, max_gap_ns: int, pd: Any
) -> FrameBatch:
    """One driver's frames (``DRIVER_CHANNELS``) at the union of the car and position
    sample times; see the module docstring for the interpolation policy."""
    t_car, car = _timed(car, t0_ns, pd)
    t_pos, pos = _timed(pos, t0_ns, pd)
    t = np.union1d(t_car, t_pos)
    cols: dict[str, Column] = {}
    for name, col in _CONTINUOUS.items():
        cols[name] = interpolate(t, t_car, _floats(car, col, pd), max_gap_ns)
    cols["throttle"] = np.clip(cols["throttle"] / 100.0, 0.0, 1.0)
    for name, col in _POSITION.items():
        cols[name] = interpolate(t, t_pos, _floats(pos, col, pd), max_gap_ns) / 10.0
    for name, col in _DISCRETE.items():
        cols[name] = hold(t, t_car, _floats(car, col, pd), max_gap_ns)
    if "Status" in pos.columns:
        status = pos["Status"].astype(str).str.lower().to_numpy()
        on = np.where(status == "ontrack", 1.0, np.where(status == "offtrack", 0.0, np.nan))
    else:
        on = np.full(len(t_pos), np.nan)
    cols["on_track"] = hold(t, t_pos, on, max_gap_ns)
    cols["lap"] = completed_laps(t, laps, t0_ns, pd)
    cols["car_number"] = np.full(len(t), float(number))
    columns = {name: cols[name].astype(ch.dtype) for name, ch in DRIVER_CHANNELS.items()}
    return FrameBatch(t.astype(np.int64), columns)


def interpolate(
    t: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    vs: npt.NDArray[np.float64],
    max_gap_ns: int,
) -> npt.NDArray[np.float64]:
    """``vs`` (sampled at sorted ``ts``) linearly interpolated at ``t``: exact at a sample,
    NaN outside [ts[0], ts[-1]] and between two samples more than ``max_gap_ns`` apart."""
    if len(ts) == 0:
        return np.full(len(t), np.nan)
    out = np.interp(t.astype(np.float64), ts.astype(np.float64), vs)
    j = np.searchsorted(ts, t, side="left")
    inside = np.clip(j, 0, len(ts) - 1)
    exact = ts[inside] == t
    before = np.clip(j - 1, 0, len(ts) - 1)
    bridged = (j > 0) & (j < len(ts)) & (ts[inside] - ts[before] <= max_gap_ns)
    out[~(exact | bridged)] = np.nan
    out[exact] = vs[inside[exact]]
    return out


def hold(
    t: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    vs: npt.NDArray[np.float64],
    max_gap_ns: int,
) -> npt.NDArray[np.float64]:
    """``vs`` (sampled at sorted ``ts``) held from the last sample at or before each of
    ``t``, for at most ``max_gap_ns``; NaN before the first sample and after that."""
    j = np.searchsorted(ts, t, side="right") - 1
    out = vs[np.clip(j, 0, max(len(ts) - 1, 0))] if len(ts) else np.full(len(t), np.nan)
    out = np.array(out, dtype=np.float64)
    if len(ts):
        stale = (j < 0) | (t - ts[np.clip(j, 0, len(ts) - 1)] > max_gap_ns)
        out[stale] = np.nan
    return out


def completed_laps(t: npt.NDArray[np.int64], laps: Any, t0_ns: int, pd: Any) -> Column:
    """Completed laps at each of ``t``: the highest LapNumber whose end (``Time``) is at or
    before it, 0 before the first; NaN for every frame when the driver has no laps."""
    if laps is None or len(laps) == 0:
        return np.full(len(t), np.nan)
    ends, ok = _session_ns(laps["Time"], pd)
    numbers = pd.to_numeric(laps["LapNumber"], errors="coerce").to_numpy(dtype=np.float64)
    ok &= np.isfinite(numbers)
    if not ok.any():
        return np.full(len(t), np.nan)
    ends, numbers = ends[ok] + t0_ns, numbers[ok]
    order = np.argsort(ends, kind="stable")
    ends, best = ends[order], np.maximum.accumulate(numbers[order])
    j = np.searchsorted(ends, t, side="right") - 1
    return np.where(j >= 0, best[np.clip(j, 0, None)], 0.0)


def lap_infos(
    laps: Any,
    stream_id: str,
    t_ns: npt.NDArray[np.int64],
    t0_ns: int,
    problem: Any,
    pd: Any,
) -> list[LapInfo]:
    """The LapInfo of each lap of one driver's laps table that has a number and an end time;
    ``t_ns`` (the stream's frame times) counts the frames inside each lap."""
    if laps is None or len(laps) == 0:
        return []
    starts, has_start = _session_ns(laps.get("LapStartTime"), pd, len(laps))
    ends, has_end = _session_ns(laps.get("Time"), pd, len(laps))
    lap_times = _seconds(laps.get("LapTime"), pd, len(laps))
    sectors = [_seconds(laps.get(f"Sector{i}Time"), pd, len(laps)) for i in (1, 2, 3)]
    numbers = _numbers(laps.get("LapNumber"), pd, len(laps))
    stints = _numbers(laps.get("Stint"), pd, len(laps))
    tyre_life = _numbers(laps.get("TyreLife"), pd, len(laps))
    _, pit_in = _session_ns(laps.get("PitInTime"), pd, len(laps))
    _, pit_out = _session_ns(laps.get("PitOutTime"), pd, len(laps))
    compounds = laps["Compound"].tolist() if "Compound" in laps.columns else [None] * len(laps)
    out: list[LapInfo] = []
    skipped = 0
    for i in range(len(laps)):
        if not (math.isfinite(numbers[i]) and has_end[i]):
            skipped += 1
            continue
        t1 = t0_ns + int(ends[i])
        if has_start[i]:
            t0 = t0_ns + int(starts[i])
        elif math.isfinite(lap_times[i]):
            t0 = t1 - round(lap_times[i] * NS)
        else:
            skipped += 1
            continue
        compound = compounds[i]
        out.append(
            LapInfo(
                stream_id=stream_id,
                lap=int(numbers[i]),
                t0_ns=t0,
                t1_ns=t1,
                frames=int(np.count_nonzero((t_ns >= t0) & (t_ns <= t1))),
                lap_time=_finite(lap_times[i]),
                sectors=tuple(_finite(s[i]) for s in sectors),
                compound=compound if isinstance(compound, str) and compound != "nan" else "",
                stint=_int(stints[i]),
                tyre_life=_int(tyre_life[i]),
                pit_in=bool(pit_in[i]),
                pit_out=bool(pit_out[i]),
            )
        )
    if skipped:
        problem(f"{stream_id}: {skipped} laps without a lap number or times left out")
    return out


def track_status_batch(table: Any, t0_ns: int, problem: Any, pd: Any) -> FrameBatch:
    """The track status stream: one frame per change, ``track_status`` the numeric code."""
    if _empty(table) or "Time" not in table.columns or "Status" not in table.columns:
        problem("the session has no track status; the track stream is empty")
        return FrameBatch.empty(TRACK_CHANNELS)
    times, ok = _session_ns(table["Time"], pd)
    codes = pd.to_numeric(table["Status"], errors="coerce").to_numpy(dtype=np.float64)
    ok &= np.isfinite(codes)
    t = times[ok] + t0_ns
    order = np.argsort(t, kind="stable")
    return FrameBatch(
        t[order].astype(np.int64), {"track_status": codes[ok][order].astype(np.float32)}
    )


# -- helpers ---------------------------------------------------------------------------------


def _get(obj: Any, name: str, default: Any) -> Any:
    """``obj.name``; ``default`` when missing or when fastf1 says it was not loaded."""
    try:
        return getattr(obj, name)
    except Exception:  # fastf1's DataNotLoadedError and friends
        return default


def _value(mapping: Any, key: str) -> Any:
    try:
        value = mapping[key]
    except (KeyError, IndexError, TypeError):
        return None
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _driver(session: Any, number: str) -> dict[str, Any]:
    try:
        row = session.get_driver(number)
    except Exception:  # an unknown driver: fall back to the number
        return {}
    return {k: _value(row, k) for k in ("Abbreviation", "FullName", "TeamName", "TeamColor")}


def _year(session: Any, event: Any, t0_ns: int) -> int:
    for value in (_value(event, "EventDate"), _get(session, "date", None)):
        found = getattr(value, "year", None)
        if isinstance(found, int):
            return found
    return int(np.datetime64(t0_ns, "ns").astype("datetime64[Y]").astype(int) + 1970)


def _empty(df: Any) -> bool:
    return df is None or not hasattr(df, "columns") or len(df) == 0


def _timestamp_ns(value: Any) -> int | None:
    if value is None:
        return None
    try:
        found = np.datetime64(value, "ns")
    except (TypeError, ValueError):
        return None
    return None if np.isnat(found) else int(found.astype(np.int64))


def _timed(df: Any, t0_ns: int, pd: Any) -> tuple[npt.NDArray[np.int64], Any]:
    """(sample times [ns since epoch], rows) sorted by time, rows without a time and repeats
    of a time dropped; times from ``Date``, else t0 + ``SessionTime``."""
    if "Date" in df.columns:
        dates = pd.to_datetime(df["Date"], errors="coerce")
        if getattr(dates.dt, "tz", None) is not None:
            dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
        raw = dates.to_numpy(dtype="datetime64[ns]")
        ok = ~np.isnat(raw)
        t = np.where(ok, raw.astype(np.int64), 0)
    elif "SessionTime" in df.columns:
        rel, ok = _session_ns(df["SessionTime"], pd)
        t = rel + t0_ns
    else:
        raise KeyError("neither Date nor SessionTime")
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(t[idx], kind="stable")]
    t = t[idx]
    keep = np.ones(len(t), dtype=bool)
    keep[1:] = t[1:] != t[:-1]
    return t[keep].astype(np.int64), df.iloc[idx[keep]]


def _floats(df: Any, col: str, pd: Any) -> npt.NDArray[np.float64]:
    if col not in df.columns:
        return np.full(len(df), np.nan)
    values = df[col]
    if values.dtype == bool or str(values.dtype) == "boolean":
        values = values.astype("float64")
    result: npt.NDArray[np.float64] = pd.to_numeric(values, errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    return result


def _session_ns(
    series: Any, pd: Any, n: int | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """(session times [ns], valid) of a Timedelta column; a missing column is all invalid."""
    if series is None:
        size = n or 0
        return np.zeros(size, np.int64), np.zeros(size, dtype=bool)
    raw = pd.to_timedelta(series, errors="coerce").to_numpy(dtype="timedelta64[ns]")
    ok = ~np.isnat(raw)
    return np.where(ok, raw.astype(np.int64), 0), ok


def _seconds(series: Any, pd: Any, n: int) -> npt.NDArray[np.float64]:
    ns, ok = _session_ns(series, pd, n)
    return np.where(ok, ns / NS, np.nan)


def _numbers(series: Any, pd: Any, n: int) -> npt.NDArray[np.float64]:
    if series is None:
        return np.full(n, np.nan)
    result: npt.NDArray[np.float64] = pd.to_numeric(series, errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    return result


def _driver_laps(table: Any, number: str, pd: Any) -> Any:
    if _empty(table) or "DriverNumber" not in table.columns:
        return None
    return table[table["DriverNumber"].astype(str) == number]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _int(value: float) -> int | None:
    return int(value) if math.isfinite(value) else None
