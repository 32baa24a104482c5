"""The span arithmetic and JSON helpers every store uses (pitwire.store._shared)."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from pitwire.model.channels import Channel
from pitwire.store import _shared


@st.composite
def stored_spans(draw: st.DrawFn) -> list[tuple[int, int]]:
    """Sorted, non-overlapping inclusive spans, as stores keep them."""
    spans, cursor = [], draw(st.integers(0, 20))
    for _ in range(draw(st.integers(0, 8))):
        lo = cursor + draw(st.integers(0, 10))
        hi = lo + draw(st.integers(0, 10))
        spans.append((lo, hi))
        cursor = hi + 1
    return spans


@settings(max_examples=500, print_blob=True)
@given(spans=stored_spans(), first=st.integers(0, 150), length=st.integers(1, 80))
def test_gaps_are_exactly_the_unstored_seqs(spans, first: int, length: int) -> None:
    """gaps returns sorted, disjoint ranges covering exactly the seqs of the write not stored."""
    last = first + length - 1
    stored = {s for lo, hi in spans for s in range(lo, hi + 1)}
    out = _shared.gaps(first, last, spans)
    got = [s for lo, hi in out for s in range(lo, hi + 1)]
    assert got == [s for s in range(first, last + 1) if s not in stored]
    assert all(lo <= hi for lo, hi in out)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(out))


def test_json_keeps_non_finite_floats() -> None:
    """Channels with infinite bounds survive encode_json/decode_json unchanged."""
    channels = [Channel(name="a"), Channel(name="b", lo=-1, hi=1, resolution=0.5, unit="°C")]
    text = _shared.encode_json(channels)
    assert "null" not in text.replace('"resolution":null', "")
    assert _shared.decode_json(text, list[Channel]) == channels
    assert math.isinf(_shared.decode_json(text, list[Channel])[0].hi)
