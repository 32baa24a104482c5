"""Columnar frame batches.

A batch is a time column (``t_ns``: int64 nanoseconds since the Unix epoch) plus one numpy
array per channel, all of the same length. The wire format, storage chunks and the browser's
ring buffers keep this shape, so nothing converts rows to columns on the hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from pitwire.model.channels import ChannelSet

TimeArray = npt.NDArray[np.int64]
Column = npt.NDArray[np.floating]


class FrameBatch:
    """``n`` frames of one stream: ``t_ns`` [ns since epoch] and ``columns`` by channel name.

    Columns are float32 or float64 as the channel's dtype says. A batch owns its arrays; the
    constructor checks lengths but does not copy.
    """

    __slots__ = ("columns", "t_ns")

    def __init__(self, t_ns: TimeArray, columns: Mapping[str, Column]) -> None:
        n = len(t_ns)
        for name, col in columns.items():
            if col.ndim != 1 or len(col) != n:
                raise ValueError(f"column {name!r} has shape {col.shape}, expected ({n},)")
        self.t_ns = t_ns
        self.columns: dict[str, Column] = dict(columns)

    @classmethod
    def trusted(cls, t_ns: TimeArray, columns: dict[str, Column]) -> FrameBatch:
        """A batch of arrays the caller built with the right shapes (no checks: hot paths)."""
        batch = cls.__new__(cls)
        batch.t_ns = t_ns
        batch.columns = columns
        return batch

    @property
    def n(self) -> int:
        return len(self.t_ns)

    def __len__(self) -> int:
        return len(self.t_ns)

    def __repr__(self) -> str:
        return f"FrameBatch(n={self.n}, channels={list(self.columns)})"

    @property
    def t0_ns(self) -> int:
        return int(self.t_ns[0]) if self.n else 0

    @property
    def t1_ns(self) -> int:
        return int(self.t_ns[-1]) if self.n else 0

    @classmethod
    def empty(cls, channels: ChannelSet) -> FrameBatch:
        return cls(np.empty(0, np.int64), {n: np.empty(0, c.dtype) for n, c in channels.items()})

    @classmethod
    def from_rows(
        cls, t_ns: Sequence[int], rows: Sequence[Mapping[str, float]], channels: ChannelSet
    ) -> FrameBatch:
        """Build from row dicts (slow path: compatibility adapters and tests only)."""
        columns = {
            name: np.fromiter((r[name] for r in rows), dtype=ch.dtype, count=len(rows))
            for name, ch in channels.items()
        }
        return cls(np.asarray(t_ns, dtype=np.int64), columns)

    def rows(self) -> list[dict[str, float]]:
        """Row dicts (slow path: compatibility adapters and tests only)."""
        names = list(self.columns)
        lists = [self.columns[n].tolist() for n in names]
        return [dict(zip(names, vals, strict=True)) for vals in zip(*lists, strict=True)]

    def slice(self, start: int, stop: int) -> FrameBatch:
        return FrameBatch(
            self.t_ns[start:stop], {n: c[start:stop] for n, c in self.columns.items()}
        )

    def select(self, names: Iterable[str]) -> FrameBatch:
        return FrameBatch(self.t_ns, {n: self.columns[n] for n in names})

    def equals(self, other: FrameBatch) -> bool:
        return (
            list(self.columns) == list(other.columns)
            and np.array_equal(self.t_ns, other.t_ns)
            and all(np.array_equal(c, other.columns[n]) for n, c in self.columns.items())
        )

    @staticmethod
    def concat(batches: Sequence[FrameBatch]) -> FrameBatch:
        """Join batches of the same channels in order."""
        if not batches:
            raise ValueError("concat needs at least one batch")
        if len(batches) == 1:
            return batches[0]
        names = list(batches[0].columns)
        for b in batches[1:]:
            if list(b.columns) != names:
                raise ValueError("cannot concat batches with different channels")
        return FrameBatch(
            np.concatenate([b.t_ns for b in batches]),
            {n: np.concatenate([b.columns[n] for b in batches]) for n in names},
        )
