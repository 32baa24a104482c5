"""``--source auto``: listen on every known port and map at once; keep the first source
that produces a car's frame, close the rest.

Ports that another program holds are skipped with a note (pitwire can still take a feed
passed on to another port with ``--source NAME --port``). Assetto Corsa and ACC share their
map names; the static page tells them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from pitwire.sources.base import (
    Received,
    SessionChange,
    SourceError,
    SourceInfo,
    SourceItem,
    StreamUpdate,
)
from pitwire.sources.live import DecoderSource
from pitwire.sources.registry import GAMES, CaptureOptions, Game, make_transport

log = logging.getLogger("pitwire.sources")


@dataclass(eq=False, slots=True)
class _Candidate:
    name: str
    source: DecoderSource
    pending: list[SourceItem] = field(default_factory=list)
    received: deque[Received] = field(default_factory=lambda: deque(maxlen=100_000))
    task: asyncio.Task[list[Received]] | None = None
    mismatch: bool = False


def _kunos_game(static: bytes) -> str | None:
    from pitwire.sources.kunos import detect

    return detect(static)


class AutoSource:
    """The Source protocol over whichever known source speaks first."""

    def __init__(self, opts: CaptureOptions, *, games: Mapping[str, Game] = GAMES) -> None:
        if opts.replay_raw is not None:
            raise SourceError("--replay-raw needs the capture's source: use --source NAME")
        self.opts = opts
        self.games = games
        self.chosen: DecoderSource | None = None

    @property
    def info(self) -> SourceInfo:
        return self.chosen.info if self.chosen else SourceInfo(source="auto")

    def _candidates(self) -> list[_Candidate]:
        out = []
        for name, game in self.games.items():
            if not game.auto:
                continue
            decoder = game.make_decoder()
            if name == "acc" and "ac" in self.games:  # the same maps may carry AC instead
                ac_game = self.games["ac"]
                ac = ac_game.make_decoder()
                out.append(
                    _Candidate("ac", DecoderSource(ac, make_transport(ac_game, ac, self.opts)))
                )
            opts = self.opts
            if game.kind == "udp":  # each game on its own default port
                opts = CaptureOptions(
                    bind=self.opts.bind, forward=self.opts.forward, map_files=self.opts.map_files
                )
            out.append(
                _Candidate(name, DecoderSource(decoder, make_transport(game, decoder, opts)))
            )
        return out

    async def __aiter__(self) -> AsyncIterator[SourceItem]:
        live: list[_Candidate] = []
        for cand in self._candidates():
            try:
                await cand.source.transport.open()
            except SourceError as exc:
                log.info("auto: not listening for %s: %s", cand.name, exc)
                continue
            cand.source.greet()
            live.append(cand)
        if not live:
            raise SourceError("auto: no port or map could be opened; name a --source")
        log.info(
            "auto: waiting for data from %s",
            ", ".join(f"{c.name} ({c.source.transport.describe})" for c in live),
        )
        winner: _Candidate | None = None
        try:
            winner = await self._race(live)
        finally:
            for cand in live:
                if cand.task is not None:
                    cand.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, EOFError):
                        await cand.task
            for cand in live:  # every loser, or all of them when the race did not finish
                if cand is not winner:
                    await cand.source.close()
        self.chosen = winner.source
        log.info("auto: %s is sending (%s)", winner.name, winner.source.transport.describe)
        if self.opts.record_raw is not None:
            # What decided the race is recorded too: a capture must start with the first
            # pages (maps send a page only when it changes).
            winner.source.start_recording(self.opts.record_raw)
            winner.source.record_received(winner.received)
        winner.received.clear()
        for item in winner.pending:
            yield item
        async with contextlib.aclosing(winner.source.items()) as items:
            async for item in items:
                yield item

    async def _race(self, live: list[_Candidate]) -> _Candidate:
        while True:
            for cand in live:
                if cand.task is None and not cand.mismatch:
                    cand.task = asyncio.create_task(cand.source.transport.receive(1.0))
            tasks = [c.task for c in live if c.task is not None]
            if not tasks:
                raise SourceError("auto: every candidate source stopped")
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for cand in live:
                if cand.task not in done or cand.task is None:
                    continue
                task, cand.task = cand.task, None
                try:
                    got = task.result()
                except EOFError:
                    cand.mismatch = True
                    continue
                if cand.name in ("ac", "acc"):
                    statics = [r.data for r in got if r.tag == "static"]
                    if statics and _kunos_game(statics[-1]) not in (None, cand.name):
                        cand.mismatch = True
                        continue
                cand.received.extend(got)
                items = cand.source.process(got)
                cand.pending.extend(items)
                if any(not isinstance(i, StreamUpdate | SessionChange) for i in items):
                    return cand
