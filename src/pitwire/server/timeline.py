"""Where replays read frames from: a stored session in time blocks, or a live session's tail.

Both answer ``row(stream, names, t)``: the values of ``names`` in the stream's last frame at
or before ``t`` (its state at that instant), from memory. ``ready``/``load``/``prefetch``
bring the needed data into memory first.

``StoredTimeline`` reads a stored session in blocks of a few seconds of every stream (one
``read_window`` each, decoded in the store's reader thread) and keeps them in the
server-wide ``BlockCache``, bounded in bytes and shared by every viewer of the session. Each
block also holds ``lookback`` before its start, so a stream's state at a block's first instant
is known. A session small enough for a quarter of the cache is read whole in the background
once its first viewer has its first frame, so seeks are then served from memory.

``LiveTail`` keeps the last minutes of a live session, fed by the hub as frames arrive and
started from the store and the hub's recent frames: what delayed-live viewers play from.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pitwire.analysis.completeness import ChunkSpan
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.store.base import SessionSummary, Store, StoreError

log = logging.getLogger("pitwire.replay")

Block = dict[str, FrameBatch]
SECOND = 1_000_000_000
BLOCK_FRAMES = 20_000  # frames of every stream together per block
MIN_BLOCK_NS, MAX_BLOCK_NS = 2 * SECOND, 600 * SECOND
LOOKBACK_NS = SECOND
MAX_AHEAD = 4  # blocks a player reads ahead of its clock


class Timeline(Protocol):
    start_ns: int

    def end_ns(self) -> int:
        """The latest instant with data [ns since epoch]."""

    def ready(self, t_ns: int) -> bool:
        """``row`` can answer for ``t_ns`` from memory."""

    async def load(self, t_ns: int) -> None:
        """Bring what ``row`` needs for ``t_ns`` into memory."""

    def prefetch(self, t_ns: int, ahead_ns: int) -> None:
        """Start reading what [t_ns, t_ns + ahead_ns] will need (returns at once)."""

    def batch_at(self, stream: str, t_ns: int) -> FrameBatch | None:
        """Frames in memory holding the stream's state at ``t_ns`` (its last frame at or
        before it is in there, if it has one); None when there are none."""

    def row(self, stream: str, names: Sequence[str], t_ns: int) -> npt.NDArray[np.float64] | None:
        """The stream's state at ``t_ns``; None when it has no frame at or before it."""


def _row(batch: FrameBatch, names: Sequence[str], t_ns: int) -> npt.NDArray[np.float64] | None:
    i = int(np.searchsorted(batch.t_ns, t_ns, "right")) - 1
    if i < 0:
        return None
    cols = batch.columns
    return np.array([cols[n][i] if n in cols else np.nan for n in names], np.float64)


def _nbytes(block: Block) -> int:
    return sum(b.t_ns.nbytes + sum(c.nbytes for c in b.columns.values()) for b in block.values())


class BlockCache:
    """Decoded blocks of stored sessions, least recently used first out, at most
    ``budget`` bytes; concurrent loads of one block share one read."""

    def __init__(self, budget: int = 256 << 20) -> None:
        self.budget = budget
        self.bytes = 0
        self._blocks: OrderedDict[tuple[str, int], tuple[Block, int]] = OrderedDict()
        self._loading: dict[tuple[str, int], asyncio.Task[Block]] = {}
        self.hits = self.misses = self.evictions = 0

    def get(self, key: tuple[str, int]) -> Block | None:
        entry = self._blocks.get(key)
        if entry is None:
            return None
        self._blocks.move_to_end(key)
        return entry[0]

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._blocks

    def loading(self, key: tuple[str, int]) -> bool:
        return key in self._loading

    async def load(self, key: tuple[str, int], read: Callable[[], Awaitable[Block]]) -> Block:
        block = self.get(key)
        if block is not None:
            self.hits += 1
            return block
        task = self._loading.get(key)
        if task is None:
            self.misses += 1
            task = self._loading[key] = asyncio.get_running_loop().create_task(
                self._fill(key, read)
            )
        return await asyncio.shield(task)

    async def _fill(self, key: tuple[str, int], read: Callable[[], Awaitable[Block]]) -> Block:
        try:
            block = await read()
        finally:
            del self._loading[key]
        size = _nbytes(block)
        self._blocks[key] = (block, size)
        self.bytes += size
        while self.bytes > self.budget and len(self._blocks) > 1:
            _, (_, freed) = self._blocks.popitem(last=False)
            self.bytes -= freed
            self.evictions += 1
        return block


