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
    """The Source protocol over an ``.ibt`` file, in batches of ``chunk`` rows."""

    def __init__(
        self, path: str | os.PathLike[str], *, speed: float = 1.0, chunk: int = 600
    ) -> None:
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
        for w in caught:
            log.warning("%s", w.message)
        with ibt:
            channels = list(self.manifest.channels.values())
            stream = "car"
            for ev in ibt.session_events():
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
            frames = ibt.frames(self.manifest)
            log.info("%s: %d rows at %d Hz", self.path, frames.n, ibt.tick_rate)
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(0, frames.n, self.chunk):
                batch = frames.slice(i, min(i + self.chunk, frames.n))
                if self.speed > 0:
                    due = start + (batch.t0_ns - frames.t0_ns) / 1e9 / self.speed
                    await asyncio.sleep(max(0.0, due - loop.time()))
                else:
                    await asyncio.sleep(0)
                yield StreamId(stream), batch
