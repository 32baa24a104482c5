"""Browser tests of the sessions list, a session's page (laps table) and the lap comparison,
over the stored race of the shared demo (``conftest.RACE``: 4 simulated cars, 200 s, so each
car has an out lap from the grid and one or two complete laps)."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Page, expect

if TYPE_CHECKING:  # fixture types (conftest.py is not imported by tests)
    from e2e.conftest import Demo, PageErrors

pytestmark = pytest.mark.e2e
RACE = "stored-race"  # conftest.RACE


def race_detail(demo: Demo) -> dict[str, Any]:
    with urllib.request.urlopen(f"{demo.url}api/sessions/{RACE}", timeout=10) as r:
        detail: dict[str, Any] = json.load(r)
    return detail


def timed_laps(detail: dict[str, Any]) -> list[dict[str, Any]]:
    return [lap for lap in detail["laps"] if lap["lap_time"]]


def map_colours(page: Page) -> tuple[int, int]:
    """Red-ish (time lost) and green-ish (time gained) pixels of the delta map."""
    got: dict[str, int] = page.evaluate(
        """() => {
          const c = document.querySelector('canvas[aria-label="delta map"]');
          const { data } = c.getContext("2d").getImageData(0, 0, c.width, c.height);
          let red = 0, green = 0;
          for (let i = 0; i < data.length; i += 4) {
            if (data[i + 3] === 0) continue;
            if (data[i] > 150 && data[i + 1] < 110) red++;
            if (data[i + 1] > 150 && data[i] < 110) green++;
          }
          return { red, green };
        }"""
    )
    return got["red"], got["green"]


def test_sessions_list_links_to_the_session_page(
    page: Page, demo: Demo, page_errors: PageErrors, artifacts: Path
) -> None:
    """/sessions lists the live demo and the stored race with its cars, duration and
    completeness; the race's link opens its page, whose laps table marks the fastest lap."""
    page.goto(f"{demo.url}sessions")
    rows = page.get_by_test_id("session-row")
    expect(rows.first).to_be_visible(timeout=10_000)
    race = page.locator(f"[data-testid=session-row][data-session='{RACE}']")
    expect(race).to_contain_text("sim-ring")
    expect(race.locator("[data-cell=duration]")).to_have_text("0:03:20")  # 200 s
    expect(race.locator("[data-cell=completeness]")).to_have_text("100 %")
    live = page.locator("[data-testid=session-row]", has_text="demo-")
    # The list refreshes itself: the demo's live session shows up once its first frames are in.
    expect(live.first).to_contain_text(re.compile("live", re.IGNORECASE), timeout=20_000)
    page.screenshot(path=artifacts / "dashboard-sessions.png")

    race.get_by_role("link", name=RACE, exact=True).click()
    expect(page).to_have_url(re.compile(f"/sessions/{RACE}$"))
    detail = race_detail(demo)
    laps = page.get_by_test_id("lap-row")
    expect(laps).to_have_count(len(detail["laps"]))
    fastest = min(timed_laps(detail), key=lambda lap: lap["lap_time"])
    row = page.locator(
        f"[data-testid=lap-row][data-stream='{fastest['stream_id']}'][data-lap='{fastest['lap']}']"
    )
    expect(row).to_have_class(re.compile(r"\bfastest\b"))
    expect(page.locator("[data-testid=laps-table] .fastest")).to_have_count(1)
    page.screenshot(path=artifacts / "dashboard-session.png", full_page=True)

    # Deep link: a reload shows the same page.
    page.reload()
    expect(page.get_by_test_id("lap-row")).to_have_count(len(detail["laps"]))
    assert page_errors.errors == []


def test_two_laps_compare_with_a_delta(
    page: Page, demo: Demo, page_errors: PageErrors, artifacts: Path
) -> None:
    """Picking two laps of different cars on the session page and pressing Compare shows both
    laps' traces against distance, a delta trace and the track map coloured by the delta."""
    detail = race_detail(demo)
    car1, car2 = (
        next(lap for lap in timed_laps(detail) if lap["stream_id"] == s and lap["lap"] == 1)
        for s in ("car-1", "car-2")
    )
    page.goto(f"{demo.url}sessions/{RACE}")
    for lap in (car1, car2):
        page.locator(
            f"[data-testid=lap-row][data-stream='{lap['stream_id']}'][data-lap='1'] "
            "[data-testid=lap-pick]"
        ).check()
    page.get_by_test_id("compare-button").click()
    expect(page).to_have_url(re.compile(r"/compare\?laps="))
    expect(page.get_by_test_id("compare-lap")).to_have_count(2, timeout=15_000)
    page.wait_for_function(
        "() => window.__pitwire.compareLaps === 2 && window.__pitwire.compareDeltaPoints > 500",
        timeout=15_000,
    )
    expect(page.get_by_test_id("delta-chart")).to_be_visible()
    for channel in ("speed", "throttle", "brake", "gear", "steer"):
        chart = page.locator(f"[data-testid=compare-view] [data-channel={channel}]")
        expect(chart).to_have_count(1)
    page.screenshot(path=artifacts / "dashboard-compare.png", full_page=True)
    # car-2's lap is slower overall than the reference (car-1's): the map shows mostly loss;
    # with car-2's lap as the reference, car-1's shows mostly gain.
    slower = car2["lap_time"] > car1["lap_time"]
    red, green = map_colours(page)
    assert (red > green) == slower and max(red, green) > 100, (red, green)
    page.get_by_test_id("compare-lap").nth(1).get_by_role("radio").check()
    expect(page.get_by_test_id("compare-lap").nth(1)).to_have_attribute("data-reference", "true")
    page.wait_for_timeout(300)
    red, green = map_colours(page)
    assert (green > red) == slower and max(red, green) > 100, (red, green)

    # The comparison is a deep link too.
    page.reload()
    expect(page.get_by_test_id("compare-lap")).to_have_count(2, timeout=15_000)
    assert page_errors.errors == []


def test_bad_links_say_what_is_wrong(page: Page, demo: Demo) -> None:
    """An unknown session and an unknown lap each say so; a path that is no view is a 404
    that shows the dashboard's "no page" with links to the views."""
    page.goto(f"{demo.url}sessions/no-such-session")
    expect(page.locator("main")).to_contain_text("no-such-session", timeout=10_000)
    page.goto(f"{demo.url}compare?laps={RACE}~car-1~99")
    expect(page.get_by_test_id("compare-view")).to_contain_text("99", timeout=10_000)
    response = page.goto(f"{demo.url}sessions/{RACE}/laps")
    assert response is not None and response.status == 404
    expect(page.get_by_test_id("not-found")).to_contain_text(f"/sessions/{RACE}/laps")
