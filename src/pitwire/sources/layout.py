"""Binary layouts as data: packed little-endian C structs written as numpy structured dtypes.

A game's packet or shared-memory page is declared once as a field table; the same table
decodes bytes (:func:`parse`, zero-copy) and builds them (:func:`build`, for tests and
replays). Tables are plain lists, so a layout reads like the format document it comes from:

.. code-block:: python

    HEADER = struct("PacketHeader", [("m_packetFormat", U16), ("m_gameYear", U8), ...], size=29)
    CAR = struct("CarMotionData", [("m_worldPositionX", F32), ("dir", I16, 3), ...])
    PACKET = struct("Motion", [("m_header", HEADER), ("m_carMotionData", CAR, 22)], size=1349)

``parse(PACKET, data)["m_carMotionData"][3]["m_worldPositionX"]`` is then a numpy scalar.
Strings: ``char[n]`` fields are ``S{n}`` (decode with :func:`cstr`), ``wchar_t[n]`` fields are
``U16`` arrays (decode with :func:`wstr`; Windows wchar_t is 2 bytes everywhere here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

U8, I8 = np.dtype("u1"), np.dtype("i1")
U16, I16 = np.dtype("<u2"), np.dtype("<i2")
U32, I32 = np.dtype("<u4"), np.dtype("<i4")
U64, I64 = np.dtype("<u8"), np.dtype("<i8")
F32, F64 = np.dtype("<f4"), np.dtype("<f8")

Field = tuple[str, np.dtype[Any]] | tuple[str, np.dtype[Any], int | tuple[int, ...]]


class LayoutError(ValueError):
    """Bytes do not fit a layout (too short), or a layout's size differs from its document."""


def struct(name: str, fields: Sequence[Field], *, size: int | None = None) -> np.dtype[Any]:
    """A packed (no padding) structured dtype; ``size`` [bytes] is checked when given.

    Give explicit padding fields (``("_pad0", U8, 2)``) where the C struct has them.
    """
    dtype = np.dtype(list(fields), align=False)
    if size is not None and dtype.itemsize != size:
        raise LayoutError(f"layout {name}: fields add up to {dtype.itemsize} bytes, not {size}")
    return dtype


def parse(layout: np.dtype[Any], data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
    """The record of ``layout`` at ``offset`` in ``data`` (a read-only view, not a copy)."""
    end = offset + layout.itemsize
    if len(data) < end:
        raise LayoutError(f"{len(data)} bytes, a {layout.itemsize}-byte layout needs {end}")
    return np.frombuffer(data, dtype=layout, count=1, offset=offset)[0]


def build(layout: np.dtype[Any], values: Mapping[str, Any] | None = None) -> bytes:
    """The bytes of one ``layout`` record: zeros, then ``values`` (nested mappings and
    sequences for sub-structs and arrays; strings for char/wchar_t fields)."""
    record = np.zeros((), dtype=layout)
    if values:
        _fill(record, values)
    return record.tobytes()


def _fill(record: Any, values: Mapping[str, Any]) -> None:
    fields = record.dtype.fields
    for key, value in values.items():
        if key not in fields:
            raise KeyError(f"layout has no field {key!r}")
        sub = fields[key][0]
        if sub.names is not None and isinstance(value, Mapping):
            _fill(record[key], value)
        elif sub.subdtype is not None and sub.subdtype[0].names is not None:
            for i, item in enumerate(value):
                _fill(record[key][i], item)
        elif sub.subdtype is not None and sub.subdtype[0] == U16 and isinstance(value, str):
            record[key] = wchars(value, sub.subdtype[1][0])
        elif sub.kind == "S" and isinstance(value, str):
            record[key] = value.encode("utf-8")
        else:
            record[key] = value


def cstr(value: bytes | np.bytes_) -> str:
    """A NUL-terminated ``char[]`` as text (UTF-8, undecodable bytes replaced)."""
    return bytes(value).split(b"\0", 1)[0].decode("utf-8", errors="replace")


def wstr(value: np.ndarray[Any, Any]) -> str:
    """A NUL-terminated ``wchar_t[]`` (UTF-16LE code units) as text."""
    units = np.asarray(value, dtype=U16)
    nul = np.flatnonzero(units == 0)
    end = int(nul[0]) if nul.size else units.size
    return units[:end].tobytes().decode("utf-16-le", errors="replace")


def wchars(text: str, n: int) -> np.ndarray[Any, Any]:
    """``text`` as ``n`` UTF-16LE code units, NUL-padded (and truncated to leave one NUL)."""
    units = np.frombuffer(text.encode("utf-16-le"), dtype=U16)[: n - 1]
    out = np.zeros(n, dtype=U16)
    out[: units.size] = units
    return out


def to_python(record: Any) -> Any:
    """A record as nested dicts/lists of Python numbers and bytes (for tests and dumps)."""
    if isinstance(record, np.void) and record.dtype.names is not None:
        return {name: to_python(record[name]) for name in record.dtype.names}
    if isinstance(record, np.ndarray):
        return [to_python(x) for x in record]
    if isinstance(record, np.generic):
        return record.item()
    return record
