"""Fixtures of the browser end-to-end tests: a real ``pitwire demo`` (server + simulated cars)
in a subprocess, and Playwright (pytest-playwright) driving Debian's ``/usr/bin/chromium``.

Run them as their own pytest invocation (``make test-e2e``)::

    .venv/bin/pytest -m e2e -p no:asyncio tests/e2e

Without Chromium the tests are skipped, except when ``CI=true``: there they fail, because CI
must never skip them silently. ``PITWIRE_CHROMIUM`` overrides the browser path.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
from playwright.sync_api import ConsoleMessage, Error, Page

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"  # git-ignored
DIST_INDEX = REPO / "src" / "pitwire" / "web" / "dist" / "index.html"
CHROMIUM = os.environ.get("PITWIRE_CHROMIUM") or "/usr/bin/chromium"
IN_CI = os.environ.get("CI") == "true"

START_TIMEOUT_S = 30.0  # until the demo prints PITWIRE_URL=
STOP_TIMEOUT_S = 10.0  # after SIGINT, before SIGKILL
URL_LINE = re.compile(r"^PITWIRE_URL=(\S+)$")


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Under ``-p no:asyncio`` (sync Playwright wants no asyncio plugin), declare the
    pytest-asyncio ini keys of pyproject.toml, or pytest warns "Unknown config option" and
    ``filterwarnings = error`` makes that an internal error."""
    if pluginmanager.get_plugin("asyncio") is None:
        parser.addini("asyncio_mode", "pytest-asyncio's; unused here (plugin disabled)")
        parser.addini("asyncio_default_fixture_loop_scope", "pytest-asyncio's; unused here")


def _unavailable(reason: str) -> None:
    """Skip (locally) or fail (in CI) every e2e test for want of ``reason``."""
    if IN_CI:
        reason = f"e2e prerequisite missing in CI (CI=true never skips): {reason}"
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def chromium_executable() -> str:
    """Debian's Chromium (``apt-get install chromium``), never Playwright's own browsers."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(
            f"no Chromium at {CHROMIUM} (install it with `apt-get install chromium` "
            "or `make chromium`; `playwright install` is not used)"
        )
    if not DIST_INDEX.is_file():
        _unavailable(f"dashboard not built: {DIST_INDEX} missing (run `make web`)")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser_type_launch_args(
    browser_type_launch_args: dict[str, Any], chromium_executable: str
) -> dict[str, Any]:
    """pytest-playwright's launch options (--headed, --slowmo, ...) plus our executable."""
    if "channel" in browser_type_launch_args:  # --browser-channel: the user chose a browser
        return browser_type_launch_args
    return {**browser_type_launch_args, "executable_path": chromium_executable}


@pytest.fixture(scope="session")
def base_url(pytestconfig: pytest.Config) -> str | None:
    """Same value as pytest-playwright 0.10.0's fallback ``base_url``, which is a session
    fixture defined as an instance method: pytest 9.2 deprecates that
    (PytestRemovedIn10Warning), and ``filterwarnings = error`` turns it into an error."""
    return pytestconfig.getoption("--base-url", None) or pytestconfig.getini("base_url") or None


# --- the demo process ---------------------------------------------------------------------


@dataclass
class Demo:
    """A running ``pitwire demo``: its base URL (ending in ``/``) and process."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGINT (the demo's Ctrl+C path, which also stops its agent), wait, else kill."""
        _stop(self.proc)


