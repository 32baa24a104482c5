"""Raw captures: what a source received, byte for byte, with receive times.

``pitwire agent --record-raw FILE`` keeps every datagram (or shared-memory snapshot piece)
before it is decoded, so a later parser can re-read the session: ``--replay-raw FILE`` drives
the same decode path from the file.

File layout (little-endian)::

    magic    8 bytes   b"PWRAW\\x00\\x01\\n"   (format version 1 in byte 6)
    meta_len u32
    meta     JSON      {"source": "f1", "created_ns": ..., "pitwire": "0.1.0"}
    records  repeated  recv_ns i64 | tag_len u16 | data_len u32 | tag (UTF-8) | data

Records are appended and flushed at least every ``flush_s`` (0.1 s by default), so a crash
loses at most that. A truncated last record (the capturing process died mid-write) ends
reading with a warning; it is never an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pitwire import __version__
from pitwire.sources.base import Received, SourceError

log = logging.getLogger("pitwire.sources")

MAGIC = b"PWRAW\x00\x01\n"
_RECORD = struct.Struct("<qHI")
_META_LEN = struct.Struct("<I")


class CaptureError(SourceError):
    """A file is not a pitwire raw capture (or is of a newer version)."""


class RawWriter:
    """Appends received bytes to a capture file at ``path`` (created or truncated)."""

    def __init__(self, path: str | os.PathLike[str], *, source: str, flush_s: float = 0.1):
        self.path = Path(path)
        self.flush_s = flush_s
        self.records = 0
        try:
            self._file: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise SourceError(f"cannot write the raw capture {self.path}: {exc}") from None
        meta = json.dumps(
            {"source": source, "created_ns": time.time_ns(), "pitwire": __version__}
        ).encode()
        self._file.write(MAGIC + _META_LEN.pack(len(meta)) + meta)
        self._file.flush()
        self._flushed = time.monotonic()

    def write(self, item: Received) -> None:
        tag = item.tag.encode()
        self._file.write(_RECORD.pack(item.recv_ns, len(tag), len(item.data)) + tag + item.data)
        self.records += 1
        now = time.monotonic()
        if now - self._flushed >= self.flush_s:
            self._file.flush()
            self._flushed = now

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._flushed = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_meta(f: BinaryIO, name: str) -> dict[str, object]:
    head = f.read(len(MAGIC) + _META_LEN.size)
    if len(head) < len(MAGIC) + _META_LEN.size or head[:5] != MAGIC[:5]:
        raise CaptureError(f"{name} is not a pitwire raw capture (made by --record-raw)")
    if head[:8] != MAGIC:
        raise CaptureError(
            f"{name} is a raw capture of version {head[6]}; this pitwire reads version 1"
        )
    (size,) = _META_LEN.unpack_from(head, len(MAGIC))
    try:
        meta = json.loads(f.read(size))
    except ValueError as exc:
        raise CaptureError(f"{name}: the capture's header is damaged: {exc}") from None
    if not isinstance(meta, dict):
        raise CaptureError(f"{name}: the capture's header is damaged")
    return meta


def read(path: str | os.PathLike[str]) -> tuple[dict[str, object], Records]:
    """The capture's metadata and its records (iteration stops at a damaged tail)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - owned by the Records
    except OSError as exc:
        raise SourceError(f"cannot read the raw capture {path}: {exc}") from None
    try:
        meta = read_meta(f, os.fspath(path))
    except BaseException:
        f.close()
        raise
    return meta, Records(f, os.fspath(path))


class Records:
    """An iterator over a capture's records that owns (and closes) the file."""

    def __init__(self, f: BinaryIO, name: str) -> None:
        self._f = f
        self.name = name
        self.count = 0

    def __iter__(self) -> Iterator[Received]:
        return self

    def __next__(self) -> Received:
        if self._f.closed:
            raise StopIteration
        head = self._f.read(_RECORD.size)
        if len(head) == _RECORD.size:
            recv_ns, tag_len, data_len = _RECORD.unpack(head)
            body = self._f.read(tag_len + data_len)
            if len(body) == tag_len + data_len:
                self.count += 1
                return Received(body[tag_len:], recv_ns, body[:tag_len].decode(errors="replace"))
        if head:
            log.warning(
                "%s: the capture ends mid-record after %d records (cut short?)",
                self.name,
                self.count,
            )
        self.close()
        raise StopIteration

    def close(self) -> None:
        self._f.close()


class RawReplayTransport:
    """Plays a capture's records with their original spacing divided by ``speed``
    (0 = as fast as possible); receive times are the original ones."""

    hint = "the capture file has no more records"

    def __init__(self, path: str | os.PathLike[str], *, source: str, speed: float = 1.0) -> None:
        if speed < 0:
            raise SourceError(f"replay speed must be >= 0, not {speed}")
        self.path = Path(path)
        self.source = source
        self.speed = speed
        self.describe = f"the capture {self.path}"
        self._records: Records | None = None
        self._next: Received | None = None
        self._start: tuple[float, int] | None = None  # (loop time, first recv_ns)

    async def open(self) -> None:
        meta, self._records = read(self.path)
        recorded = meta.get("source")
        if recorded != self.source:
            self._records.close()
            raise SourceError(
                f"{self.path} was recorded from source {recorded!r}; "
                f"replay it with --source {recorded}"
            )

    async def receive(self, wait_s: float) -> list[Received]:
        if self._records is None:
            raise RuntimeError("open() the transport before receive()")
        loop = asyncio.get_running_loop()
        out: list[Received] = []
        deadline = loop.time() + wait_s
        while True:
            item = self._next or next(self._records, None)
            self._next = None
            if item is None:
                if out:
                    return out
                raise EOFError
            if self.speed == 0:
                out.append(item)
                if len(out) >= 256:
                    return out
                continue
            if self._start is None:
                self._start = (loop.time(), item.recv_ns)
            due = self._start[0] + (item.recv_ns - self._start[1]) / 1e9 / self.speed
            now = loop.time()
            if due <= now:
                out.append(item)
                continue
            self._next = item
            if out or due > deadline:
                if not out:
                    await asyncio.sleep(max(0.0, deadline - now))
                return out
            await asyncio.sleep(due - now)

    def send(self, data: bytes) -> None:
        pass  # a capture cannot be answered

    async def close(self) -> None:
        if self._records is not None:
            self._records.close()
