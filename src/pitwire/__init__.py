"""pitwire: real-time motorsport telemetry.

Capture a car's data, move it to a server, fan it out live to browser dashboards, store it
compactly and analyse it. See README.md for the two commands that run it.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pitwire.api import Capture, Session, capture, open

__all__ = ["Capture", "Session", "__version__", "capture", "open"]


def __getattr__(name: str) -> object:
    """``pitwire.capture`` and ``pitwire.open`` load the API on first use (the CLI and the
    server do not pay for it)."""
    if name in ("capture", "open", "Capture", "Session"):
        from pitwire import api

        return getattr(api, name)
    raise AttributeError(f"module 'pitwire' has no attribute {name!r}")
