"""Dashboard figures in a real browser: Debian's Chromium (Playwright, headless, 1280x800)
on the live pit wall of ``pitwire demo --cars 20`` (20 simulated cars at 60 Hz).

- **main-thread time per animation frame**: the page measures every rAF tick with
  ``performance.now()`` around all its drawers, plus the time spent handling the socket
  worker's messages since the previous tick (``window.__pitwire.frameTimes``); p50/p95/p99
  over 30 s (target p95 <= 4 ms).
- **dropped frames over 30 s**: from the rAF timestamps' intervals; an interval of k refresh
  periods (the median interval) dropped k - 1 frames.
- **JS heap**: the page's used JS heap after a forced garbage collection (Chrome DevTools
  Protocol ``HeapProfiler.collectGarbage`` then ``Runtime.getHeapUsage``) after 1 minute and
  after ``--minutes`` (default 10) of live data: it must not grow beyond the ring buffers,
  which are allocated up front.

``python bench/dashboard.py [--minutes 10] [--cars 20] [--screenshot PNG]`` (the README's pit
wall picture is ``--screenshot docs/images/pitwall.png``, taken at the end of the run)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from statistics import median
from typing import Any

from common import emit, machine, percentiles
from playwright.sync_api import CDPSession, Page, sync_playwright

CHROMIUM = os.environ.get("PITWIRE_CHROMIUM") or "/usr/bin/chromium"
WINDOW_S = 30.0
WARMUP_S = 5.0


@contextlib.contextmanager
def demo(cars: int) -> Iterator[str]:
    """``pitwire demo --port 0 --cars N`` on a fresh SQLite store; yields its URL."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "pitwire", "demo", "--port", "0"),
                *("--cars", str(cars), "--db", f"sqlite:///{Path(tmp) / 'bench.db'}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if line.startswith("PITWIRE_URL="):
                    yield line.strip().split("=", 1)[1]
                    break
            else:
                raise RuntimeError("pitwire demo did not start within 60 s")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def frame_window(page: Page, seconds: float) -> tuple[list[float], list[float]]:
    """Per-frame main-thread times and rAF intervals [ms] of the next ``seconds``."""
    start = page.evaluate("() => window.__pitwire.frameCount")
    page.wait_for_timeout(seconds * 1000)
    got: dict[str, Any] = page.evaluate(
        """(start) => {
          const d = window.__pitwire, n = d.frameTimes.length, out = { times: [], gaps: [] };
          for (let k = Math.max(start, d.frameCount - n); k < d.frameCount; k++) {
            out.times.push(d.frameTimes[k % n]);
            out.gaps.push(d.frameGaps[k % n]);
          }
          return out;
        }""",
        start,
    )
    return got["times"], got["gaps"]


def heap_mb(cdp: CDPSession) -> tuple[float, float]:
    """The page's used JS heap and its ArrayBuffer backing stores [MB] (the ring buffers'
    typed arrays live there, outside the heap proper), after a full garbage collection."""
    cdp.send("HeapProfiler.collectGarbage")
    usage = cdp.send("Runtime.getHeapUsage")
    return usage["usedSize"] / 1e6, usage.get("backingStorageSize", float("nan")) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="heap run length")
    ap.add_argument("--cars", type=int, default=20)
    ap.add_argument("--screenshot", type=Path, help="save the page as PNG at the end")
    args = ap.parse_args()
    where = {"machine": machine(), "cars": args.cars, "viewport": "1280x800"}
    with demo(args.cars) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_function(f"() => window.__pitwire.mapCars === {args.cars}", timeout=60_000)
        started = time.monotonic()
        page.wait_for_timeout(WARMUP_S * 1000)

        times, gaps = frame_window(page, WINDOW_S)
        p50, p95, p99 = percentiles(times, (50, 95, 99))
        period = median(g for g in gaps if g > 0)
        dropped = sum(max(0, round(g / period) - 1) for g in gaps if g > 0)
        emit("dashboard main-thread ms per frame p50", p50, "ms", **where)
        emit("dashboard main-thread ms per frame p95", p95, "ms", target="<= 4", **where)
        emit("dashboard main-thread ms per frame p99", p99, "ms", **where)
        emit("dashboard frames drawn per s", len(times) / WINDOW_S, "fps", **where)
        emit(
            "dashboard dropped frames over 30 s",
            dropped,
            "frames",
            of=len(times) + dropped,
            refresh_ms=round(period, 2),
            **where,
        )

        cdp = page.context.new_cdp_session(page)
        page.wait_for_timeout(max(0.0, 60 - (time.monotonic() - started)) * 1000)
        first, first_buffers = heap_mb(cdp)
        samples, buffers = [first], [first_buffers]
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            page.wait_for_timeout(min(60.0, args.minutes * 60 - elapsed) * 1000)
            used, backing = heap_mb(cdp)
            samples.append(used)
            buffers.append(backing)
            print(
                f"# after {(time.monotonic() - started) / 60:.1f} min: heap {used:.2f} MB, "
                f"array buffers {backing:.2f} MB",
                file=sys.stderr,
                flush=True,
            )
        emit("dashboard JS heap after 1 min", first, "MB", array_buffers_mb=first_buffers, **where)
        emit(
            f"dashboard JS heap after {args.minutes:g} min",
            samples[-1],
            "MB",
            growth_mb=round(samples[-1] - first, 3),
            max_mb=round(max(samples), 3),
            array_buffers_mb=round(buffers[-1], 3),
            array_buffers_growth_mb=round(buffers[-1] - first_buffers, 3),
            **where,
        )
        if args.screenshot is not None:
            page.screenshot(path=args.screenshot)
        if errors:
            raise SystemExit(f"page errors during the run: {errors[:3]}")
        browser.close()


if __name__ == "__main__":
    main()
