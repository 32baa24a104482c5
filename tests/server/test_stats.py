"""Tests of server figures (pitwire.server.stats)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pitwire.server import stats as stats_module
from pitwire.server.stats import LatencyReservoir, ServerStats, rss_bytes


def test_empty_reservoir_has_no_percentiles():
    """A reservoir with no samples reports only n = 0."""
    assert LatencyReservoir(10).summary() == {"n": 0}


def test_percentiles_in_microseconds():
    """p50/p90/p99/max are the samples' percentiles converted from ns to µs."""
    res = LatencyReservoir(1000)
    for us in range(1, 101):
        res.add(us * 1000)
    assert res.summary() == {
        "n": 100,
        "p50_us": 50.5,
        "p90_us": 90.1,
        "p99_us": 99.0,
        "max_us": 100.0,
    }


def test_percentiles_do_not_depend_on_order():
    """Samples added in any order give the same summary (seed printed)."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    samples = [rng.randrange(1, 10**9) for _ in range(500)]
    a, b = LatencyReservoir(1000), LatencyReservoir(1000)
    for s in samples:
        a.add(s)
    for s in rng.sample(samples, len(samples)):
        b.add(s)
    assert a.summary() == b.summary()
    assert a.summary()["p50_us"] == pytest.approx(np.percentile(samples, 50) / 1e3, abs=0.05)


def test_reservoir_wraps_around_to_the_newest_samples():
    """Past its size the reservoir keeps only the newest samples; n counts every sample."""
    res = LatencyReservoir(4)
    for ns in (1_000, 2_000, 3_000, 4_000):
        res.add(ns)
    for _ in range(4):
        res.add(500_000)
    summary = res.summary()
    assert summary["n"] == 8
    assert summary["p50_us"] == summary["max_us"] == 500.0
    res.add(9_000_000)
    assert res.summary()["max_us"] == 9000.0
    assert res.summary()["p50_us"] == 500.0


def test_reset_forgets_every_sample():
    """reset() empties the reservoir."""
    res = LatencyReservoir(4)
    res.add(1)
    res.reset()
    assert res.summary() == {"n": 0}
    res.add(2_000)
    assert res.summary()["max_us"] == 2.0


def test_server_stats_start_at_zero():
    """A new ServerStats has every counter at zero and an empty reservoir."""
    stats = ServerStats()
    assert (
        stats.sends,
        stats.dropped,
        stats.ingest_frames,
        stats.ingest_messages,
        stats.disconnected_slow,
    ) == (0, 0, 0, 0, 0)
    assert stats.latency.summary() == {"n": 0}


def test_rss_bytes_is_positive_and_plausible():
    """rss_bytes reports this process's resident memory: more than 1 MB, less than 1 TB."""
    assert 1 << 20 < rss_bytes() < 1 << 40


def test_rss_bytes_falls_back_without_proc(monkeypatch):
    """Without /proc the peak RSS from getrusage is reported instead."""

    def no_proc(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("no /proc here")

    monkeypatch.setattr(stats_module, "open", no_proc, raising=False)
    assert rss_bytes() > 1 << 20
