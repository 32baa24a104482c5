"""A game source: a transport feeding a decoder, as the agent's async iterator.

This adapter only moves bytes: transport → (raw capture) → decoder → framer → items. It
makes no format decisions. It degrades as ``sources.base`` says: undecodable bytes are
counted and reported (at most every ``report_s``), silence is reported once with the
transport's hint and announced again when data returns, and the decoder's greeting (a
handshake) is re-sent while the game is silent.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable

from pitwire.sources.base import (
    DecodeError,
    Decoder,
    Received,
    SessionChange,
    SourceInfo,
    SourceItem,
    Transport,
)
from pitwire.sources.framer import Framer
from pitwire.sources.rawcapture import RawWriter

log = logging.getLogger("pitwire.sources")


class DecoderSource:
    """Source protocol over ``decoder`` and ``transport``; ``record`` keeps a raw capture."""

    def __init__(
        self,
        decoder: Decoder,
        transport: Transport,
        *,
        record: str | os.PathLike[str] | None = None,
        silence_s: float = 5.0,
        report_s: float = 10.0,
    ) -> None:
        self.decoder = decoder
        self.transport = transport
        self.framer = Framer(decoder.manifest)
        self.record = record
        self.silence_s = silence_s
        self.report_s = report_s
        self.bad = 0
        self._writer: RawWriter | None = None
        self._track = ""
        self._bad_reported = 0
        self._last_report = -math.inf
        self._last_data = time.monotonic()
        self._silent = False
        self._last_greeting = 0.0
        self._bug_reported = False
        self._last_problem = ""
        self._last_bytes = 0.0

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(source=self.decoder.name, track=self._track, streams=self.framer.streams)

    def start_recording(self, path: str | os.PathLike[str]) -> None:
        if self._writer is None:
            self._writer = RawWriter(path, source=self.decoder.name)

    def record_received(self, items: Iterable[Received]) -> None:
        """Write bytes already decoded (before recording began) to the capture."""
        if self._writer is not None:
            for item in items:
                self._writer.write(item)

    async def __aiter__(self) -> AsyncIterator[SourceItem]:
        await self.transport.open()
        log.info("%s: receiving from %s", self.decoder.name, self.transport.describe)
        self.greet()
        async with contextlib.aclosing(self.items()) as items:
            async for item in items:
                yield item

    async def items(self) -> AsyncGenerator[SourceItem, None]:
        """Receive, decode and yield until the transport ends (it must be open)."""
        try:
            if self.record is not None:
                self.start_recording(self.record)
            while True:
                try:
                    got = await self.transport.receive(1.0)
                except EOFError:
                    return
                for item in self.process(got):
                    yield item
        finally:
            await self.close()

    def report_skipped(self, now: float) -> None:
        """Log how many packets could not be decoded since the last report."""
        self._last_report = now
        skipped, self._bad_reported = self.bad - self._bad_reported, self.bad
        log.warning(
            "%s: skipped %d undecodable packet(s) from %s (%d in all); last: %s",
            self.decoder.name,
            skipped,
            self.transport.describe,
            self.bad,
            self._last_problem,
        )

    async def close(self) -> None:
        if self.bad > self._bad_reported:
            self.report_skipped(time.monotonic())
        dismiss = getattr(self.decoder, "dismiss", None)
        if dismiss is not None:  # a subscription the game keeps (AC remote telemetry)
            self.transport.send(dismiss())
        await self.transport.close()
        if self._writer is not None:
            self._writer.close()

    def greet(self) -> None:
        for data in self.decoder.greeting():
            self.transport.send(data)
        self._last_greeting = time.monotonic()

    def process(self, got: list[Received]) -> list[SourceItem]:
        """Decode what arrived; return the items ready for the agent."""
        now = time.monotonic()
        before = self.framer.samples
        if got:
            self._last_bytes = now
        elif self._writer is not None:
            self._writer.flush()  # a quiet game: what was recorded reaches the disk now
        for item in got:
            if self._writer is not None:
                self._writer.write(item)
            try:
                events = self.decoder.feed(item.data, item.recv_ns, item.tag)
            except Exception as exc:  # a decoder bug must not end a capture either
                if not isinstance(exc, DecodeError) and not self._bug_reported:
                    self._bug_reported = True  # once in full; later ones are counted
                    log.exception("%s: decoder error (please report it)", self.decoder.name)
                self.bad += 1
                self._last_problem = str(exc)
                continue
            self.framer.add(events)
        if self.bad > self._bad_reported and now - self._last_report >= self.report_s:
            self.report_skipped(now)
        for data in self.framer.sends:
            self.transport.send(data)
        self.framer.sends.clear()
        for message in self.framer.notices:
            # Game states (paused, menus, restricted data) are news, not faults.
            prefix = f"{self.decoder.name}: "
            shown = message if message.lower().startswith(prefix.lower()) else prefix + message
            log.info("%s", shown)
        self.framer.notices.clear()
        if self.framer.samples > before:
            self._last_data = now
            if self._silent:
                self._silent = False
                log.info(
                    "%s: data is flowing again from %s", self.decoder.name, self.transport.describe
                )
        elif now - self._last_data >= self.silence_s:
            if not self._silent:
                self._silent = True
                if now - self._last_bytes < self.silence_s:
                    log.warning(
                        "%s: packets arrive on %s but none has given a frame for %.0f s: the "
                        "game is paused or in its menus, or sends another format (%s)",
                        self.decoder.name,
                        self.transport.describe,
                        now - self._last_data,
                        self._last_problem or "no undecodable packets",
                    )
                else:
                    log.warning(
                        "%s: no data from %s for %.0f s. %s",
                        self.decoder.name,
                        self.transport.describe,
                        now - self._last_data,
                        self.transport.hint,
                    )
            if now - self._last_greeting >= self.silence_s:
                self.greet()
        items = self.framer.drain()
        for it in items:
            if isinstance(it, SessionChange) and it.track:
                self._track = it.track
        return items
