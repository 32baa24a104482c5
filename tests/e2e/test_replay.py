"""Browser tests of the replay view: the pit wall driven by the server's replay clock over the
stored race of the shared demo (``conftest.RACE``), its transport controls, keyboard
shortcuts and deep links.

What the page shows is read from ``window.__pitwire`` (frontend/src/debug.ts): ``tickLog``
holds the newest replay ticks drawn as ``[epoch, t]`` pairs, so a test can tell that nothing
of the old position is drawn after a seek.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Page, expect

if TYPE_CHECKING:  # fixture types (conftest.py is not imported by tests)
    from e2e.conftest import Demo, DemoFactory, PageErrors

pytestmark = pytest.mark.e2e
RACE = "stored-race"  # conftest.RACE


def debug(page: Page) -> dict[str, Any]:
    values: dict[str, Any] = page.evaluate(
        "() => { const d = { ...window.__pitwire }; delete d.frameTimes; delete d.frameGaps;"
        " return d; }"
    )
    return values


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def race_detail(demo: Demo) -> dict[str, Any]:
    detail: dict[str, Any] = get_json(f"{demo.url}api/sessions/{RACE}")
    return detail


def stored_speed(demo: Demo, t0_ns: int, t: float, stream: str = "car-1") -> float:
    """car ``stream``'s stored speed at its last frame at or before ``t`` [s since epoch]."""
    at = t - t0_ns / 1e9
    body = get_json(
        f"{demo.url}api/sessions/{RACE}/frames?from={max(0.0, at - 0.5):.6f}"
        f"&to={at + 1e-6:.6f}&streams={stream}&channels=speed"
    )
    speeds: list[float] = body["streams"][0]["channels"]["speed"]
    return speeds[-1]


def wait_epoch_after(page: Page, epoch: int) -> list[list[float]]:
    """Wait until a tick of an epoch newer than ``epoch`` is drawn; the tick log from there."""
    page.wait_for_function(f"() => window.__pitwire.replayEpoch > {epoch}", timeout=10_000)
    page.wait_for_timeout(400)  # a few more ticks
    log: list[list[float]] = debug(page)["tickLog"]
    newest = max(e for e, _ in log)
    first = next(i for i, (e, _) in enumerate(log) if e == newest)
    return log[first:]


def test_replay_plays_pauses_and_seeks_without_stale_frames(
    page: Page, demo: Demo, page_errors: PageErrors, artifacts: Path
) -> None:
    """A replay opened at ?t= plays; pausing stops the clock; a click on the seek bar jumps the
    view there — every tick drawn after the jump is of the new epoch at the new time, and the
    gauges show the stored value at that instant — and a keyboard seek back while playing
    does the same."""
    detail = race_detail(demo)
    t0_ns, t1_ns = detail["time_range"]["t0_ns"], detail["time_range"]["t1_ns"]
    start, end = t0_ns / 1e9, t1_ns / 1e9
    page.goto(f"{demo.url}sessions/{RACE}/replay?t=20")
    expect(page.get_by_test_id("replay-state")).to_have_text(re.compile("playing"), timeout=15_000)
    page.wait_for_function("() => window.__pitwire.replayTicks > 20", timeout=10_000)
    first_t = debug(page)["tickLog"][0][1]
    assert abs(first_t - (start + 20)) < 0.5, "the replay did not open at ?t=20"

    page.keyboard.press("k")
    expect(page.get_by_test_id("replay-state")).to_have_text("paused")
    paused_at = debug(page)["replayT"]
    page.wait_for_timeout(600)
    assert debug(page)["replayT"] == paused_at, "the clock moved while paused"

    # Seek by clicking the seek bar at 75 %.
    epoch, fills = debug(page)["replayEpoch"], debug(page)["historyFills"]
    bar = page.get_by_test_id("replay-seekbar").bounding_box()
    assert bar is not None
    page.mouse.click(bar["x"] + 0.75 * bar["width"], bar["y"] + bar["height"] / 2)
    ticks = wait_epoch_after(page, epoch)
    target = ticks[0][1]
    assert abs(target - (start + 0.75 * (end - start))) < 0.01 * (end - start) + 0.5
    assert all(e == ticks[0][0] and t == target for e, t in ticks), ticks  # paused: one instant
    want = round(stored_speed(demo, t0_ns, target))
    expect(page.get_by_test_id("speed-value")).to_have_text(str(want))
    # The URL follows the clock: a reload opens here.
    page.wait_for_function(
        f"() => Math.abs(Number(new URL(location.href).searchParams.get('t')) - {target - start})"
        " < 0.2"
    )
    # The focused car's last 30 s before the jump are fetched for the charts, which then show
    # where the car came from (speed-coloured pixels), not one lone sample.
    page.wait_for_function(f"() => window.__pitwire.historyFills > {fills}", timeout=10_000)
    page.wait_for_function(
        """() => {
          const c = document.querySelector('[data-testid=charts] [data-channel=speed] canvas');
          const { data } = c.getContext("2d").getImageData(0, 0, c.width, c.height);
          let hits = 0;
          for (let i = 0; i < data.length; i += 4)
            if (Math.abs(data[i] - 0x38) + Math.abs(data[i + 1] - 0xbd)
                + Math.abs(data[i + 2] - 0xf8) < 40) hits++;
          return hits > 200;
        }""",
        timeout=5_000,
    )
    page.screenshot(path=artifacts / "dashboard-replay.png")

    # Play, then seek back with the keyboard ("2" = 20 % of the session) while playing.
    page.keyboard.press("k")
    expect(page.get_by_test_id("replay-state")).to_have_text(re.compile("playing"))
    page.wait_for_timeout(500)
    epoch = debug(page)["replayEpoch"]
    page.keyboard.press("2")
    ticks = wait_epoch_after(page, epoch)
    back = ticks[0][1]
    assert abs(back - (start + 0.2 * (end - start))) < 0.5
    times = [t for _, t in ticks]
    assert {e for e, _ in ticks} == {ticks[0][0]}, "a tick of the old position was drawn"
    assert times == sorted(times) and times[-1] > back, "the replay did not play on from there"
    assert times[-1] < back + 5, "ticks from far ahead (the old position) after the seek"
    assert page_errors.errors == []


