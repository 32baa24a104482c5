"""Server figures: counters and a latency reservoir, read by ``GET /api/stats`` and bench/."""

from __future__ import annotations

import os

import numpy as np


class LatencyReservoir:
    """The last ``size`` latency samples [ns], for percentiles without unbounded memory."""

    def __init__(self, size: int = 100_000) -> None:
        self._buf = np.zeros(size, np.int64)
        self._n = 0

    def add(self, ns: int) -> None:
        self._buf[self._n % len(self._buf)] = ns
        self._n += 1

    def reset(self) -> None:
        self._n = 0

    def summary(self) -> dict[str, float | int]:
        """p50/p90/p99/max in microseconds and the sample count."""
        n = min(self._n, len(self._buf))
        if n == 0:
            return {"n": 0}
        us = self._buf[:n] / 1e3
        p50, p90, p99 = np.percentile(us, [50, 90, 99])
        return {
            "n": self._n,
            "p50_us": round(float(p50), 1),
            "p90_us": round(float(p90), 1),
            "p99_us": round(float(p99), 1),
            "max_us": round(float(us.max()), 1),
        }


class ServerStats:
    def __init__(self) -> None:
        self.latency = LatencyReservoir()
        self.sends = 0
        self.dropped = 0
        self.ingest_frames = 0
        self.ingest_messages = 0
        self.disconnected_slow = 0


def rss_bytes() -> int:
    """Resident set size of this process [bytes] (Linux /proc, else the peak)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, AttributeError):  # not Linux (no /proc, or no sysconf on Windows)
        try:
            import resource
        except ImportError:  # Windows: not measured
            return 0
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
