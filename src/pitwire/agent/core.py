"""The agent's core, sans-I/O: drops repeated packets, cuts batches at lap changes and
gathers frames into batches of at most ``batch_ns`` of data.

Feed it what a source produced (``feed``) and send what it returns; ``flush(now_ns)``
returns what has waited long enough. Numbering (seq) and keeping frames until they are acked
is ``protocol.peer.AgentPeer``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pitwire.analysis.laps import lap_cuts
from pitwire.model.frames import FrameBatch


@dataclass(eq=False, slots=True)
class _StreamState:
    last_packet: float | None = None
    last_lap: float | None = None
    lap: int | None = None
    pending: list[FrameBatch] = field(default_factory=list)
    pending_since: int = 0


class AgentCore:
    """Per-stream dedup, lap tracking and batching.

    batch_ns: gather frames for at most this long before sending [ns]; 0 sends every batch
        as it comes (lowest latency)
    """

    def __init__(self, *, batch_ns: int = 0) -> None:
        self.batch_ns = batch_ns
        self._streams: dict[str, _StreamState] = {}
        self.duplicates = 0
        self.frames_in = 0

    def lap(self, stream: str) -> int | None:
        st = self._streams.get(stream)
        return st.lap if st else None

    def feed(self, stream: str, batch: FrameBatch, now_ns: int) -> list[tuple[str, FrameBatch]]:
        """Take a source's batch; return the batches now ready to send, in order."""
        st = self._streams.get(stream)
        if st is None:
            st = self._streams[stream] = _StreamState()
        self.frames_in += batch.n
        batch = self._dedup(st, batch)
        if batch.n == 0:
            return []
        ready: list[tuple[str, FrameBatch]] = []
        laps = batch.columns.get("lap")
        start = 0
        for cut in lap_cuts(laps, st.last_lap):
            # A new lap starts at ``cut``: what came before goes out now (flush on lap change).
            if cut > start:
                self._add(st, batch.slice(start, cut), now_ns)
            ready.extend(self._take(stream, st))
            start = cut
        self._add(st, batch.slice(start, batch.n) if start else batch, now_ns)
        if laps is not None:
            st.last_lap = float(laps[-1])
            st.lap = int(laps[-1]) if laps[-1] == laps[-1] else None  # NaN: not known
        if self.batch_ns <= 0 or now_ns - st.pending_since >= self.batch_ns:
            ready.extend(self._take(stream, st))
        return ready

    def flush(self, now_ns: int | None = None) -> list[tuple[str, FrameBatch]]:
        """Batches that waited ``batch_ns`` (all pending ones when ``now_ns`` is None)."""
        out: list[tuple[str, FrameBatch]] = []
        for stream, st in self._streams.items():
            if st.pending and (now_ns is None or now_ns - st.pending_since >= self.batch_ns):
                out.extend(self._take(stream, st))
        return out

    def _dedup(self, st: _StreamState, batch: FrameBatch) -> FrameBatch:
        pids = batch.columns.get("packet_id")
        if pids is None or batch.n == 0:
            return batch
        prev = np.empty_like(pids)
        prev[0] = np.nan if st.last_packet is None else st.last_packet
        prev[1:] = pids[:-1]
        keep = pids != prev
        st.last_packet = float(pids[-1])
        if keep.all():
            return batch
        self.duplicates += int((~keep).sum())
        return FrameBatch(batch.t_ns[keep], {n: c[keep] for n, c in batch.columns.items()})

    @staticmethod
    def _add(st: _StreamState, batch: FrameBatch, now_ns: int) -> None:
        if batch.n:
            if not st.pending:
                st.pending_since = now_ns
            st.pending.append(batch)

    @staticmethod
    def _take(stream: str, st: _StreamState) -> list[tuple[str, FrameBatch]]:
        if not st.pending:
            return []
        batch = FrameBatch.concat(st.pending)
        st.pending = []
        return [(stream, batch)]