def test_replay_controls_step_speed_and_lap_markers(
    page: Page, demo: Demo, page_errors: PageErrors
) -> None:
    """Opened paused (?paused=1), the step buttons move the clock by one second each way, the
    speed selector changes the speed the server reports, and a lap marker seeks to that lap's
    start for the focused car."""
    detail = race_detail(demo)
    start = detail["time_range"]["t0_ns"] / 1e9
    page.goto(f"{demo.url}sessions/{RACE}/replay?t=50&paused=1")
    expect(page.get_by_test_id("replay-state")).to_have_text("paused", timeout=15_000)
    page.wait_for_function("() => window.__pitwire.replayTicks > 0", timeout=10_000)
    at = debug(page)["replayT"]
    assert abs(at - (start + 50)) < 0.05

    epoch = debug(page)["replayEpoch"]
    page.get_by_test_id("replay-step-forward").click()
    ticks = wait_epoch_after(page, epoch)
    assert abs(ticks[-1][1] - (at + 1)) < 1e-3
    epoch = debug(page)["replayEpoch"]
    page.get_by_test_id("replay-step-back").click()
    ticks = wait_epoch_after(page, epoch)
    assert abs(ticks[-1][1] - at) < 1e-3

    page.get_by_test_id("replay-speed").select_option("4")
    expect(page.get_by_test_id("replay-speed")).to_have_value("4")
    page.wait_for_function(
        "() => new URL(location.href).searchParams.get('speed') === '4'", timeout=5_000
    )

    car1_laps = sorted(
        (lap for lap in detail["laps"] if lap["stream_id"] == "car-1"), key=lambda lap: lap["lap"]
    )
    lap1 = next(lap for lap in car1_laps if lap["lap"] == 1)
    epoch = debug(page)["replayEpoch"]
    page.locator(".lap-marker[data-lap='1']").click()
    ticks = wait_epoch_after(page, epoch)
    assert abs(ticks[0][1] - lap1["t0_ns"] / 1e9) < 0.05, (ticks[0], lap1)
    assert page_errors.errors == []


def test_replay_deep_link_reload_and_bad_session(page: Page, demo: Demo) -> None:
    """A replay URL reloads into the same view and position; an unknown session says so."""
    page.goto(f"{demo.url}sessions/{RACE}/replay?t=120&paused=1")
    expect(page.get_by_test_id("replay-state")).to_have_text("paused", timeout=15_000)
    page.reload()
    expect(page.get_by_test_id("replay-state")).to_have_text("paused", timeout=15_000)
    expect(page.get_by_test_id("replay-time")).to_have_text(re.compile(r"^2:00\.0 / "))
    page.goto(f"{demo.url}sessions/no-such-session/replay")
    expect(page.get_by_test_id("replay-loading")).to_contain_text("no session 'no-such-session'")


