"""The original design's JSON shapes (spec/protocol.md §Compatibility shapes).

A frame is ``{"packetId", "gas", "brake", "fuel", "gear", "rpms", "steerAngle", "speedKmh"}``
and a broadcast is ``{"sessionID", "lap", "data": [frames]}``. The shape has no way to say
"not known": a channel the source lacks, and a value it has not sent yet (NaN), are 0.
"""

from __future__ import annotations

import numpy as np

from pitwire.model.frames import FrameBatch


def compat_message(session_id: str, seq: int, batch: FrameBatch) -> dict[str, object]:
    """The original design's broadcast shape: ``{"sessionID", "lap", "data": [frames]}``."""
    cols = {
        name: np.nan_to_num(c, nan=0.0, posinf=0.0, neginf=0.0) for name, c in batch.columns.items()
    }
    n = batch.n

    def col(name: str, default: float = 0.0) -> list[float]:
        c = cols.get(name)
        if c is None:
            return [default] * n
        if c.dtype == np.float32:
            # The shortest decimal that is this float32 (0.1, not 0.10000000149011612).
            return [float(s) for s in c.astype(str)]
        return list(map(float, c.tolist()))

    pids = cols.get("packet_id")
    packet_ids = pids.astype("int64").tolist() if pids is not None else list(range(seq, seq + n))
    gears = cols.get("gear")
    rpms = cols.get("rpm")
    lap = cols.get("lap")
    data = [
        {
            "packetId": p,
            "gas": g,
            "brake": b,
            "fuel": f,
            "gear": gr,
            "rpms": r,
            "steerAngle": st,
            "speedKmh": sp,
        }
        for p, g, b, f, gr, r, st, sp in zip(
            packet_ids,
            col("throttle"),
            col("brake"),
            col("fuel"),
            gears.astype("int64").tolist() if gears is not None else [0] * n,
            rpms.astype("int64").tolist() if rpms is not None else [0] * n,
            col("steer"),
            col("speed"),
            strict=True,
        )
    ]
    return {
        "sessionID": session_id,
        "lap": int(lap[-1]) if lap is not None and n else 0,
        "data": data,
    }
