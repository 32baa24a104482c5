"""``pitwire watch DIR``: import new and modified session files from a folder into a server.

:class:`WatchState` is the pure core: fed directory listings (path → size and mtime) with
the time they were taken, it returns the files to import now. A file is imported once its
size and mtime have not changed for ``settle_s`` (so a burst of writes, or a file still
being written, is imported once, whole); a file still without its index after settling (a
recording in progress, or one whose writer crashed) is imported anyway, what it holds so
far. A file is never imported twice with the same size and mtime; the imported ones are
kept in ``.pitwire-imported.json`` in the watched folder, so a restart does not import
them again.

A file that changes after its import (a session that grew) is imported again into the same
session; the importer skips every frame the server already stores of each stream
(:mod:`pitwire.sources.importer`), so only the new frames are added.

:class:`Watcher` is the asyncio adapter: it polls the folder with ``os.scandir`` every
``poll_s`` (portable, no file-event dependency), feeds the core and runs the imports, one
at a time. A failed import is logged and tried again later (or once the file changes, for
a file that is not a session file); a state file that cannot be written is logged and the
watch goes on (the imports are still remembered while it runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

from pitwire.sources.base import SourceError
from pitwire.sources.importer import ImportReport

log = logging.getLogger("pitwire.watch")

STATE_FILE = ".pitwire-imported.json"
"""Where a watched folder keeps what was imported from it."""

Signature = tuple[int, int]
"""A file's size [bytes] and mtime [ns]: it changed when this did."""


# -- the core -------------------------------------------------------------------------------


class WatchState:
    """Which files of a folder to import, and when (see the module docstring).

    Paths are whatever the caller lists (the adapter uses paths relative to the folder).
    imported: what was imported before (from the state file)
    """

    def __init__(
        self, *, settle_s: float = 2.0, imported: Mapping[str, Signature] | None = None
    ) -> None:
        if not settle_s >= 0:
            raise ValueError(f"settle_s must be >= 0, not {settle_s}")
        self.settle_s = settle_s
        self.imported: dict[str, Signature] = dict(imported or {})
        self._stable: dict[str, tuple[Signature, float]] = {}  # signature, unchanged since
        self._failed: dict[str, Signature] = {}
        self._not_before: dict[str, float] = {}
        self.busy: set[str] = set()

    def observe(self, listing: Mapping[str, Signature], now: float) -> list[str]:
        """Take a listing made at ``now`` [s, any monotonic clock]; return the files to
        import now (each is then busy until ``done``, ``failed`` or ``retry``)."""
        for gone in [p for p in self._stable if p not in listing]:
            del self._stable[gone]
        ready: list[str] = []
        for path, sig in listing.items():
            if path in self.busy:
                continue
            if self.imported.get(path) == sig or self._failed.get(path) == sig:
                self._stable.pop(path, None)
                continue
            seen = self._stable.get(path)
            if seen is None or seen[0] != sig:
                self._stable[path] = seen = (sig, now)
            if now - seen[1] >= self.settle_s and now >= self._not_before.get(path, now):
                del self._stable[path]
                self._not_before.pop(path, None)
                self.busy.add(path)
                ready.append(path)
        return sorted(ready)

    def done(self, path: str, sig: Signature) -> None:
        """``path`` was imported as it was at ``sig``."""
        self.busy.discard(path)
        self.imported[path] = sig
        self._failed.pop(path, None)

    def failed(self, path: str, sig: Signature) -> None:
        """``path`` cannot be imported as it is (not a session file): try again only once
        it changes."""
        self.busy.discard(path)
        self._failed[path] = sig

    def retry(self, path: str, at: float) -> None:
        """The import failed for a reason outside the file (server down): again at ``at``."""
        self.busy.discard(path)
        self._not_before[path] = at


# -- the folder -----------------------------------------------------------------------------