def test_a_replay_reconnects_where_it_was_after_the_server_restarts(
    page: Page, demo_factory: DemoFactory
) -> None:
    """The server goes away and comes back on the same port and store: the socket worker
    reconnects with backoff and reopens the replay at its clock's position, paused as it was."""
    own = demo_factory(1, race=True, workdir="restart")
    port = int(own.url.rstrip("/").rsplit(":", 1)[1])
    page.goto(f"{own.url}sessions/{RACE}/replay?t=60&paused=1")
    expect(page.get_by_test_id("replay-state")).to_have_text("paused", timeout=15_000)
    page.wait_for_function("() => window.__pitwire.replayTicks > 0", timeout=10_000)
    epoch = debug(page)["replayEpoch"]
    page.get_by_test_id("replay-step-forward").click()  # a newer epoch than a new replay's
    wait_epoch_after(page, epoch)
    seen = debug(page)
    at, ticks, clocks = seen["replayT"], seen["replayTicks"], seen["clocks"]

    own.stop()
    expect(page.get_by_test_id("connection")).to_have_text("disconnected", timeout=10_000)
    # A control while disconnected says why nothing happens.
    page.get_by_test_id("replay-play").click()
    expect(page.get_by_test_id("notice")).to_contain_text("not connected to the server")
    again = demo_factory(1, race=True, port=port, workdir="restart")
    assert again.url == own.url
    expect(page.get_by_test_id("connection")).to_have_text("connected", timeout=20_000)
    # A new clock and new ticks: the reopened replay is drawn, at the same instant.
    page.wait_for_function(
        f"() => window.__pitwire.clocks > {clocks} && window.__pitwire.replayTicks > {ticks}",
        timeout=10_000,
    )
    expect(page.get_by_test_id("replay-state")).to_have_text("paused")
    assert abs(debug(page)["replayT"] - at) < 0.05


def lap_time_text(s: float) -> str:
    """As the dashboard shows a lap time: m:ss.fff."""
    m, rest = divmod(round(s * 1000), 60_000)
    return f"{m}:{rest / 1000:06.3f}" if m else f"{rest / 1000:.3f}"


def test_the_timing_tower_agrees_with_the_stored_laps(page: Page, demo: Demo) -> None:
    """Paused at 150 s into the stored race, every car's last and best lap in the tower are
    those of the laps table finished by then, the leader's gap says so, and the gaps grow
    down the order."""
    detail = race_detail(demo)
    start = detail["time_range"]["t0_ns"] / 1e9
    at = start + 150
    page.goto(f"{demo.url}sessions/{RACE}/replay?t=150&paused=1")
    rows = page.get_by_test_id("tower-row")
    expect(rows).to_have_count(len(detail["streams"]), timeout=15_000)
    page.wait_for_function("() => window.__pitwire.replayTicks > 0", timeout=10_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=tower-row]')]"
        ".every((r) => r.dataset.place)",
        timeout=5_000,
    )
    page.wait_for_timeout(600)  # a few more refreshes (5 Hz) with every car seen
    cells: list[dict[str, str]] = rows.evaluate_all(
        """(rs) => rs.map((r) => ({
             car: r.dataset.car, place: r.dataset.place,
             ...Object.fromEntries([...r.querySelectorAll("[data-cell]")]
                .map((c) => [c.dataset.cell, c.textContent.trim()])) }))"""
    )
    by_place = sorted(cells, key=lambda c: int(c["place"]))
    assert [int(c["place"]) for c in by_place] == list(range(1, len(cells) + 1))
    for c in cells:
        done = [
            lap
            for lap in detail["laps"]
            if lap["stream_id"] == c["car"] and lap["lap_time"] and lap["t1_ns"] / 1e9 <= at
        ]
        last = max(done, key=lambda lap: lap["t1_ns"])
        assert c["last"] == lap_time_text(last["lap_time"]), c
        assert c["best"] == lap_time_text(min(lap["lap_time"] for lap in done)), c
    assert by_place[0]["gap"].lower() == "leader"
    gaps = [float(c["gap"].lstrip("+")) for c in by_place[1:]]
    assert gaps == sorted(gaps) and gaps[0] > 0, by_place