def _descendants(pid: int) -> list[Any]:
    """The processes ``pid`` started (its agent lives in a session of its own)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dev dependency
        return []
    with contextlib.suppress(psutil.Error):
        return list(psutil.Process(pid).children(recursive=True))
    return []


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        children = _descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            for child in children:  # orphaned by the kill: end them by pid
                with contextlib.suppress(Exception):
                    child.kill()
    with contextlib.suppress(ValueError, OSError):
        proc.communicate(timeout=STOP_TIMEOUT_S)  # reap, close the pipe


RACE = "stored-race"
"""The stored session of the shared demo (tests/e2e/storedrace.py)."""
RACE_CARS = 4
RACE_SECONDS = 200.0  # two complete laps of ~86 s after the ~92 s first lap from the grid


def store_race(db: str, cars: int = RACE_CARS, seconds: float = RACE_SECONDS) -> None:
    """Write the simulated race ``RACE`` into ``db`` (in a subprocess: no event loop here)."""
    script = Path(__file__).with_name("storedrace.py")
    subprocess.run(
        [sys.executable, str(script), db, RACE, str(cars), str(seconds)],
        check=True,
        timeout=120,
    )


@contextlib.contextmanager
def run_demo(workdir: Path, cars: int, *, race: bool = False, port: int = 0) -> Iterator[Demo]:
    """Start ``pitwire demo --port PORT`` (0: a free one) with a store in ``workdir`` (holding
    the stored race ``RACE`` first when ``race`` and it is not there yet); stop it on exit."""
    log = workdir / "demo-stderr.log"
    db = f"sqlite:///{workdir / 'pw.db'}"
    if race and not (workdir / "pw.db").exists():
        store_race(db)
    cmd = [sys.executable, "-m", "pitwire", "demo", "--port", str(port), "--cars", str(cars)]
    cmd += ["--db", db]
    # A spool folder in the environment (as docs/agent.md suggests) must not stop the demo's
    # own agent, which runs without one.
    env = {**os.environ, "PITWIRE_SPOOL_DIR": str(workdir / "agent-spool")}
    with log.open("wb") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env
        )
    try:
        url = _read_url(proc, log)
        yield Demo(url, proc, log)
    finally:
        _stop(proc)


def _read_url(proc: subprocess.Popen[bytes], log: Path) -> str:
    """Read the demo's stdout until its ``PITWIRE_URL=`` line (within START_TIMEOUT_S)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not sel.select(timeout=left):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:  # EOF: the demo is exiting
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
                break
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                if m := URL_LINE.match(line.strip()):
                    return m.group(1)
    code = proc.poll()
    if code is None:
        proc.kill()
        proc.wait()
    why = "timed out" if code is None else f"exited with {code}"
    raise RuntimeError(
        f"pitwire demo {why} before printing PITWIRE_URL= within {START_TIMEOUT_S:.0f} s\n"
        f"stdout: {buf.decode(errors='replace')!r}\n"
        f"stderr:\n{log.read_text(errors='replace')[-3000:]}"
    )


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """One demo with 6 simulated cars and the stored race ``RACE``, shared by the tests that
    only watch it."""
    with run_demo(tmp_path_factory.mktemp("pitwire-demo"), cars=6, race=True) as d:
        yield d


class DemoFactory(Protocol):
    def __call__(
        self, cars: int, *, race: bool = False, port: int = 0, workdir: str | None = None
    ) -> Demo: ...


@pytest.fixture
def demo_factory(tmp_path: Path) -> Iterator[DemoFactory]:
    """Starts private demos (for tests that stop them); all are stopped at the end."""
    with contextlib.ExitStack() as stack:
        started = itertools.count()

        def start(
            cars: int, *, race: bool = False, port: int = 0, workdir: str | None = None
        ) -> Demo:
            """A demo in a new folder, or in ``workdir`` (a name) again: same store."""
            folder = tmp_path / (workdir or f"demo-{next(started)}")
            folder.mkdir(exist_ok=True)
            return stack.enter_context(run_demo(folder, cars, race=race, port=port))

        yield start


# --- the page -----------------------------------------------------------------------------


@dataclass
class PageErrors:
    """Uncaught exceptions and ``console.error`` lines of a page."""

    errors: list[str] = field(default_factory=list)

    def console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console.error: {msg.text}")

    def pageerror(self, exc: Error) -> None:
        self.errors.append(f"uncaught: {exc.message}")


@pytest.fixture
def page_errors(page: Page) -> PageErrors:
    """Collects the page's errors; tests that expect none assert ``page_errors.errors == []``."""
    errs = PageErrors()
    page.on("console", errs.console)
    page.on("pageerror", errs.pageerror)
    return errs


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``test-artifacts/`` at the repo root (git-ignored), for screenshots."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
