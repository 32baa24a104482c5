"""Decoder events → source items, sans-I/O: samples become columnar batches through the
decoder's manifest, and streams are announced before their first frames.

Transports feed every event a decoder returns (``add``) and, when they have handed over
what arrived so far, ``drain`` the items in order. Samples of a stream that arrive together
become one batch (one manifest application for all of them, which keeps a 22-car F1 packet
cheap).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable

import numpy as np

from pitwire.model.frames import FrameBatch
from pitwire.model.ids import StreamId
from pitwire.model.manifest import Manifest
from pitwire.model.records import StreamInfo
from pitwire.sources.base import (
    DecoderEvent,
    Notice,
    Sample,
    Send,
    SessionChange,
    SessionStarted,
    SourceItem,
    StreamSeen,
    StreamUpdate,
)


class Framer:
    """Turns one decoder's events into ``SourceItem``s (see the module docstring).

    ``notices`` and ``sends`` collect the events that are the transport's business.
    """

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self._raw = manifest.raw_fields
        getter = operator.itemgetter(*self._raw) if self._raw else (lambda _: ())
        self._get = getter if len(self._raw) != 1 else (lambda v: (getter(v),))
        self._streams: dict[str, StreamInfo] = {}
        self._rows: dict[str, list[Sample]] = {}
        self._session: str | None = None
        self._items: list[SourceItem] = []
        self.notices: list[str] = []
        self.sends: list[bytes] = []
        self.samples = 0

    @property
    def streams(self) -> list[StreamInfo]:
        return list(self._streams.values())

    def add(self, events: Iterable[DecoderEvent]) -> None:
        for ev in events:
            match ev:
                case Sample():
                    if ev.stream not in self._streams:
                        self._announce(ev.stream, "", "")
                    self._rows.setdefault(ev.stream, []).append(ev)
                    self.samples += 1
                case StreamSeen():
                    known = self._streams.get(ev.stream)
                    if known is None or (known.driver, known.car) != (ev.driver, ev.car):
                        self._flush()
                        self._announce(ev.stream, ev.driver, ev.car)
                case SessionStarted():
                    self._flush()
                    if ev.key != self._session:  # else only the track became known
                        self._streams.clear()
                        self._session = ev.key
                    self._items.append(SessionChange(key=ev.key, track=ev.track))
                case Send():
                    self.sends.append(ev.data)
                case Notice():
                    self.notices.append(ev.message)

    def drain(self) -> list[SourceItem]:
        """Everything ready, in order: stream updates, session changes and batches."""
        self._flush()
        items, self._items = self._items, []
        return items

    def _announce(self, stream: str, driver: str, car: str) -> None:
        info = StreamInfo(
            stream_id=stream, driver=driver, car=car, channels=list(self.manifest.channels.values())
        )
        self._streams[stream] = info
        self._items.append(StreamUpdate(info))

    def _flush(self) -> None:
        if not self._rows:
            return
        rows = [s for batch in self._rows.values() for s in batch]
        self._rows.clear()
        n = len(rows)
        try:  # the usual case: every sample carries every raw field
            matrix = np.array([self._get(s.values) for s in rows], dtype=np.float64)
        except KeyError:
            nan = math.nan
            matrix = np.array(
                [[s.values.get(name, nan) for name in self._raw] for s in rows], dtype=np.float64
            )
        columns = self.manifest.apply_matrix(matrix.reshape(n, len(self._raw)))
        t_ns = np.fromiter((s.t_ns for s in rows), np.int64, n)
        start = 0
        while start < n:
            stream = rows[start].stream
            stop = start + 1
            while stop < n and rows[stop].stream == stream:
                stop += 1
            # Views of this flush's arrays: nothing else holds them, so batches own them.
            batch = FrameBatch.trusted(
                t_ns[start:stop], {k: c[start:stop] for k, c in columns.items()}
            )
            self._items.append((StreamId(stream), batch))
            start = stop
