"""``pitwire agent --source iracing --ibt FILE``: an iRacing ``.ibt`` file through the live
path, at its recorded pace times ``speed`` (0 = as fast as the uplink takes it)."""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

from pitwire.model.ids import StreamId
from pitwire.model.records import StreamInfo
from pitwire.sources.base import (
    SessionChange,
    SessionStarted,
    SourceError,
    SourceInfo,
    SourceItem,
    StreamUpdate,
)
from pitwire.sources.ibt import IbtError, IbtFile
from pitwire.sources.iracing import IRacingDecoder

log = logging.getLogger("pitwire.sources")


class IbtSource:
    """The Source protocol over an ``.ibt`` file, in batches of ``chunk`` rows (0: about
    0.1 s of rows when paced, 1000 when not). Rows are decoded batch by batch, so a long
    file never sits in memory decoded."""

    def __init__(self, path: str | os.PathLike[str], *, speed: float = 1.0, chunk: int = 0) -> None:
        if speed < 0:
            raise SourceError(f"replay speed must be >= 0, not {speed}")
        self.path = Path(path)
        self.speed = speed
        self.chunk = chunk
        self.manifest = IRacingDecoder.manifest
        self._info = SourceInfo(source="iracing")

    @property
    def info(self) -> SourceInfo:
        return self._info

    async def __aiter__(self) -> AsyncIterator[SourceItem]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ibt = IbtFile(self.path)
            except IbtError as exc:
                raise SourceError(str(exc)) from None
            events = ibt.session_events()
        for w in caught:
            log.warning("%s", w.message)
        with ibt:
            channels = list(self.manifest.channels.values())
            stream = "car"
            for ev in events:
                if isinstance(ev, SessionStarted):
                    self._info.track = ev.track
                    yield SessionChange(key=ev.key, track=ev.track)
                else:
                    stream = ev.stream
                    info = StreamInfo(
                        stream_id=ev.stream, driver=ev.driver, car=ev.car, channels=channels
                    )
                    self._info.streams = [info]
                    yield StreamUpdate(info)
            n = len(ibt)
            log.info("%s: %d rows at %d Hz", self.path, n, ibt.tick_rate)
            if n == 0:
                return
            # Paced: ~0.1 s of rows per batch, so viewers see it as live; else big batches.
            rows = self.chunk or (max(1, round(ibt.tick_rate / 10)) if self.speed else 1000)
            first_ns = int(ibt.time_ns(0, 1)[0])
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(0, n, rows):
                batch = ibt.frames(self.manifest, i, min(i + rows, n))
                if self.speed > 0:
                    due = start + (batch.t1_ns - first_ns) / 1e9 / self.speed
                    await asyncio.sleep(max(0.0, due - loop.time()))
                else:
                    await asyncio.sleep(0)
                yield StreamId(stream), batch
