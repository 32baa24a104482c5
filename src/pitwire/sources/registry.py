"""Source registry: name → factory. A new game registers here and needs nothing else in
the agent or server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pitwire.sources.base import Source, SourceError


def _sim(**opts: Any) -> Source:
    from pitwire.sources.sim import SimSource

    return SimSource(
        cars=opts.get("cars", 6),
        seed=opts.get("seed", 0),
        rate_hz=opts.get("rate", 60.0),
        duration=opts.get("duration"),
    )


SOURCES: dict[str, Callable[..., Source]] = {"sim": _sim}


def make_source(name: str, **opts: Any) -> Source:
    """Build the source called ``name``; raise SourceError naming the known ones."""
    factory = SOURCES.get(name)
    if factory is None:
        raise SourceError(f"unknown source {name!r}; known sources: {', '.join(sorted(SOURCES))}")
    return factory(**opts)