class StoredTimeline:
    def __init__(
        self,
        store: Store,
        summary: SessionSummary,
        cache: BlockCache,
        *,
        block_frames: int = BLOCK_FRAMES,
        block_ns: int | None = None,
    ) -> None:
        """block_ns: the block length of an earlier timeline of the session (one that has
        grown since), so that its whole blocks are shared; None: from ``block_frames``."""
        stored = [s for s in summary.streams if s.frames]
        if not stored:
            raise ValueError(f"session {summary.info.session_id!r} has no stored frames")
        self.session_id = summary.info.session_id
        self.store = store
        self.cache = cache
        self.start_ns = min(s.t0_ns for s in stored)
        self._end_ns = max(s.t1_ns for s in stored)
        frames = sum(s.frames for s in stored)
        span = max(self._end_ns - self.start_ns, 1)
        rate = frames / (span / SECOND)  # frames a second, every stream together
        block_s = block_frames / max(rate, 1e-9)
        self.block_ns = block_ns or int(min(max(block_s * SECOND, MIN_BLOCK_NS), MAX_BLOCK_NS))
        # A stream's state at a block's first instant is its last frame before it: blocks
        # read LOOKBACK_NS further back, and the chunk index finds it for a stream silent
        # for longer (a car in the garage, flags that change twice an hour).
        self.lookback_ns = LOOKBACK_NS
        self._index: dict[str, list[ChunkSpan]] | None = None
        self.decoded_estimate = frames * (8 + 4 * max(len(s.info.channels) for s in stored))
        self._block_bytes = self.decoded_estimate * self.block_ns // span
        self._warming: asyncio.Task[None] | None = None
        # A block wholly before the end is what any later timeline of the session would read
        # too, so it is keyed to be shared; the last, partial one by the end it was read to.
        self._cache_id = f"{self.session_id}/{self.start_ns}/{self.block_ns}"

    def end_ns(self) -> int:
        return self._end_ns

    def _block(self, t_ns: int) -> int:
        return max(0, (t_ns - self.start_ns) // self.block_ns)

    def _key(self, k: int) -> tuple[str, int]:
        whole = self.start_ns + (k + 1) * self.block_ns <= self._end_ns
        return (self._cache_id if whole else f"{self._cache_id}@{self._end_ns}", k)

    def ready(self, t_ns: int) -> bool:
        return self._key(self._block(t_ns)) in self.cache

    async def load(self, t_ns: int) -> None:
        await self._load(self._block(t_ns))

    def _load(self, k: int) -> Awaitable[Block]:
        t0 = self.start_ns + k * self.block_ns

        async def read() -> Block:
            found = await self.store.read_window(
                session_id=SessionId(self.session_id),
                t0_ns=t0 - self.lookback_ns,
                t1_ns=t0 + self.block_ns - 1,
            )
            block: Block = {str(stream): batch for stream, batch in found.items()}
            await self._carry_in(block, t0, t0 - self.lookback_ns)
            return block

        return self.cache.load(self._key(k), read)

    async def _carry_in(self, block: Block, first: int, start: int) -> None:
        """A stream without a frame in ``block`` at or before its ``first`` instant gets its
        last frame before ``start`` (where the block's frames begin) put in front."""
        if self._index is None:
            self._index = await self.store.chunk_index(SessionId(self.session_id))
        for stream, spans in self._index.items():
            batch = block.get(stream)
            if batch is not None and batch.n and batch.t_ns[0] <= first:
                continue
            before = [sp for sp in spans if sp.t0_ns < start]
            if not before:
                continue
            last = max(before, key=lambda sp: min(sp.t1_ns, start - 1))
            found = await self.store.read_window(
                session_id=SessionId(self.session_id),
                t0_ns=last.t1_ns if last.t1_ns < start else last.t0_ns,
                t1_ns=start - 1,
                streams=[StreamId(stream)],
            )
            prior = found.get(StreamId(stream))
            if prior is None or not prior.n:
                continue
            prior = prior.slice(prior.n - 1, prior.n)
            block[stream] = (
                prior if batch is None or not batch.n else FrameBatch.concat([prior, batch])
            )

    def prefetch(self, t_ns: int, ahead_ns: int) -> None:
        # Never more ahead than a quarter of the cache holds (or the blocks read ahead
        # would push out each other before they are played), and at most MAX_AHEAD blocks.
        first = self._block(t_ns)
        room = max(1, self.cache.budget // 4 // max(self._block_bytes, 1))
        last = min(self._block(min(t_ns + ahead_ns, self._end_ns)), first + min(room, MAX_AHEAD))
        for k in range(first, last + 1):
            key = self._key(k)
            if key not in self.cache and not self.cache.loading(key):
                task = asyncio.ensure_future(self._load(k))
                task.add_done_callback(_log_failure)

    def warm(self) -> None:
        """Read the whole session into the cache in the background, if it fits easily."""
        if self._warming is None and self.decoded_estimate <= self.cache.budget // 4:
            self._warming = asyncio.get_running_loop().create_task(self._warm())

    async def _warm(self) -> None:
        for k in range(self._block(self._end_ns) + 1):
            try:
                await self._load(k)
            except Exception as exc:  # reading ahead is an optimisation: never fatal
                log.warning("replay of %s: reading ahead failed: %s", self.session_id, exc)
                return

    def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()

    def batch_at(self, stream: str, t_ns: int) -> FrameBatch | None:
        block = self.cache.get(self._key(self._block(t_ns)))
        batch = None if block is None else block.get(stream)
        return batch if batch is not None and batch.n else None

    def row(self, stream: str, names: Sequence[str], t_ns: int) -> npt.NDArray[np.float64] | None:
        batch = self.batch_at(stream, t_ns)
        return None if batch is None else _row(batch, names, t_ns)


def _log_failure(task: asyncio.Future[Block]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("replay read-ahead failed: %s", task.exception())


class LiveTail:
    """The frames of a live session from ``keep_ns`` ago to now, per stream, in memory."""

    def __init__(self, session_id: str, *, keep_ns: int) -> None:
        self.session_id = session_id
        self.keep_ns = keep_ns
        self._batches: dict[str, list[FrameBatch]] = {}
        self._starts: dict[str, list[int]] = {}
        self.start_ns = 0
        self._end_ns = 0
        self.users = 0
        self.primed = asyncio.Event()  # set once prime_from has run (or failed)

    def end_ns(self) -> int:
        return self._end_ns

    def feed(self, stream: str, batch: FrameBatch) -> None:
        """Frames as they arrive (the hub's tap); older than ``keep_ns`` are let go."""
        if not batch.n:
            return
        batches = self._batches.setdefault(stream, [])
        starts = self._starts.setdefault(stream, [])
        if batches and batch.t_ns[0] <= batches[-1].t_ns[-1]:
            # already have the first of them
            batch = batch.slice(
                int(np.searchsorted(batch.t_ns, batches[-1].t_ns[-1], "right")), batch.n
            )
            if not batch.n:
                return
        batches.append(batch)
        starts.append(int(batch.t_ns[0]))
        self._end_ns = max(self._end_ns, int(batch.t_ns[-1]))
        horizon = self._end_ns - self.keep_ns
        drop = 0
        while drop < len(batches) - 1 and batches[drop + 1].t_ns[0] <= horizon:
            drop += 1
        if drop:
            del batches[:drop], starts[:drop]
        self.start_ns = min(s[0] for s in self._starts.values() if s)

    def prime(self, stream: str, older: FrameBatch) -> None:
        """Frames from before the tail started (the store's, the hub's recent ones)."""
        batches = self._batches.setdefault(stream, [])
        starts = self._starts.setdefault(stream, [])
        if batches:
            older = older.slice(0, int(np.searchsorted(older.t_ns, batches[0].t_ns[0], "left")))
        if not older.n:
            return
        batches.insert(0, older)
        starts.insert(0, int(older.t_ns[0]))
        self._end_ns = max(self._end_ns, int(older.t_ns[-1]))
        self.start_ns = min(s[0] for s in self._starts.values() if s)

    def first_ns(self, stream: str) -> int | None:
        """When the stream's first kept frame is; None when none is kept."""
        starts = self._starts.get(stream)
        return starts[0] if starts else None

    def ready(self, t_ns: int) -> bool:
        return True

    async def load(self, t_ns: int) -> None:
        return None

    def prefetch(self, t_ns: int, ahead_ns: int) -> None:
        return None

    def batch_at(self, stream: str, t_ns: int) -> FrameBatch | None:
        starts = self._starts.get(stream)
        if not starts:
            return None
        i = bisect.bisect_right(starts, t_ns) - 1
        return self._batches[stream][i] if i >= 0 else None

    def row(self, stream: str, names: Sequence[str], t_ns: int) -> npt.NDArray[np.float64] | None:
        batch = self.batch_at(stream, t_ns)
        return None if batch is None else _row(batch, names, t_ns)

    async def prime_from(
        self, store: Store, recent: Mapping[str, Sequence[FrameBatch]], now_ns: int
    ) -> None:
        """Start the tail with what the store already holds of the last ``keep_ns`` and the
        hub's recent frames (which the store may not have yet)."""
        for stream, batches in list(recent.items()):
            for batch in reversed(list(batches)):  # newest first: each goes in front
                self.prime(stream, batch)
        with contextlib.suppress(StoreError):  # nothing stored yet: the recent frames do
            stored = await store.read_window(
                session_id=SessionId(self.session_id), t0_ns=now_ns - self.keep_ns, t1_ns=now_ns
            )
            for stream, batch in stored.items():
                self.prime(StreamId(stream), batch)
