"""Numbers as text at each channel's resolution, shared by the CSV and JSON Lines writers.

A channel with a resolution is quantized to it and printed with the decimals the resolution
implies (``speed`` at 0.01 km/h → ``12.30``, never ``12.300000190734863``). A channel without
one is printed exactly: the shortest text that reads back to the same float32/float64.
Rows are built with one ``%`` format per row, which keeps the per-value cost in C.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pitwire.model.channels import Channel
from pitwire.model.frames import Column

MAX_DECIMALS = 9


def decimals(resolution: float) -> int | None:
    """Decimal places that print every multiple of ``resolution`` exactly (0.01 → 2, 0.5 → 1,
    5 → 0); None when no count up to MAX_DECIMALS does (e.g. 1/3)."""
    for d in range(MAX_DECIMALS + 1):
        scaled = resolution * 10**d
        if abs(scaled - round(scaled)) <= 1e-6:
            return d
    return None


def quantize(values: Column, resolution: float) -> np.ndarray:
    """``values`` rounded to the nearest multiple of ``resolution`` (float64, no -0.0)."""
    q: np.ndarray = np.rint(values.astype(np.float64) / resolution) * resolution
    return q + 0.0


def column_text(channel: Channel, values: Column) -> tuple[str, list[object]]:
    """The ``%`` code for one value of ``channel`` and the column's values ready for it."""
    res = channel.resolution
    if res is not None:
        d = decimals(res)
        q = quantize(values, res)
        return ("%r" if d is None else f"%.{d}f"), q.tolist()
    if values.dtype == np.float32:
        # numpy prints the shortest text that reads back to the same float32.
        return "%s", values.astype(str).tolist()
    return "%r", values.astype(np.float64).tolist()


def format_value(channel: Channel, value: float) -> str:
    """One value as column_text would print it (slow path: tests and single values)."""
    code, [text] = column_text(channel, np.array([value], channel.dtype))
    return code % text


def has_non_finite(columns: Sequence[Column]) -> bool:
    """True when any value of ``columns`` is NaN or infinite."""
    return any(not bool(np.isfinite(c).all()) for c in columns if len(c))