def scan(root: Path, pattern: str = "*.pwr", *, recursive: bool = False) -> dict[str, Signature]:
    """Files under ``root`` whose name matches ``pattern``: relative POSIX path → signature.

    Hidden files and folders (a leading dot, e.g. the state file) are left out; a file that
    vanishes while listed is left out."""
    found: dict[str, Signature] = {}
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # removed or unreadable meanwhile
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        folders.append(Path(entry.path))
                    continue
                if not entry.is_file() or not fnmatch.fnmatch(entry.name, pattern):
                    continue
                st = entry.stat()
            except OSError:
                continue
            found[Path(entry.path).relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return found


def load_state(root: Path) -> dict[str, Signature]:
    """What ``root``'s state file says was imported (nothing when it is absent or bad)."""
    path = root / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {name: (int(v["size"]), int(v["mtime_ns"])) for name, v in data["imported"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("%s is unreadable (%s); starting afresh", path, exc)
        return {}


def save_state(root: Path, imported: Mapping[str, Signature]) -> None:
    """Write the state file atomically (a crash leaves the old one or the new one); an
    OSError (disk full, read-only folder) is raised, leaving no temporary file behind."""
    path = root / STATE_FILE
    tmp = path.with_name(path.name + ".tmp")
    data = {
        "version": 1,
        "imported": {
            name: {"size": size, "mtime_ns": mtime}
            for name, (size, mtime) in sorted(imported.items())
        },
    }
    try:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


# -- the adapter ----------------------------------------------------------------------------

Importer = Callable[[Path], Awaitable[ImportReport]]


class Watcher:
    """Polls ``root`` and imports what :class:`WatchState` says, with ``importer`` (by
    default ``import_recording`` into ``server``); ``on_import`` hears of each import.

    retry_s: wait before importing a file again after a failure outside it (server down)
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        server: str = "",
        pattern: str = "*.pwr",
        recursive: bool = False,
        settle_s: float = 2.0,
        poll_s: float = 0.5,
        retry_s: float = 10.0,
        importer: Importer | None = None,
        on_import: Callable[[str, ImportReport], None] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise SourceError(f"{self.root} is not a folder")
        if importer is None and not server:
            raise ValueError("a Watcher needs a server URL or an importer")
        self.server = server
        self.pattern = pattern
        self.recursive = recursive
        self.poll_s = poll_s
        self.retry_s = retry_s
        self.importer = importer or self._import
        self.on_import = on_import
        self.state = WatchState(settle_s=settle_s, imported=load_state(self.root))
        self.imports = 0
        self.failures = 0
        self._stop = asyncio.Event()

    async def _import(self, path: Path) -> ImportReport:
        from pitwire.sources.importer import import_recording

        return await import_recording(path, server=self.server)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Scan, import what settled, repeat every ``poll_s`` until ``stop()``."""
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            listing = await asyncio.to_thread(
                scan, self.root, self.pattern, recursive=self.recursive
            )
            await self._import_all(self.state.observe(listing, loop.time()), listing)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.poll_s)

    async def _import_all(self, names: Iterable[str], listing: Mapping[str, Signature]) -> None:
        from pitwire.agent.uplink import UplinkError
        from pitwire.sources.importer import ImportFailed

        for name in names:
            sig = listing[name]
            try:
                report = await self.importer(self.root / name)
            except SourceError as exc:
                self.failures += 1
                log.warning("%s: not imported: %s", name, exc)
                self.state.failed(name, sig)
                continue
            except (ImportFailed, UplinkError, OSError) as exc:
                self.failures += 1
                log.warning(
                    "%s: not imported (%s); trying again in %.0f s", name, exc, self.retry_s
                )
                self.state.retry(name, asyncio.get_running_loop().time() + self.retry_s)
                continue
            except Exception:  # a bug or a surprise: keep watching the other files
                self.failures += 1
                log.exception("%s: not imported; trying again in %.0f s", name, self.retry_s)
                self.state.retry(name, asyncio.get_running_loop().time() + self.retry_s)
                continue
            if not report.complete:
                self.failures += 1
                log.warning(
                    "%s: %d frames not acknowledged by the server; trying again in %.0f s",
                    name,
                    report.unacked + report.dropped,
                    self.retry_s,
                )
                self.state.retry(name, asyncio.get_running_loop().time() + self.retry_s)
                continue
            self.imports += 1
            if report.index_rebuilt and not report.problems:
                # Normal for a recording in progress, not damage (damage was logged as a
                # warning by the reader and the replay).
                log.info(
                    "%s is still being written (no index yet): imported what is there; "
                    "the rest is imported when it grows",
                    name,
                )
            self.state.done(name, sig)
            try:
                save_state(self.root, self.state.imported)
            except OSError as exc:
                log.warning(
                    "cannot save what was imported to %s (%s); a restart may import %s again "
                    "(only frames the server lacks are added)",
                    self.root / STATE_FILE,
                    exc,
                    name,
                )
            if self.on_import is not None:
                self.on_import(name, report)
