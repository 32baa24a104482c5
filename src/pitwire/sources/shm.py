"""Shared-memory transport: poll a game's named memory maps at a fixed rate.

On Windows a page is the named mapping the game creates (``Local\\acpmf_physics``); anywhere a
page can also be a file (``--map-file``): the ``/dev/shm/acpmf_*`` files the Wine/Proton bridge
exposes, or a map copied by another tool. Pages are mapped read-only and re-opened when they
appear, disappear or change size, so a game that starts after pitwire, or restarts, is picked
up without a restart of the agent.

Each tick every page is read; a page whose bytes did not change since the last tick is not
passed on (the decoder would skip it anyway). Decoders whose map is large (iRacing's ~780 KiB)
provide a ``reader`` that copies only the pieces that matter from the mapped memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pitwire.sources.base import Received, SourceError

log = logging.getLogger("pitwire.sources")

Reader = Callable[[Mapping[str, memoryview]], list[tuple[str, bytes]]]
"""Pieces ``(tag, bytes)`` to decode, copied from the mapped pages (by tag)."""

PROTON_DIR = Path("/dev/shm")


@dataclass(frozen=True, slots=True)
class Page:
    """One map: its tag for the decoder, its Windows name and the bytes to map."""

    tag: str
    name: str
    size: int

    @property
    def file_name(self) -> str:
        return self.name.removeprefix("Local\\")


def map_files(pages: list[Page], given: list[str]) -> dict[str, Path] | None:
    """Files standing in for ``pages``: from ``--map-file`` values (``TAG=PATH``, a folder
    holding files named after the maps, or one path when there is one page), else the
    Proton folder on Linux/macOS; None on Windows without ``--map-file`` (named maps)."""
    by_tag = {p.tag: p for p in pages}
    out: dict[str, Path] = {}
    for value in given:
        tag, sep, path = value.partition("=")
        if sep and tag in by_tag:
            out[tag] = Path(path)
        elif Path(value).is_dir():
            out.update({p.tag: Path(value) / p.file_name for p in pages})
        elif len(pages) == 1:
            out[pages[0].tag] = Path(value)
        else:
            names = ", ".join(p.file_name for p in pages)
            raise SourceError(
                f"--map-file {value!r}: give a folder holding {names}, "
                f"or TAG=PATH for each of {', '.join(by_tag)}"
            )
    if out:
        missing = [t for t in by_tag if t not in out]
        if missing:
            raise SourceError(f"--map-file: no file given for page(s) {', '.join(missing)}")
        return out
    if sys.platform == "win32":
        return None
    return {p.tag: PROTON_DIR / p.file_name for p in pages}


class _Mapped:
    """One page mapped read-only (a named Windows map, or a file), re-opened on demand."""

    def __init__(self, page: Page, path: Path | None) -> None:
        self.page = page
        self.path = path
        self.map: mmap.mmap | None = None
        self._stat: tuple[int, int] | None = None

    def view(self) -> memoryview | None:
        if self.path is None:
            return self._named()
        try:
            st = os.stat(self.path)
        except OSError:
            self.close()
            return None
        key = (st.st_ino, st.st_size)
        if self.map is None or key != self._stat:
            self.close()
            if st.st_size == 0:
                return None
            with open(self.path, "rb") as f:
                self.map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._stat = key
        return memoryview(self.map)

    def _named(self) -> memoryview | None:  # pragma: no cover - Windows only
        if self.map is None:
            try:
                self.map = mmap.mmap(
                    -1, self.page.size, tagname=self.page.name, access=mmap.ACCESS_READ
                )
            except OSError:
                return None
        return memoryview(self.map)

    def close(self) -> None:
        if self.map is not None:
            with contextlib.suppress(BufferError):
                self.map.close()
            self.map = None


class MapTransport:
    """Reads ``pages`` ``rate_hz`` times a second (see the module docstring)."""

    def __init__(
        self,
        pages: list[Page],
        *,
        files: dict[str, Path] | None,
        rate_hz: float = 60.0,
        reader: Reader | None = None,
        hint: str = "",
    ) -> None:
        if not rate_hz > 0:
            raise SourceError(f"poll rate must be > 0 Hz, not {rate_hz}")
        self.pages = pages
        self.rate_hz = rate_hz
        self.reader = reader
        self.hint = hint
        where = ", ".join(str(p) for p in files.values()) if files else "named maps"
        self.describe = f"shared memory ({where})"
        self._mapped = [_Mapped(p, files[p.tag] if files else None) for p in pages]
        self._last: dict[str, bytes] = {}
        self._next_tick = 0.0

    async def open(self) -> None:
        self._next_tick = asyncio.get_running_loop().time()

    def read(self) -> list[Received]:
        """One poll: the pieces that changed since the last one."""
        now = time.time_ns()
        views: dict[str, memoryview] = {}
        for m in self._mapped:
            view = m.view()
            if view is not None:
                views[m.page.tag] = view
        try:
            if self.reader is not None:
                pieces = self.reader(views) if views else []
            else:
                pieces = [
                    (m.page.tag, bytes(views[m.page.tag][: m.page.size]))
                    for m in self._mapped
                    if m.page.tag in views
                ]
        finally:
            for v in views.values():
                v.release()
        out = []
        for tag, data in pieces:
            if self._last.get(tag) == data or not any(data):
                continue  # unchanged, or an all-zero page: the game is not writing it
            self._last[tag] = data
            out.append(Received(data, now, tag))
        return out

    async def receive(self, wait_s: float) -> list[Received]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        period = 1.0 / self.rate_hz
        while True:
            now = loop.time()
            if self._next_tick > now:
                await asyncio.sleep(self._next_tick - now)
            self._next_tick = max(self._next_tick + period, loop.time() - period)
            got = self.read()
            if got or loop.time() >= deadline:
                return got

    def send(self, data: bytes) -> None:
        pass  # maps are read-only

    async def close(self) -> None:
        for m in self._mapped:
            m.close()
