"""The persistence worker: buffers frames per stream and writes chunks to the store.

Isolated from ingest and fan-out: ``enqueue`` only appends to a buffer; a separate task writes
chunks of at most ``max_frames`` frames or ``max_age`` seconds of buffering, and at every lap
change. A failed write is logged and retried with backoff, and its frames are kept: the worker
never crashes the server and never drops what it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pitwire.analysis.laps import LapTracker, lap_cuts
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.store.base import Store, StoreError, StoreUnavailable

log = logging.getLogger("pitwire.persist")

OnStored = Callable[[str, str, int], None]
"""Called with (session, stream, last seq) after frames up to that seq are durable."""


@dataclass(eq=False, slots=True)
class _Buffer:
    session: str
    stream: str
    laps: LapTracker
    batches: list[tuple[int, FrameBatch]] = field(default_factory=list)
    frames: int = 0
    since: float = 0.0
    cut: bool = False  # a lap boundary is buffered: write what precedes it now
    last_lap: float | None = None


class Persistence:
    def __init__(
        self,
        store: Store,
        *,
        max_frames: int = 1000,
        max_age: float = 1.0,
        on_stored: OnStored | None = None,
    ) -> None:
        self.store = store
        self.max_frames = max_frames
        self.max_age = max_age
        self.on_stored = on_stored
        self._buffers: dict[tuple[str, str], _Buffer] = {}
        self._wake = asyncio.Event()
        self.stored_frames = 0
        self.failed_writes = 0
        self.rejected_frames = 0
        self.healthy = True
        self._backoff = 0.0

    @property
    def buffered_frames(self) -> int:
        return sum(b.frames for b in self._buffers.values())

    def enqueue(self, session: str, stream: str, seq: int, batch: FrameBatch) -> None:
        """Hand frames seq .. seq+n-1 over for storage (never blocks, never drops)."""
        buf = self._buffers.get((session, stream))
        if buf is None:
            buf = self._buffers[(session, stream)] = _Buffer(session, stream, LapTracker(stream))
        # Split at lap changes so that a chunk never spans two laps.
        start = 0
        laps = batch.columns.get("lap")
        for cut in lap_cuts(laps, buf.last_lap):
            if cut > start:
                self._append(buf, seq + start, batch.slice(start, cut))
            buf.cut = buf.cut or bool(buf.batches)
            start = cut
        self._append(buf, seq + start, batch.slice(start, batch.n) if start else batch)
        if laps is not None and batch.n:
            buf.last_lap = float(laps[-1])
        if buf.frames >= self.max_frames or buf.cut:
            self._wake.set()

    def _append(self, buf: _Buffer, seq: int, batch: FrameBatch) -> None:
        if batch.n == 0:
            return
        if not buf.batches:
            buf.since = time.monotonic()
        # Split here so that no chunk exceeds max_frames, whatever size the batch came in.
        step = max(1, self.max_frames)
        for start in range(0, batch.n, step):
            piece = batch if batch.n <= step else batch.slice(start, start + step)
            buf.batches.append((seq + start, piece))
        buf.frames += batch.n

    async def run(self) -> None:
        """Write due chunks until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(0.1, self.max_age / 4))
            self._wake.clear()
            await self.flush(force=False)
            if self._backoff:
                await asyncio.sleep(self._backoff)

    async def flush(self, *, force: bool = True) -> None:
        """Write every buffer that is due (all of them when ``force``)."""
        now = time.monotonic()
        for buf in list(self._buffers.values()):
            while buf.batches and (
                force or buf.cut or buf.frames >= self.max_frames or now - buf.since >= self.max_age
            ):
                if not await self._write_one(buf):
                    return

    async def flush_stream(self, session: str, stream: str) -> None:
        """Write everything buffered for one stream now; raise StoreError if the store fails."""
        buf = self._buffers.get((session, stream))
        while buf is not None and buf.batches:
            if not await self._write_one(buf):
                raise StoreError(f"could not store buffered frames of {session}/{stream}")

    async def _write_one(self, buf: _Buffer) -> bool:
        # Take batches up to max_frames, stopping at a lap change.
        lap = _lap_of(buf.batches[0][1])
        take, n = 0, 0
        for _seq, b in buf.batches:
            if take and (n + b.n > self.max_frames or _lap_of(b) != lap):
                break
            take += 1
            n += b.n
        chunk = buf.batches[:take]
        seq0 = chunk[0][0]
        batch = FrameBatch.concat([b for _, b in chunk])
        # Feed a copy of the lap tracker: a retried chunk must not be counted twice.
        laps = copy.copy(buf.laps)
        try:
            await self.store.write_chunk(
                session_id=SessionId(buf.session),
                stream_id=StreamId(buf.stream),
                first_seq=seq0,
                batch=batch,
            )
            for lap_info in laps.feed(batch):
                await self.store.put_lap(SessionId(buf.session), lap_info)
        except (StoreUnavailable, OSError) as exc:
            self.failed_writes += 1
            self.healthy = False
            self._backoff = min(5.0, max(0.2, self._backoff * 2))
            log.warning(
                "store write failed (%s); keeping %d frames of %s/%s and retrying in %.1f s",
                exc,
                buf.frames,
                buf.session,
                buf.stream,
                self._backoff,
            )
            return False
        except StoreError as exc:
            # The store refuses these frames for good (e.g. they do not match the stream's
            # schema): retrying cannot help, and holding them would stall the stream.
            self.rejected_frames += n
            log.error(
                "store rejected %d frames of %s/%s (seq %d-%d): %s",
                n,
                buf.session,
                buf.stream,
                seq0,
                seq0 + n - 1,
                exc,
            )
            buf.laps = laps
            del buf.batches[:take]
            buf.frames -= n
            return True
        if not self.healthy:
            log.info("store writes recovered")
        self.healthy = True
        self._backoff = 0.0
        buf.laps = laps
        del buf.batches[:take]
        buf.frames -= n
        buf.since = time.monotonic()
        buf.cut = len({_lap_of(b) for _, b in buf.batches}) > 1
        self.stored_frames += n
        if self.on_stored is not None:
            self.on_stored(buf.session, buf.stream, seq0 + n - 1)
        return True


def _lap_of(batch: FrameBatch) -> int | None:
    lap = batch.columns.get("lap")
    return int(lap[0]) if lap is not None and batch.n and lap[0] == lap[0] else None
