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
        elif not Path(value).exists():
            raise SourceError(f"--map-file {value!r} does not exist")
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


Opener = Callable[[str], "tuple[memoryview, Callable[[], None]] | None"]
"""Opens a named map read-only: its bytes and how to release them; None while it is absent."""


def open_named(name: str) -> tuple[memoryview, Callable[[], None]] | None:  # pragma: no cover
    """A Windows named file mapping, opened read-only if it exists (never created).

    ``mmap.mmap(-1, size, tagname=...)`` would create a missing map, and a game starting
    after pitwire could then find a read-only section it cannot write: so this opens with
    ``OpenFileMappingW``, which fails while the game has not created the map.
    """
    if sys.platform != "win32":
        return None
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenFileMappingW.restype = wintypes.HANDLE
    kernel32.OpenFileMappingW.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.LPCWSTR]
    kernel32.MapViewOfFile.restype = ctypes.c_void_p
    kernel32.MapViewOfFile.argtypes = [
        wintypes.HANDLE,
        wintypes.DWORD,
        wintypes.DWORD,
        wintypes.DWORD,
        ctypes.c_size_t,
    ]
    file_map_read = 0x0004
    handle = kernel32.OpenFileMappingW(file_map_read, False, name)
    if not handle:
        return None
    address = kernel32.MapViewOfFile(handle, file_map_read, 0, 0, 0)
    if not address:
        kernel32.CloseHandle(handle)
        return None

    class _Info(ctypes.Structure):  # MEMORY_BASIC_INFORMATION
        _fields_ = [
            ("BaseAddress", ctypes.c_void_p),
            ("AllocationBase", ctypes.c_void_p),
            ("AllocationProtect", wintypes.DWORD),
            ("PartitionId", wintypes.WORD),
            ("RegionSize", ctypes.c_size_t),
            ("State", wintypes.DWORD),
            ("Protect", wintypes.DWORD),
            ("Type", wintypes.DWORD),
        ]

    info = _Info()
    kernel32.VirtualQuery(ctypes.c_void_p(address), ctypes.byref(info), ctypes.sizeof(info))
    view = memoryview((ctypes.c_char * info.RegionSize).from_address(address)).cast("B")

    def release() -> None:
        view.release()
        kernel32.UnmapViewOfFile(ctypes.c_void_p(address))
        kernel32.CloseHandle(handle)

    return view, release


class _Mapped:
    """One page mapped read-only (a named Windows map, or a file), re-opened on demand."""

    def __init__(self, page: Page, path: Path | None, opener: Opener = open_named) -> None:
        self.page = page
        self.path = path
        self.opener = opener
        self.map: mmap.mmap | None = None
        self._named_view: memoryview | None = None
        self._release: Callable[[], None] | None = None
        self._stat: tuple[int, int] | None = None
        self.problem = ""

    def view(self) -> memoryview | None:
        if self.path is None:
            return self._named()
        try:
            st = os.stat(self.path)
            key = (st.st_ino, st.st_size)
            if self.map is None or key != self._stat:
                self.close()
                if st.st_size == 0:
                    return None
                with open(self.path, "rb") as f:
                    self.map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                self._stat = key
        except (OSError, ValueError) as exc:  # absent, a folder, not readable, vanished
            self.close()
            if isinstance(exc, FileNotFoundError):
                self.problem = ""
            else:
                self.problem = f"cannot map {self.path}: {exc}"
            return None
        self.problem = ""
        return memoryview(self.map)

    def _named(self) -> memoryview | None:
        if self._named_view is None:
            opened = self.opener(self.page.name)
            if opened is None:
                return None
            self._named_view, self._release = opened
        return self._named_view[:]

    def close(self) -> None:
        if self.map is not None:
            with contextlib.suppress(BufferError):
                self.map.close()
            self.map = None
        if self._release is not None:
            self._release()
            self._release = self._named_view = None


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
        opener: Opener = open_named,
    ) -> None:
        if not rate_hz > 0:
            raise SourceError(f"poll rate must be > 0 Hz, not {rate_hz}")
        self.pages = pages
        self.rate_hz = rate_hz
        self.reader = reader
        self.hint = hint
        where = ", ".join(str(p) for p in files.values()) if files else "named maps"
        self.describe = f"shared memory ({where})"
        self._mapped = [_Mapped(p, files[p.tag] if files else None, opener) for p in pages]
        self._problems: set[str] = set()
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
            elif m.problem and m.problem not in self._problems:
                self._problems.add(m.problem)  # said once; the poll keeps trying
                log.warning("%s", m.problem)
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
