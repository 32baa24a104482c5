"""The persistence worker: buffers frames per stream and writes chunks to the store, or to the
spool on disk while the store is unavailable.

Isolated from ingest and fan-out: ``enqueue`` only appends to a buffer; ``run`` (a task)
writes chunks of at most ``max_frames`` frames or ``max_age`` seconds of buffering, at
every lap change, and when a stream goes quiet for ``IDLE_S``. It never crashes the server,
never drops what it was given (short of a store refusing frames for good, counted in
``rejected_frames``) and never reorders a stream.

Two modes, with a spool (``pitwire.server.spool``)::

    store ──(a write fails: StoreUnavailable, OSError)──► spooling ──(spool empty)──► store

Chunks hold consecutive seqs only: a chunk ends at a gap in a stream's seqs (an agent dropped
frames past its bound) as at a lap change, so that frames are never stored under other seqs.

- **store**: due chunks go to ``store.write_chunk``; laps are computed as chunks are stored.
- **spooling**: due chunks of every stream are appended to the spool instead, one group and
  one fsync per pass (passes at most every ``SPOOL_INTERVAL``). ``run`` drains the spool
  oldest first into the store (``write_chunk`` is idempotent, so a record stored twice after
  a crash is stored once), computing laps as it goes, and probes a store that failed with
  backoff (up to 5 s; the next record's write is the probe). Once the spool is empty its
  segments are deleted and chunks go to the store again. Spooling is global, not per
  stream: so whatever the spool holds of a stream is the newest of it, and the spool's
  high-water of a stream is its durable high-water, also after a restart. A spool left by an
  earlier run (the server was killed during an outage) is opened by ``open`` and drained the
  same way, once the store is open (``store_open``: a server restarted with frames in its
  spool may start while its store cannot be opened, and spools until it is). Spool records
  declare their session and stream (``Declare``), which are created in the store first if
  missing; frames of a stream never declared (``declare`` not called) and unknown to the
  store are rejected when drained.
- Without a spool (``memory://``, or ``--spool-dir off``) a failed chunk stays in memory
  and is retried with backoff.

Acks (``on_stored``) follow durability: a chunk is acknowledged once it is stored in the
store **or fsynced in the spool**. Acking from the spool lets an agent release what the
server holds safely, so a long outage does not overflow the agent's bounded queue, and a
server SIGKILL loses nothing acknowledged. Acks of a stream only grow: the last seq of each
chunk handed over, in seq order, i.e. the highest seq up to which everything received of the
stream is durable. When the spool is full (``max_bytes``) or the disk fails, chunks stay in
memory unacknowledged (agents keep theirs and re-send after a reconnect) and an error is
logged; spooling resumes once the drain frees space. ``wait_for_room`` lets ingest stop
reading agents while more than ``max_buffered`` frames wait in memory, so that TCP pushes
back on them instead of the server growing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pitwire.analysis.laps import LapTracker, lap_cuts
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import SessionInfo, StreamInfo
from pitwire.server.spool import Declare, Spool, Spooled, SpoolError, SpoolFull
from pitwire.store.base import Store, StoreError, StoreUnavailable, StreamSummary

log = logging.getLogger("pitwire.persist")

T = TypeVar("T")

OnStored = Callable[[str, str, int], None]
"""Called with (session, stream, last seq) once frames up to that seq are durable."""

SPOOL_INTERVAL = 0.05
"""Shortest time between two spool passes (and fsyncs) while spooling [s]."""
DRAIN_RECORDS = 64
"""Spool records stored per turn of the drain (the lock is released between turns)."""
DRAIN_BUDGET = 0.25
"""Longest a ``run`` pass drains before it writes new chunks again [s]."""
BACKOFF_MAX = 5.0
"""Longest wait between two attempts at an unavailable store [s]."""
DEFAULT_MAX_BUFFERED = 1_000_000
"""Frames in memory past which ``wait_for_room`` makes ingest wait [frames]."""

_Unavailable = (StoreUnavailable, OSError)


IDLE_S = 0.2
"""A stream that received nothing for this long has its buffered frames written [s]."""


@dataclass(eq=False, slots=True)
class _Buffer:
    session: str
    stream: str
    laps: LapTracker
    batches: list[tuple[int, FrameBatch]] = field(default_factory=list)
    frames: int = 0
    since: float = 0.0
    last: float = 0.0  # when frames last arrived [monotonic s]
    cut: bool = False  # a lap boundary is buffered: write what precedes it now
    last_lap: float | None = None
    retrying: bool = False  # the store failed on the first chunk: it may hold part of it


async def declare_in_store(
    store: Store, session: SessionInfo, stream: StreamInfo
) -> StreamSummary | None:
    """Create ``session`` in the store unless it exists (else update its track and source
    where given and different), then create or update ``stream`` in it. Returns what the
    store held of the stream before (None for a new stream)."""
    try:
        summary = await store.get_session(SessionId(session.session_id))
    except KeyError:
        await store.put_session(session)
        await store.put_stream(SessionId(session.session_id), stream)
        return None
    existing = summary.info
    track, source = session.track or existing.track, session.source or existing.source
    if (track, source) != (existing.track, existing.source):
        existing.track, existing.source = track, source
        await store.put_session(existing)
    await store.put_stream(SessionId(session.session_id), stream)
    return next((s for s in summary.streams if s.info.stream_id == stream.stream_id), None)


class Persistence:
    """Buffers, chunks and stores frames; see the module docstring for modes and acks.

    max_frames: largest chunk [frames]
    max_age: longest a frame waits in memory before its chunk is written [s]
    spool: where chunks wait while the store is unavailable (None: in memory)
    max_buffered: frames in memory past which ``wait_for_room`` waits [frames]
    """

    def __init__(
        self,
        store: Store,
        *,
        max_frames: int = 1000,
        max_age: float = 1.0,
        on_stored: OnStored | None = None,
        spool: Spool | None = None,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> None:
        self.store = store
        self.max_frames = max_frames
        self.max_age = max_age
        self.on_stored = on_stored
        self.spool = spool
        self.max_buffered = max_buffered
        self._buffers: dict[tuple[str, str], _Buffer] = {}
        self._buffered = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()  # set whenever frames leave memory
        self._pausing = False  # wait_for_room has waited since memory was last below bound
        self._lock = asyncio.Lock()  # one pass (flush, drain turn) at a time
        self._durable: dict[tuple[str, str], int] = {}  # acknowledged high-water per stream
        self._spooling = False
        self._spool_failing = False
        self._retry_at = 0.0
        self._io_thread: ThreadPoolExecutor | None = None
        self._store_open = True
        self.stored_frames = 0
        self.spooled_total = 0
        self.failed_writes = 0
        self.rejected_frames = 0
        self.healthy = True
        self._backoff = 0.0

    # --- figures -------------------------------------------------------------------------

    @property
    def buffered_frames(self) -> int:
        """Frames waiting in memory."""
        return self._buffered

    def buffered_of(self, session: str, stream: str) -> int:
        """Frames of one stream waiting in memory (not yet durable)."""
        buf = self._buffers.get((session, stream))
        return buf.frames if buf is not None else 0

    @property
    def memory_full(self) -> bool:
        """More than ``max_buffered`` frames wait in memory."""
        return self._buffered > self.max_buffered

    async def wait_for_room(self) -> None:
        """Return once at most ``max_buffered`` frames wait in memory (at once if so)."""
        if not self.memory_full:
            return
        if not self._pausing:
            self._pausing = True
            log.warning(
                "%d frames wait in memory (bound %d): ingest pauses until the store or the "
                "spool takes frames",
                self._buffered,
                self.max_buffered,
            )
        while self.memory_full:
            self._room.clear()
            await self._room.wait()

    @property
    def spooled_frames(self) -> int:
        """Frames waiting in the spool."""
        return self.spool.frames if self.spool is not None else 0

    @property
    def spooling(self) -> bool:
        """Chunks go to the spool (the store failed, or the spool is not drained yet)."""
        return self._spooling

    @property
    def store_open(self) -> bool:
        """False while the store could not be opened (the server started during an outage):
        chunks are spooled and nothing is drained until it is set True."""
        return self._store_open

    @store_open.setter
    def store_open(self, value: bool) -> None:
        if not value and self.spool is None:
            raise ValueError("a store that is not open needs a spool to wait in")
        self._store_open = value
        if value:
            self._wake.set()
        else:
            self._spooling = True
            self.healthy = False

    def figures(self) -> dict[str, Any]:
        """Storage figures for the stats and health endpoints."""
        spool = self.spool
        return {
            "healthy": self.healthy,
            "stored_frames": self.stored_frames,
            "buffered_frames": self.buffered_frames,
            "failed_writes": self.failed_writes,
            "rejected_frames": self.rejected_frames,
            "spooling": self._spooling,
            "spooled_frames": self.spooled_frames,
            "spool_bytes": spool.bytes if spool is not None else 0,
            "spool_max_bytes": spool.max_bytes if spool is not None else 0,
            "spool_full": self._spool_failing and spool is not None and spool.full,
            "spool_dir": str(spool.directory) if spool is not None else None,
        }

    # --- life cycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Open the spool, if any, and take over what an earlier run left in it."""
        if self.spool is None:
            return
        await self._io(self.spool.open)
        for key, seq in self.spool.high_waters().items():
            self._durable[key] = max(self._durable.get(key, -1), seq)
        if not self.spool.is_empty():
            self._spooling = True
            log.warning(
                "spool %s holds %d frames not known to be stored; storing them when the "
                "store answers",
                self.spool.directory,
                self.spool.frames,
            )

    async def close(self) -> None:
        """Release the spool (what it holds stays for the next start)."""
        if self.spool is not None:
            await self._io(self.spool.close)
        if self._io_thread is not None:
            self._io_thread.shutdown(wait=True)
            self._io_thread = None

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        """Run spool file I/O on the one spool thread (in call order, off the event loop)."""
        if self._io_thread is None:
            self._io_thread = ThreadPoolExecutor(1, thread_name_prefix="pitwire-spool")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io_thread, functools.partial(fn, *args))

    # --- streams -------------------------------------------------------------------------

    def declare(self, session: SessionInfo, stream: StreamInfo) -> None:
        """The session and stream of frames to come: spooled before them, so that a spool
        can be drained into a store that does not know them (yet)."""
        if self.spool is not None:
            self.spool.declare(session, stream)

    def durable_seq(self, session: str, stream: str) -> int | None:
        """Highest seq of the stream known to be durable (stored or spooled) in this process;
        None when this process knows nothing of the stream."""
        return self._durable.get((session, stream))

    def note_durable(self, session: str, stream: str, seq: int) -> None:
        """The store said frames up to ``seq`` are stored (nothing is acknowledged)."""
        key = (session, stream)
        self._durable[key] = max(self._durable.get(key, -1), seq)

    def _acked(self, session: str, stream: str, seq: int) -> None:
        key = (session, stream)
        if seq > self._durable.get(key, -1):
            self._durable[key] = seq
            if self.on_stored is not None:
                self.on_stored(session, stream, seq)

    def _buffer(self, session: str, stream: str) -> _Buffer:
        buf = self._buffers.get((session, stream))
        if buf is None:
            buf = self._buffers[(session, stream)] = _Buffer(session, stream, LapTracker(stream))
        return buf

    # --- enqueue -------------------------------------------------------------------------

    def enqueue(self, session: str, stream: str, seq: int, batch: FrameBatch) -> None:
        """Hand frames seq .. seq+n-1 over for storage (never blocks, never drops)."""
        buf = self._buffer(session, stream)
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
        buf.last = time.monotonic()
        if not buf.batches:
            buf.since = buf.last
        # Split here so that no chunk exceeds max_frames, whatever size the batch came in.
        step = max(1, self.max_frames)
        for start in range(0, batch.n, step):
            piece = batch if batch.n <= step else batch.slice(start, start + step)
            buf.batches.append((seq + start, piece))
        buf.frames += batch.n
        self._buffered += batch.n

    # --- the worker ----------------------------------------------------------------------

    async def run(self) -> None:
        """Write due chunks, and drain the spool, until cancelled."""
        tick = min(0.1, self.max_age / 4)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=tick)
            self._wake.clear()
            started = time.monotonic()
            await self.flush(force=False)
            if self._spooling:
                if self._store_open and time.monotonic() >= self._retry_at:
                    await self.drain(budget=DRAIN_BUDGET)
                    if self._spooling and time.monotonic() >= self._retry_at:
                        self._wake.set()  # more to drain, and the store answers: go on
                # One spool group (and fsync) per SPOOL_INTERVAL at most.
                await asyncio.sleep(max(0.0, SPOOL_INTERVAL - (time.monotonic() - started)))
            elif self._backoff:
                await asyncio.sleep(self._backoff)

    async def flush(self, *, force: bool = True) -> None:
        """Write every buffer that is due (all of them when ``force``) to the store, or to
        the spool while spooling. Does not drain the spool (``drain`` does)."""
        async with self._lock:
            await self._flush(list(self._buffers.values()), force=force)

    async def flush_stream(self, session: str, stream: str) -> None:
        """Make everything buffered for one stream durable now (stored or spooled); raise
        StoreError if neither the store nor the spool takes it."""
        buf = self._buffers.get((session, stream))
        if buf is None or not buf.batches:
            return
        last = buf.batches[-1][0] + buf.batches[-1][1].n - 1  # frames enqueued meanwhile may wait
        async with self._lock:
            await self._flush([buf], force=True)
        if buf.batches and buf.batches[0][0] <= last:
            raise StoreError(f"could not store buffered frames of {session}/{stream}")

    async def _flush(self, bufs: list[_Buffer], *, force: bool) -> None:
        if self._spooling and self.spool is not None and self.spool.full and not force:
            return  # nowhere to put them until the drain frees space: spare the CPU
        now = time.monotonic()
        if not self._spooling:
            await self._store_together(bufs, now, force=force)
        to_spool: list[tuple[_Buffer, list[tuple[int, int]]]] = []
        for buf in bufs:
            chunks = self._due(buf, now, force=force)
            if not chunks:
                continue
            if not self._spooling:
                while chunks and await self._store_chunk(buf, *chunks[0]):
                    chunks.pop(0)
                if not chunks:
                    continue
                if self.spool is None or self.spool.full:
                    return  # the store failed: keep the rest in memory, retry after backoff
                log.warning(
                    "store unavailable: spooling frames to %s until it answers",
                    self.spool.directory,
                )
                self._spooling = True
            to_spool.append((buf, chunks))
        if to_spool:
            await self._spool(to_spool)

    def _due(self, buf: _Buffer, now: float, *, force: bool) -> list[tuple[int, int]]:
        """The chunks to write now from the front of ``buf``: (batches, frames) each, at most
        max_frames frames of consecutive seqs, never across a lap change."""
        batches = buf.batches
        ends = _chunk_ends(batches)
        last_end = max((j for j, end in enumerate(ends) if end), default=0)
        # Due by age: buffered max_age, or the stream went quiet (an agent stopped, an import
        # ended): its last frames need not wait out max_age to be stored and acknowledged.
        aged = now - buf.since >= self.max_age or now - buf.last >= IDLE_S
        out: list[tuple[int, int]] = []
        i, left = 0, buf.frames
        while i < len(batches):
            if not (force or last_end > i or left >= self.max_frames or (aged and i == 0)):
                break
            take, n = 0, 0
            for j in range(i, len(batches)):
                b = batches[j][1]
                if take and (n + b.n > self.max_frames or ends[j]):
                    break
                take += 1
                n += b.n
            out.append((take, n))
            i += take
            left -= n
        return out

    def _taken(self, buf: _Buffer, take: int, n: int) -> None:
        del buf.batches[:take]
        buf.frames -= n
        self._buffered -= n
        self._room.set()
        if self._pausing and not self.memory_full:
            self._pausing = False
            log.info("%d frames wait in memory: ingest goes on", self._buffered)
        buf.since = time.monotonic()
        buf.retrying = False
        buf.cut = len({_lap_of(b) for _, b in buf.batches}) > 1

    async def _store_together(self, bufs: list[_Buffer], now: float, *, force: bool) -> None:
        """With a store that writes several streams' chunks in one transaction
        (``write_chunks``: one commit, so one WAL flush, for them all), write the first due
        chunk of every stream of a session together, round after round. What this cannot
        store (the store fails or refuses) is left for the one-chunk-at-a-time path, which
        retries, isolates a refused chunk or spools."""
        write_chunks = getattr(self.store, "write_chunks", None)
        if write_chunks is None:
            return
        while True:
            rounds: dict[str, list[tuple[_Buffer, int, int]]] = {}
            for buf in bufs:
                due = self._due(buf, now, force=force)
                if due and not buf.retrying:
                    rounds.setdefault(buf.session, []).append((buf, *due[0]))
            wrote = False
            for session, items in rounds.items():
                if len(items) < 2:
                    continue
                batches = [
                    FrameBatch.concat([b for _, b in buf.batches[:take]]) for buf, take, _ in items
                ]
                try:
                    new = await write_chunks(
                        SessionId(session),
                        [
                            (StreamId(buf.stream), buf.batches[0][0], batch)
                            for (buf, _, _), batch in zip(items, batches, strict=True)
                        ],
                    )
                except (*_Unavailable, StoreError):
                    return  # the one-chunk path retries them, one by one
                wrote = True
                for (buf, take, n), batch, fresh in zip(items, batches, new, strict=True):
                    seq0 = buf.batches[0][0]
                    if fresh < batch.n:  # the same tripwire as _store_batch's
                        log.warning(
                            "store already held %d of %d frames of %s/%s (seq %d-%d) written live",
                            batch.n - fresh,
                            batch.n,
                            buf.session,
                            buf.stream,
                            seq0,
                            seq0 + batch.n - 1,
                        )
                    laps = copy.copy(buf.laps)
                    try:
                        for lap_info in laps.feed(batch):
                            await self.store.put_lap(SessionId(buf.session), lap_info)
                    except (*_Unavailable, StoreError):
                        return  # stored but not taken: written again (idempotent), laps too
                    buf.laps = laps
                    self.stored_frames += batch.n
                    self._taken(buf, take, n)
                    self._acked(buf.session, buf.stream, seq0 + n - 1)
                if not self.healthy:
                    log.info("store writes recovered")
                self.healthy = True
                self._backoff = 0.0
            if not wrote:
                return

    async def _store_chunk(self, buf: _Buffer, take: int, n: int) -> bool:
        """Store the first ``take`` batches of ``buf``; False when the store is unavailable."""
        chunk = buf.batches[:take]
        seq0 = chunk[0][0]
        batch = FrameBatch.concat([b for _, b in chunk])
        try:
            stored = await self._store_batch(buf, seq0, batch, live=not buf.retrying)
        except _Unavailable as exc:
            buf.retrying = True
            self._failed(exc, f"keeping {buf.frames} frames of {buf.session}/{buf.stream}")
            return False
        self._taken(buf, take, n)
        if stored:
            self._acked(buf.session, buf.stream, seq0 + n - 1)
        return True

    async def _store_batch(
        self, buf: _Buffer, seq0: int, batch: FrameBatch, *, live: bool = False
    ) -> bool:
        """Write a chunk and the laps it completes; False when the store refused it for good
        (logged and counted). Raises StoreUnavailable / OSError.

        live: the chunk was never written before (not a retry, not from the spool), so the
        store should not hold any of it: warn if it does."""
        # Feed a copy of the lap tracker: a retried chunk must not be counted twice.
        laps = copy.copy(buf.laps)
        try:
            new = await self.store.write_chunk(
                session_id=SessionId(buf.session),
                stream_id=StreamId(buf.stream),
                first_seq=seq0,
                batch=batch,
            )
            if live and new < batch.n:
                # A tripwire: ingest drops what the store holds, so this means frames reached
                # the store twice under one seq (or from elsewhere). Acked as before.
                log.warning(
                    "store already held %d of %d frames of %s/%s (seq %d-%d) written live",
                    batch.n - new,
                    batch.n,
                    buf.session,
                    buf.stream,
                    seq0,
                    seq0 + batch.n - 1,
                )
            for lap_info in laps.feed(batch):
                await self.store.put_lap(SessionId(buf.session), lap_info)
        except _Unavailable:
            raise
        except StoreError as exc:
            # The store refuses these frames for good (e.g. they do not match the stream's
            # schema): retrying cannot help, and holding them would stall the stream.
            self.rejected_frames += batch.n
            log.error(
                "store rejected %d frames of %s/%s (seq %d-%d): %s",
                batch.n,
                buf.session,
                buf.stream,
                seq0,
                seq0 + batch.n - 1,
                exc,
            )
            buf.laps = laps
            return False
        if not self.healthy:
            log.info("store writes recovered")
        self.healthy = True
        self._backoff = 0.0
        buf.laps = laps
        self.stored_frames += batch.n
        return True

    def _failed(self, exc: BaseException, keeping: str) -> None:
        self.failed_writes += 1
        self.healthy = False
        self._backoff = min(BACKOFF_MAX, max(0.2, self._backoff * 2))
        self._retry_at = time.monotonic() + self._backoff
        log.warning(
            "store write failed (%s); %s and retrying in %.1f s", exc, keeping, self._backoff
        )

    async def _spool(self, to_spool: list[tuple[_Buffer, list[tuple[int, int]]]]) -> None:
        """Append the given chunks to the spool as one group; on success take them out of
        memory and acknowledge them, else leave them in memory."""
        spool = self.spool
        if spool is None:
            return
        items: list[tuple[str, str, int, FrameBatch]] = []
        for buf, chunks in to_spool:
            i = 0
            for take, _n in chunks:
                piece = buf.batches[i : i + take]
                items.append(
                    (buf.session, buf.stream, piece[0][0], FrameBatch.concat([b for _, b in piece]))
                )
                i += take
        try:
            if spool.full:  # checked here too, so that a full spool costs no encoding
                raise SpoolFull(
                    f"spool {spool.directory} holds {spool.bytes} bytes (limit {spool.max_bytes})"
                )
            await self._io(spool.append, items)
        except (SpoolError, OSError) as exc:
            if not self._spool_failing:
                log.error(
                    "cannot spool frames (%s): %d frames wait in memory, unacknowledged "
                    "(agents keep theirs); retrying",
                    exc,
                    self.buffered_frames,
                )
            self._spool_failing = True
            if spool.is_empty():
                self._spooling = False  # nothing spooled to keep order with: try the store
            return
        if self._spool_failing:
            log.info("spooling frames again")
            self._spool_failing = False
        k = 0
        for buf, chunks in to_spool:
            k += len(chunks)
            _session, _stream, seq0, batch = items[k - 1]
            take, n = map(sum, zip(*chunks, strict=True))
            self._taken(buf, take, n)
            self.spooled_total += n
            self._acked(buf.session, buf.stream, seq0 + batch.n - 1)

    # --- draining ------------------------------------------------------------------------

    async def drain(self, *, budget: float | None = None) -> bool:
        """Store what the spool holds, oldest first, for up to ``budget`` seconds (None: until
        it is empty or the store fails). True when the spool is empty (store mode again)."""
        if self.spool is None or not self._spooling:
            return True
        if not self._store_open:
            return False
        deadline = None if budget is None else time.monotonic() + budget
        while True:
            async with self._lock:
                done = await self._drain_turn()
            if done is not None:
                return done
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0)  # let flush passes and registers in

    async def _drain_turn(self) -> bool | None:
        """Store up to DRAIN_RECORDS records: True when the spool is now empty, False when
        the store failed, None when more remain."""
        spool = self.spool
        if spool is None or not self._spooling:
            return True
        if not self._store_open:
            return False
        entries = await self._io(spool.read, DRAIN_RECORDS)
        if not entries:
            await self._io(spool.reset)
            self._spooling = self._spool_failing = False
            log.info("spool drained: writing to the store again")
            return True
        done_at, frames, result = None, 0, None
        try:
            for position, entry in entries:
                await self._drain_one(entry)
                done_at = position
                frames += entry.batch.n if isinstance(entry, Spooled) else 0
        except _Unavailable as exc:
            self._failed(exc, f"{spool.frames} frames wait in the spool")
            result = False
        if done_at is not None:
            await self._io(spool.consume, done_at, frames)
        return result

    async def _drain_one(self, entry: Declare | Spooled) -> None:
        match entry:
            case Declare(session=session, stream=stream):
                try:
                    await declare_in_store(self.store, session, stream)
                except _Unavailable:
                    raise
                except (StoreError, ValueError) as exc:
                    log.error(
                        "spool: cannot create %s/%s in the store: %s",
                        session.session_id,
                        stream.stream_id,
                        exc,
                    )
            case Spooled(session=session_id, stream=stream_id, first_seq=seq0, batch=batch):
                buf = self._buffer(session_id, stream_id)
                if await self._store_batch(buf, seq0, batch):
                    self._acked(session_id, stream_id, seq0 + batch.n - 1)


def _chunk_ends(batches: list[tuple[int, FrameBatch]]) -> list[bool]:
    """Per buffered batch, whether a chunk must end before it: its lap differs from the
    previous batch's, or its seq does not follow on (a gap, or an overlap, in the seqs)."""
    ends = [False] * len(batches)
    for j in range(1, len(batches)):
        (seq, b), (prev_seq, prev) = batches[j], batches[j - 1]
        ends[j] = seq != prev_seq + prev.n or _lap_of(b) != _lap_of(prev)
    return ends


def _lap_of(batch: FrameBatch) -> int | None:
    lap = batch.columns.get("lap")
    return int(lap[0]) if lap is not None and batch.n and lap[0] == lap[0] else None
