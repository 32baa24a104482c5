"""A stored test session on a closed loop: three cars at 20 Hz with x/y, laps with sectors
and tyres, a few NaNs; shared by the REST and frame-range tests."""

from __future__ import annotations

import struct

import httpx
import numpy as np

from pitwire.model.channels import STANDARD, Channel
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.protocol import frames as wire
from pitwire.store.memory import MemoryStore


async def get(url: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as client:
        return await client.get(path)


T0 = 1_700_000_000_000_000_000
HZ = 20
LAP_TIMES = {"car-1": 62.0, "car-2": 60.5, "car-3": 61.2}
"""Each car's lap time [s]; car-2's lap 2 is 1.5 s faster: the session's fastest lap."""
FASTEST = ("car-2", 2)


def loop_xy(phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position [m] on a closed circuit (about 1.2 x 0.7 km) at ``phase`` laps."""
    th = 2 * np.pi * phase
    return 520 * np.cos(th) + 90 * np.cos(3 * th), 310 * np.sin(th) + 40 * np.sin(2 * th)


def loop_channels(*, rpm: bool = True) -> list[Channel]:
    names = ["speed", "gear", "lap", "x", "y"] + (["rpm"] if rpm else [])
    return [*STANDARD.select(names).values(), Channel(name="packet_id", dtype="f8", lo=0)]


def loop_car(stream: str, offset_s: float) -> tuple[FrameBatch, list[LapInfo]]:
    """One car at HZ: a half out lap (lap 0), three timed laps and 10 s of lap 4, starting
    ``offset_s`` after T0; speed has a few NaNs, x a few too (lost GPS)."""
    base = LAP_TIMES[stream]
    durations = [base / 2, base, base - (1.5 if stream == FASTEST[0] else 0.0), base, 10.0]
    bounds = np.concatenate([[0.0], np.cumsum(durations)])
    t = np.arange(0.0, bounds[-1], 1 / HZ)
    lap = np.searchsorted(bounds, t, side="right") - 1
    phase = np.where(lap == 0, 0.5 + 0.5 * t / durations[0], lap + 0.0)
    inside = lap > 0
    phase[inside] += (t[inside] - bounds[lap[inside]]) / np.array(durations)[lap[inside]]
    x, y = loop_xy(phase)
    t_ns = T0 + np.round((offset_s + t) * 1e9).astype(np.int64)
    n = len(t)
    speed = np.round(180 + 60 * np.sin(6 * np.pi * phase), 2)
    speed[[5, 6, 700]] = np.nan
    x[[40, 41, 42]] = np.nan
    columns = {
        "speed": speed,
        "gear": 1 + np.floor(speed / 50),
        "lap": lap,
        "x": np.round(x, 3),
        "y": np.round(y, 3),
        "rpm": np.round(9000 + 2000 * np.cos(6 * np.pi * phase)),
        "packet_id": np.arange(n) * 1.0 + 0.5,
    }
    chans = loop_channels(rpm=stream != "car-3")
    batch = FrameBatch(t_ns, {c.name: columns[c.name].astype(c.dtype) for c in chans})
    laps = [
        LapInfo(
            stream_id=stream,
            lap=k,
            t0_ns=int(t_ns[lap == k][0]),
            t1_ns=int(t_ns[lap == k][-1]),
            frames=int((lap == k).sum()),
            lap_time=round(durations[k], 3),
            compound="MEDIUM",
            stint=1,
            tyre_life=k,
            sectors=(20.0, 20.5, None),
        )
        for k in range(4)
    ]
    return batch, laps


async def loop_store(
    session: str = "loop", *, laps: bool = True, store: MemoryStore | None = None
) -> MemoryStore:
    """A session of three cars on a closed circuit (car-3 without rpm, car-1 with its own
    colour), stored in chunks of 500 frames, with their laps (in ``store`` if given)."""
    store = MemoryStore() if store is None else store
    await store.open()
    await store.put_session(SessionInfo(session_id=session, track="Loop", started_ns=T0))
    for k, stream in enumerate(LAP_TIMES):
        batch, car_laps = loop_car(stream, offset_s=0.1 * k)
        info = StreamInfo(
            stream_id=stream,
            driver=f"Driver {k + 1}",
            channels=loop_channels(rpm=stream != "car-3"),
            colour="#FF8000" if stream == "car-1" else "",
        )
        await store.put_stream(SessionId(session), info)
        for a in range(0, batch.n, 500):
            await store.write_chunk(
                session_id=SessionId(session),
                stream_id=StreamId(stream),
                first_seq=a,
                batch=batch.slice(a, a + 500),
            )
        for lap in car_laps if laps else ():
            await store.put_lap(SessionId(session), lap)
    return store


class CountingStore(MemoryStore):
    """A MemoryStore counting frame reads."""

    reads = 0

    async def read_frames(self, **kw):  # type: ignore[no-untyped-def]
        self.reads += 1
        return await super().read_frames(**kw)

    async def read_window(self, **kw):  # type: ignore[no-untyped-def]
        self.reads += 1
        return await super().read_window(**kw)


async def counting_loop_store() -> CountingStore:
    store = CountingStore()
    await loop_store(store=store)
    return store


async def window(store: MemoryStore, a_s: float, b_s: float, session: str = "loop"):  # type: ignore[no-untyped-def]
    """What read_window returns for [a_s, b_s) s from the session's first frame (the store
    reopened: the server closes it when it stops)."""
    await store.open()
    return await store.read_window(
        session_id=SessionId(session), t0_ns=T0 + round(a_s * 1e9), t1_ns=T0 + round(b_s * 1e9) - 1
    )


def read_bin(body: bytes) -> list[wire.DataFrame]:
    """Records of u32 LE length + one DATA frame, as docs/rest.md describes."""
    out, pos = [], 0
    while pos < len(body):
        (n,) = struct.unpack_from("<I", body, pos)
        out.append(wire.parse(body[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    assert pos == len(body)
    return out


def same(values: list[float | None] | np.ndarray, stored: np.ndarray) -> bool:
    """True when values read back (None or NaN for NaN) equal the stored column exactly."""
    got = np.array([np.nan if v is None else v for v in values], np.float64).astype(stored.dtype)
    return bool(np.array_equal(got, stored, equal_nan=True))


def rest_order() -> list[str]:
    """The session's channel table order (first appearance over its streams)."""
    return [c.name for c in loop_channels()]
