"""Tests of ``pitwire import fastf1`` and ``pitwire f1-replay`` (pitwire.cli.f1), offline:
the FastF1 loader is replaced by one returning the FastF1-shaped fake of tests/f1shapes.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner
from websockets.asyncio.client import connect

import f1shapes
from pitwire.cli import app
from pitwire.model.ids import SessionId
from pitwire.sources import fastf1 as f1
from pitwire.store import open_store

runner = CliRunner()
SID = SessionId("f1-2024-monza-r")


def run(*args: str) -> tuple[int, str]:
    """Exit code and all output, whitespace normalised (rich wraps long lines)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def fake_loader(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """``pitwire.cli.f1.load`` returns the fake race; yields the calls it got."""
    calls: list[tuple] = []

    def load(year, event, session, cache):  # type: ignore[no-untyped-def]
        calls.append((year, event, session, cache))
        return f1shapes.FakeSession()

    monkeypatch.setattr("pitwire.cli.f1.load", load)
    return calls


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'f1.db'}"


async def stored(url: str):  # type: ignore[no-untyped-def]
    store = open_store(url, create=False)
    await store.open()
    try:
        summary = await store.get_session(SID)
        ver = await store.read_frames(session_id=SID, stream_id="VER")
    finally:
        await store.close()
    return summary, ver


def import_args(url: str, *extra: str) -> list[str]:
    return ["import", "fastf1", "--year", "2024", "--event", "Monza", "--session", "R",
            "--db", url, *extra]  # fmt: skip


def test_import_fastf1_stores_the_session(tmp_path: Path, fake_loader: list[tuple]) -> None:
    """import fastf1 stores every driver's stream, the track stream and the laps."""
    url = db_url(tmp_path)
    code, text = run(*import_args(url, "--cache", str(tmp_path / "cache")))
    assert code == 0, text
    assert fake_loader == [(2024, "Monza", "R", tmp_path / "cache")]
    assert "f1-2024-monza-r" in text and "3 drivers" in text and "9 laps" in text
    summary, ver = asyncio.run(stored(url))
    expected = f1.convert(f1shapes.FakeSession())
    assert summary.info == expected.info
    assert [s.info.stream_id for s in summary.streams] == ["HAM", "LEC", "VER", "track"]
    assert summary.frames == expected.frames
    colours = {s.info.stream_id: s.info.colour for s in summary.streams}
    assert colours["VER"] == "#3671c6"
    assert sorted(summary.laps, key=lambda x: (x.stream_id, x.lap)) == sorted(
        expected.laps, key=lambda x: (x.stream_id, x.lap)
    )
    converted_ver = next(b for i, b in expected.streams if i.stream_id == "VER")
    assert ver.t_ns.tolist() == converted_ver.t_ns.tolist()


def test_import_again_does_not_duplicate(tmp_path: Path, fake_loader: list[tuple]) -> None:
    """A second import of the same event stores no frame twice and keeps the laps."""
    url = db_url(tmp_path)
    assert run(*import_args(url))[0] == 0
    first, _ = asyncio.run(stored(url))
    code, text = run(*import_args(url))
    assert code == 0, text
    assert "0 frames stored" in text and "already there" in text
    again, _ = asyncio.run(stored(url))
    assert again.frames == first.frames
    assert len(again.laps) == len(first.laps)


def test_import_with_own_session_id(tmp_path: Path, fake_loader: list[tuple]) -> None:
    """--id names the stored session; a round number is passed to FastF1 as an int."""
    url = db_url(tmp_path)
    code, text = run(*import_args(url, "--id", "monza-24"))
    assert code == 0, text
    code, text = run("import", "fastf1", "--year", "2024", "--event", "16", "--session", "R",
                     "--db", url, "--id", "round-16")  # fmt: skip
    assert code == 0, text
    assert fake_loader[-1][1] == 16


def test_missing_fastf1_exits_2_with_the_extra(tmp_path: Path, monkeypatch) -> None:
    """Without fastf1 installed the import says which extra to install and exits 2."""
    monkeypatch.setitem(sys.modules, "fastf1", None)  # import fastf1 → ImportError
    code, text = run(*import_args(db_url(tmp_path)))
    assert code == 2
    assert "historical F1 needs the f1 extra: pip install 'pitwire[f1]'" in text
    assert "loading" not in text  # said before anything is attempted


def test_load_failure_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A FastF1 load error (e.g. no network) is one clear message and exit 1."""

    def load(*args):  # type: ignore[no-untyped-def]
        raise f1.F1LoadError("cannot load F1 2024 'Monza' 'R': ConnectionError: offline")

    monkeypatch.setattr("pitwire.cli.f1.load", load)
    code, text = run(*import_args(db_url(tmp_path)))
    assert code == 1
    assert "ConnectionError: offline" in text and "Traceback" not in text


def test_import_needs_year_event_session(tmp_path: Path, fake_loader: list[tuple]) -> None:
    """import fastf1 without --year is a usage error (exit 2)."""
    code, text = run("import", "fastf1", "--event", "Monza", "--session", "R")
    assert code == 2
    assert "--year, --event and --session" in text
    assert fake_loader == []


def test_f1_replay_needs_db_and_id() -> None:
    """f1-replay with --db but no --id is a usage error."""
    code, text = run("f1-replay", "--db", "sqlite:///nowhere.db")
    assert code == 2
    assert "both --db and --id" in text


def test_f1_replay_refuses_a_store_and_fastf1_at_once() -> None:
    """f1-replay with --db/--id and --year is a usage error naming both ways."""
    code, text = run("f1-replay", "--db", "sqlite:///x.db", "--id", "s", "--year", "2024")
    assert code == 2
    assert "either --db and --id" in text


def test_f1_replay_unknown_stored_session_exits_1(tmp_path: Path, fake_loader) -> None:
    """f1-replay of a session the store does not have says so and exits 1."""
    url = db_url(tmp_path)
    assert run(*import_args(url))[0] == 0
    code, text = run("f1-replay", "--db", url, "--id", "nope", "--port", "0")
    assert code == 1
    assert "nope" in text


async def _first_message(url: str) -> dict:
    async with connect(url) as ws:
        return json.loads(await asyncio.wait_for(ws.recv(), 5))


def test_f1_replay_from_a_store_in_a_process(tmp_path: Path, fake_loader) -> None:
    """pitwire f1-replay --db --id --port 0 prints its ws:// URL, serves JSON, and exits 0
    with one line on SIGINT."""
    url = db_url(tmp_path)
    assert run(*import_args(url))[0] == 0
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pitwire",
            "f1-replay",
            "--db",
            url,
            "--id",
            SID,
            "--port",
            "0",
            "--hz",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on ws://127.0.0.1:"), line
        message = asyncio.run(_first_message(line.split()[-1]))
        assert set(message["drivers"]) == {"VER", "LEC", "HAM"}
        assert message["drivers"]["VER"]["number"] == "1"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.strip() == "f1-replay stopped."
