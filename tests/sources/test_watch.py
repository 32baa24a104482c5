"""Tests of the folder watcher (pitwire.sources.watch): the pure WatchState with a fake clock
and real temporary folders, and the asyncio Watcher against a real server."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from pitwire import sessionfile
from pitwire.model.ids import SessionId
from pitwire.model.records import SessionInfo
from pitwire.sources.base import SourceError
from pitwire.sources.importer import ImportReport
from pitwire.sources.record import simulate
from pitwire.sources.sim import SimField
from pitwire.sources.watch import STATE_FILE, Watcher, WatchState, load_state, save_state, scan


def test_a_file_is_imported_once_it_has_settled():
    """A file is ready only after its size and mtime held for the settle time, and once."""
    state = WatchState(settle_s=2.0)
    assert state.observe({"a.pwr": (10, 1)}, now=0.0) == []
    assert state.observe({"a.pwr": (20, 2)}, now=1.5) == []  # still growing
    assert state.observe({"a.pwr": (20, 2)}, now=3.0) == []  # 1.5 s unchanged
    assert state.observe({"a.pwr": (20, 2)}, now=3.5) == ["a.pwr"]
    assert state.observe({"a.pwr": (20, 2)}, now=9.0) == []  # busy importing
    state.done("a.pwr", (20, 2))
    assert state.observe({"a.pwr": (20, 2)}, now=20.0) == []
    assert state.observe({"a.pwr": (20, 2)}, now=30.0) == []


def test_a_file_modified_after_its_import_is_imported_again_once():
    """A file that changes after it was imported is ready again once it settles anew."""
    state = WatchState(settle_s=1.0, imported={"a.pwr": (20, 2)})
    assert state.observe({"a.pwr": (20, 2)}, now=0.0) == []
    assert state.observe({"a.pwr": (30, 3)}, now=1.0) == []
    assert state.observe({"a.pwr": (30, 3)}, now=2.0) == ["a.pwr"]
    state.done("a.pwr", (30, 3))
    assert state.observe({"a.pwr": (30, 3)}, now=5.0) == []


def test_a_file_that_vanishes_while_settling_is_forgotten():
    """A file removed before it settled is not imported; back later, it settles afresh."""
    state = WatchState(settle_s=1.0)
    state.observe({"a.pwr": (1, 1)}, now=0.0)
    assert state.observe({}, now=0.5) == []
    assert state.observe({"a.pwr": (1, 1)}, now=1.2) == []
    assert state.observe({"a.pwr": (1, 1)}, now=2.2) == ["a.pwr"]


def test_a_file_that_failed_is_tried_again_only_when_it_changes():
    """A file the importer refused waits for a change; one that failed for the server's
    sake is tried again after the retry time."""
    state = WatchState(settle_s=0.0)
    assert state.observe({"bad.pwr": (5, 1), "b.pwr": (7, 1)}, now=0.0) == ["b.pwr", "bad.pwr"]
    state.failed("bad.pwr", (5, 1))
    state.retry("b.pwr", at=10.0)
    assert state.observe({"bad.pwr": (5, 1), "b.pwr": (7, 1)}, now=5.0) == []
    assert state.observe({"bad.pwr": (5, 1), "b.pwr": (7, 1)}, now=10.0) == ["b.pwr"]
    assert state.observe({"bad.pwr": (6, 2)}, now=11.0) == ["bad.pwr"]


def test_burst_of_files_written_at_once_each_imported_once_and_whole(tmp_path):
    """Forty files appearing and being written in bursts on a real folder, scanned every
    0.5 s of a fake clock: each is imported exactly once, with its final content."""
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    rng = random.Random(seed)
    settle = 2.0
    final: dict[str, bytes] = {}
    plan: dict[float, list[tuple[str, bytes]]] = {}
    for i in range(40):
        name = f"sub/s{i:02d}.pwr" if i % 4 == 0 else f"s{i:02d}.pwr"
        t = rng.choice([0.0, 0.5, 1.0, 3.0])  # bursts: many files start at the same moment
        content = b""
        for _ in range(rng.randint(1, 6)):
            piece = rng.randbytes(rng.randint(1, 300))
            plan.setdefault(t, []).append((name, piece))
            content += piece
            t += rng.choice([0.5, 1.0, 1.5])  # pauses shorter than the settle time
        final[name] = content
    (tmp_path / "sub").mkdir()
    state = WatchState(settle_s=settle)
    imported: dict[str, list[bytes]] = {}
    now = 0.0
    while now < 30.0:
        for name, piece in plan.get(now, []):
            with open(tmp_path / name, "ab") as f:
                f.write(piece)
        listing = scan(tmp_path, "*.pwr", recursive=True)
        for name in state.observe(listing, now):
            imported.setdefault(name, []).append((tmp_path / name).read_bytes())
            state.done(name, listing[name])
        now += 0.5
    assert sorted(imported) == sorted(final)
    for name, copies in imported.items():
        assert copies == [final[name]], name


def test_scan_lists_matching_files_and_skips_hidden_ones(tmp_path):
    """scan finds files matching the pattern (sub-folders only when recursive) and never
    the state file or other hidden entries."""
    (tmp_path / "a.pwr").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    (tmp_path / STATE_FILE).write_text("{}")
    (tmp_path / ".hidden.pwr").write_bytes(b"x")
    (tmp_path / "deep" / "deeper").mkdir(parents=True)
    (tmp_path / "deep" / "deeper" / "b.pwr").write_bytes(b"yy")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "c.pwr").write_bytes(b"x")
    assert list(scan(tmp_path)) == ["a.pwr"]
    found = scan(tmp_path, recursive=True)
    assert sorted(found) == ["a.pwr", "deep/deeper/b.pwr"]
    assert found["deep/deeper/b.pwr"][0] == 2
    assert list(scan(tmp_path, "*.txt")) == ["notes.txt"]


def test_the_state_file_survives_a_restart(tmp_path, caplog):
    """What was saved loads back; a damaged state file is ignored with a warning."""
    save_state(tmp_path, {"a.pwr": (10, 123), "sub/b.pwr": (5, 6)})
    assert load_state(tmp_path) == {"a.pwr": (10, 123), "sub/b.pwr": (5, 6)}
    data = json.loads((tmp_path / STATE_FILE).read_text())
    assert data["version"] == 1
    (tmp_path / STATE_FILE).write_text("{not json")
    assert load_state(tmp_path) == {}
    assert "unreadable" in caplog.text
    assert load_state(tmp_path / "elsewhere") == {}


async def test_watcher_never_imports_a_file_twice_across_restarts(tmp_path):
    """The asyncio watcher imports what settled, remembers it in the state file, and a new
    watcher on the same folder imports nothing again; a garbage file is reported, not
    retried."""
    (tmp_path / "a.pwr").write_bytes(b"a" * 10)
    (tmp_path / "b.pwr").write_bytes(b"b" * 20)
    calls: list[str] = []

    async def importer(path):  # type: ignore[no-untyped-def]
        calls.append(path.name)
        if path.name == "b.pwr":
            raise SourceError(f"{path} is not a pitwire session file (.pwr)")
        return ImportReport(path=path, session="s")

    async def run_once() -> Watcher:
        w = Watcher(tmp_path, importer=importer, settle_s=0.1, poll_s=0.02)
        task = asyncio.create_task(w.run())
        await asyncio.sleep(0.5)
        w.stop()
        await task
        return w

    first = await run_once()
    assert (sorted(calls), first.imports, first.failures) == (["a.pwr", "b.pwr"], 1, 1)
    assert load_state(tmp_path) == {"a.pwr": (10, (tmp_path / "a.pwr").stat().st_mtime_ns)}
    calls.clear()
    second = await run_once()
    assert calls == ["b.pwr"] and second.imports == 0  # the garbage is looked at again


def test_a_watcher_needs_a_folder(tmp_path):
    """Watching something that is not a folder raises SourceError."""
    with pytest.raises(SourceError, match="is not a folder"):
        Watcher(tmp_path / "nope", server="ws://127.0.0.1:9")


async def test_watching_a_recording_in_progress_stores_it_whole_and_once(tmp_path, server):
    """A session file imported while being written (no index) and again when finished ends
    up on a real server whole; a second, closed file is imported beside it."""
    simulate(tmp_path / "done.pwr", cars=2, seconds=1.0, session="done")
    field = SimField(cars=2, seed=3, start_ns=1_700_000_000_000_000_000)
    info = SessionInfo(session_id="growing", track="sim-ring", source="sim")
    writer = sessionfile.create(
        tmp_path / "growing.pwr", info, streams=field.streams, flush_interval=3600
    )

    def write(ticks: int) -> None:
        for _ in range(ticks):
            for stream, batch in field.step():
                writer.write(stream, batch)
        writer.flush()

    imports: list[tuple[str, int]] = []
    arrived = asyncio.Event()

    def on_import(name: str, report: ImportReport) -> None:
        imports.append((name, report.frames_acked))
        arrived.set()

    async def imported(n: int) -> None:
        async with asyncio.timeout(20):
            while len(imports) < n:
                arrived.clear()
                await arrived.wait()

    watcher = Watcher(tmp_path, server=server.ws, settle_s=0.3, poll_s=0.05, on_import=on_import)
    task = asyncio.create_task(watcher.run())
    write(60)
    await imported(2)
    write(30)
    writer.close()
    await imported(3)
    await asyncio.sleep(1.0)  # nothing more comes
    watcher.stop()
    await task
    assert sorted(imports) == [("done.pwr", 120), ("growing.pwr", 60), ("growing.pwr", 120)]
    summary = await server.store.get_session(SessionId("growing"))
    assert {s.info.stream_id: (s.frames, s.last_seq) for s in summary.streams} == {
        "car-1": (90, 89),
        "car-2": (90, 89),
    }


async def test_a_server_that_answers_a_web_page_is_logged_and_retried(
    tmp_path, web_page_server, caplog
):
    """A server answering something that is not JSON does not end the watch: the import is
    logged as failed and tried again after retry_s."""
    simulate(tmp_path / "a.pwr", cars=1, seconds=0.5)
    w = Watcher(tmp_path, server=web_page_server, settle_s=0.0, poll_s=0.02, retry_s=0.2)
    task = asyncio.create_task(w.run())
    await asyncio.sleep(1.0)
    assert not task.done()
    w.stop()
    await task
    assert w.imports == 0 and w.failures >= 2  # tried again
    assert "not a pitwire session" in caplog.text and "trying again" in caplog.text
    assert load_state(tmp_path) == {}


async def test_an_importer_that_raises_anything_does_not_end_the_watch(tmp_path, caplog):
    """An unexpected exception from an import is logged with its traceback and retried."""
    (tmp_path / "a.pwr").write_bytes(b"a")
    calls: list[str] = []

    async def importer(path):  # type: ignore[no-untyped-def]
        calls.append(path.name)
        raise RuntimeError("surprise")

    w = Watcher(tmp_path, importer=importer, settle_s=0.0, poll_s=0.02, retry_s=0.1)
    task = asyncio.create_task(w.run())
    await asyncio.sleep(0.5)
    assert not task.done()
    w.stop()
    await task
    assert len(calls) >= 2 and w.failures == len(calls)
    assert "surprise" in caplog.text


async def test_a_state_file_that_cannot_be_saved_does_not_end_the_watch(tmp_path, caplog):
    """An OSError saving the state file is logged; the watch goes on importing, and what
    was imported is still not imported again while it runs."""
    (tmp_path / STATE_FILE).mkdir()  # the state file's name is taken by a folder
    (tmp_path / "a.pwr").write_bytes(b"a" * 10)
    calls: list[str] = []

    async def importer(path):  # type: ignore[no-untyped-def]
        calls.append(path.name)
        return ImportReport(path=path, session="s")

    imported: list[str] = []
    w = Watcher(
        tmp_path,
        importer=importer,
        settle_s=0.05,
        poll_s=0.02,
        on_import=lambda name, report: imported.append(name),
    )
    task = asyncio.create_task(w.run())
    await asyncio.sleep(0.3)
    (tmp_path / "b.pwr").write_bytes(b"b" * 10)
    await asyncio.sleep(0.3)
    assert not task.done()
    w.stop()
    await task
    assert calls == imported == ["a.pwr", "b.pwr"] and w.imports == 2 and w.failures == 0
    assert "cannot save what was imported" in caplog.text
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [STATE_FILE]


async def test_a_file_still_being_written_is_logged_as_such_not_as_damage(tmp_path, server, caplog):
    """A file whose writer is still open (no index, no damage) is imported with an INFO
    line saying it is still being written and what is there was imported; nothing at
    WARNING or above."""
    import logging

    caplog.set_level(logging.INFO)
    writer = simulate(tmp_path / "live.pwr", cars=2, seconds=1.0, session="live", close=False)
    reports: list[ImportReport] = []
    arrived = asyncio.Event()

    def on_import(name: str, report: ImportReport) -> None:
        reports.append(report)
        arrived.set()

    w = Watcher(tmp_path, server=server.ws, settle_s=0.05, poll_s=0.02, on_import=on_import)
    task = asyncio.create_task(w.run())
    try:
        await asyncio.wait_for(arrived.wait(), 20)
    finally:
        w.stop()
        await task
        writer.close()
    [report] = reports
    assert report.index_rebuilt and not report.problems and report.frames_acked == 120
    mine = [r for r in caplog.records if r.name == "pitwire.watch"]
    assert any(
        r.levelno == logging.INFO
        and "still being written" in r.getMessage()
        and "imported what is there" in r.getMessage()
        for r in mine
    ), [r.getMessage() for r in mine]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
