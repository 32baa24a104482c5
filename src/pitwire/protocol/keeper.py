"""Where the agent keeps data frames until the server acknowledges them (sans-I/O).

``FrameKeeper`` is what ``pitwire.protocol.peer.AgentPeer`` needs of a keeper;
``MemoryKeeper`` keeps frames in memory (the default), ``pitwire.agent.spool.Spool`` on disk.
A keeper may drop frames past its bound and says so (``Dropped``); one reopened after a
restart knows its streams (``KeptStream``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pitwire.protocol import frames
from pitwire.protocol.messages import ChannelDesc


@dataclass(frozen=True, slots=True)
class KeptStream:
    """A stream a keeper already holds (a spool reopened after a restart): how it was
    advertised and where its numbering stands.

    id: its advertised stream id (the group of its kept frames)
    channels: its channels with their ids in the channel table (as in its kept frames)
    next_seq: the seq its next frame gets
    synced: whether ``next_seq`` follows the server's numbering (the stream's first ack was
        received); if not, its frames are still numbered provisionally
    acked: the highest seq the server acknowledged as stored (-1: none)
    """

    stream: str
    id: int
    channels: list[ChannelDesc]
    driver: str = ""
    car: str = ""
    next_seq: int = 0
    synced: bool = False
    acked: int = -1


@dataclass(frozen=True, slots=True)
class Dropped:
    """Frames a keeper dropped unacked: ``n`` frames of ``stream`` with seqs within
    first..last (the keeper's numbering when dropped), and why."""

    stream: str
    first: int
    last: int
    n: int
    reason: str


class FrameKeeper(Protocol):
    """Where an ``AgentPeer`` keeps its encoded data frames until the server acks them.

    ``MemoryKeeper`` (the default) holds them in memory; ``pitwire.agent.spool.Spool`` on
    disk, so they survive a restart of the agent. Seqs are the peer's: provisional until the
    stream's ``rebase``, the server's after it. A keeper bounds what it holds by dropping the
    oldest frames, counting them in ``dropped`` and listing them in ``drops()``.
    """

    @property
    def frames(self) -> int:
        """Frames kept and not yet acked."""
        ...

    @property
    def dropped(self) -> int:
        """Frames dropped unacked because of the keeper's bound."""
        ...

    def drops(self) -> list[Dropped]:
        """The frames dropped since the last call, oldest first (each also in ``dropped``)."""
        ...

    def restored(self) -> Sequence[KeptStream]:
        """Streams already held when the peer starts (a reopened spool); none in memory."""
        ...

    def note_session(self, *, session: str, track: str, source: str, started_ns: int) -> None:
        """What the peer advertises of its session (kept to re-advertise after a restart)."""
        ...

    def note_stream(
        self, stream: str, *, id: int, channels: list[ChannelDesc], driver: str, car: str
    ) -> None:
        """A stream the peer advertises, or its new driver/car."""
        ...

    def keep(self, stream: str, last_seq: int, data: bytes, n: int) -> None:
        """Keep ``data``, an encoded frame of ``n`` frames of ``stream`` ending at ``last_seq``."""
        ...

    def rebase(self, stream: str, shift: int) -> None:
        """The stream's first ack: its kept (provisional) seqs move up by ``shift`` and follow
        the server's numbering from now on."""
        ...

    def move(self, stream: str, lo: int, shift: int) -> None:
        """The server holds other frames under the seqs from ``lo`` on (an earlier run's
        that the keeper lost): the kept frames whose last seq is ``lo`` or more (never sent)
        move up by ``shift``, and so does the numbering. The peer then releases every seq
        below the moved frames."""
        ...

    def release(self, stream: str, upto: int) -> None:
        """The server stores every frame of ``stream`` up to seq ``upto``: forget them."""
        ...

    def pending(self, after: Mapping[str, int]) -> Iterable[tuple[str, int, bytes]]:
        """(stream, last seq, encoded frame) of each kept frame of the streams in ``after``
        (all rebased) whose last seq is above ``after[stream]`` and not acked, oldest first
        per stream, with their seqs in the server's numbering. May be read lazily."""
        ...


_GONE = (-1, b"", 0)


class _Kept:
    """One stream's kept frames, oldest first: (last seq, encoded frame, frame count) in
    ``items[head:]``. ``base`` counts the items removed from the front before ``items[0]``,
    so a reader's position (``base`` + index) survives the oldest ones going."""

    __slots__ = ("base", "head", "items")

    def __init__(self) -> None:
        self.items: list[tuple[int, bytes, int]] = []
        self.head = 0
        self.base = 0

    def __len__(self) -> int:
        return len(self.items) - self.head

    def oldest_last(self) -> int:
        """The last seq of the oldest item."""
        return self.items[self.head][0]

    def popleft(self) -> int:
        """Forget the oldest item (its frame is no longer referenced); its frame count."""
        n = self.items[self.head][2]
        self.items[self.head] = _GONE
        self.head += 1
        if self.head >= 1024 and self.head * 2 >= len(self.items):
            del self.items[: self.head]
            self.base += self.head
            self.head = 0
        return n

    def shift(self, shift: int, *, lo: int | None = None) -> None:
        """Items (those whose last seq is ``lo`` or more) move up by ``shift``."""
        for i in range(self.head, len(self.items)):
            last, data, n = self.items[i]
            if lo is None or last >= lo:
                self.items[i] = (last + shift, renumber(data, shift), n)


class MemoryKeeper:
    """Keeps unacked frames in memory, at most ``max_frames`` of them: past it the oldest
    batch of the stream holding the most batches is dropped (one batch per stream is always
    kept)."""

    def __init__(self, max_frames: int = 2_000_000) -> None:
        self.max_frames = max_frames
        self.frames = 0
        self.dropped = 0
        self._kept: dict[str, _Kept] = {}
        self._drops: list[Dropped] = []

    def drops(self) -> list[Dropped]:
        out, self._drops = self._drops, []
        return out

    def restored(self) -> Sequence[KeptStream]:
        return ()

    def note_session(self, *, session: str, track: str, source: str, started_ns: int) -> None:
        pass

    def note_stream(
        self, stream: str, *, id: int, channels: list[ChannelDesc], driver: str, car: str
    ) -> None:
        pass

    def keep(self, stream: str, last_seq: int, data: bytes, n: int) -> None:
        kept = self._kept.get(stream)
        if kept is None:
            kept = self._kept[stream] = _Kept()
        kept.items.append((last_seq, data, n))
        self.frames += n
        while self.frames > self.max_frames:
            name, fullest = max(self._kept.items(), key=lambda item: len(item[1]))
            if len(fullest) <= 1:
                break
            last = fullest.oldest_last()
            dropped = fullest.popleft()
            self.frames -= dropped
            self.dropped += dropped
            reason = f"queue full ({self.max_frames} frames kept in memory)"
            self._drops.append(Dropped(name, last - dropped + 1, last, dropped, reason))

    def rebase(self, stream: str, shift: int) -> None:
        kept = self._kept.get(stream)
        if kept is not None and shift:
            kept.shift(shift)

    def move(self, stream: str, lo: int, shift: int) -> None:
        kept = self._kept.get(stream)
        if kept is not None:
            kept.shift(shift, lo=lo)

    def release(self, stream: str, upto: int) -> None:
        kept = self._kept.get(stream)
        while kept and kept.oldest_last() <= upto:
            self.frames -= kept.popleft()

    def pending(self, after: Mapping[str, int]) -> Iterator[tuple[str, int, bytes]]:
        """Read lazily: frames kept while reading are included, frames dropped or released
        meanwhile are skipped (and not held on to)."""
        for stream, floor in after.items():
            kept = self._kept.get(stream)
            if kept is None:
                continue
            pos = kept.base + bisect_right(kept.items, floor, lo=kept.head, key=_last_seq)
            while True:
                i = max(pos - kept.base, kept.head)
                if i >= len(kept.items):
                    break
                last, data, _ = kept.items[i]
                pos = kept.base + i + 1
                if last > floor:
                    yield stream, last, data


def _last_seq(item: tuple[int, bytes, int]) -> int:
    return item[0]


def renumber(data: bytes, shift: int) -> bytes:
    """``data`` (an encoded data frame) with its seq moved up by ``shift``."""
    if not shift:
        return data
    patched = bytearray(data)
    seq = frames.SEQ_FIELD.unpack_from(data, 8)[0]
    frames.SEQ_FIELD.pack_into(patched, 8, seq + shift)
    return bytes(patched)
