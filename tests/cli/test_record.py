"""Tests of ``pitwire record`` (pitwire.cli.record)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pitwire.cli import app
from support import nan_lap_file, sim_file

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    """Exit code and all output, whitespace normalised (rich wraps long lines)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_record_a_second_of_sim_gives_a_readable_file(tmp_path):
    """record --source sim --duration 1 writes a closed session file with 60 frames per car."""
    from pitwire import sessionfile

    out = tmp_path / "run.pwr"
    code, text = run(
        "record", "--source", "sim", "--cars", "3", "--duration", "1", "--out", str(out),
        "--session", "one-second",
    )  # fmt: skip
    assert code == 0, text
    assert "180 frames written" in text
    with sessionfile.open(out) as reader:
        assert reader.info.session_id == "one-second" and reader.info.source == "sim"
        assert [(s.stream_id, s.frames) for s in reader.summary()] == [
            ("car-1", 60),
            ("car-2", 60),
            ("car-3", 60),
        ]
        assert not reader.index_rebuilt and not reader.problems


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--source", "sim", "--bind", "127.0.0.1"], "--bind applies to UDP games"),
        (["--source", "nope"], "unknown source 'nope'"),
        (["--session", "bad id!"], "--session must be 1-64"),
        (["--source", "forza", "--ibt", "x.ibt"], "--ibt reads iRacing files"),
    ],
)
def test_record_bad_options_exit_2(tmp_path, args, needle):
    """record with a bad option exits 2 naming it, and leaves no file behind."""
    out = tmp_path / "x.pwr"
    code, text = run("record", "--out", str(out), *args)
    assert code == 2
    assert needle in text
    assert not out.exists()


def test_record_refuses_to_overwrite_a_file(tmp_path):
    """record to an existing file exits 2 suggesting --overwrite, and keeps the file."""
    out = tmp_path / "keep.pwr"
    out.write_bytes(b"precious")
    code, text = run("record", "--out", str(out), "--duration", "0.1")
    assert code == 2
    assert "exists" in text and "--overwrite" in text
    assert out.read_bytes() == b"precious"


def test_record_into_an_existing_folder_writes_a_file_named_after_the_session(tmp_path):
    """--out FOLDER (existing) writes FOLDER/<session>.pwr and prints that path."""
    from pitwire import sessionfile

    folder = tmp_path / "recs"
    folder.mkdir()
    code, text = run(
        "record", "--out", str(folder), "--duration", "0.2", "--cars", "1", "--session", "q1"
    )
    assert code == 0, text
    assert [p.name for p in folder.iterdir()] == ["q1.pwr"]
    assert str(folder / "q1.pwr") in text
    assert not (tmp_path / "recs.pwr").exists()
    with sessionfile.open(folder / "q1.pwr") as reader:
        assert reader.info.session_id == "q1" and reader.frames_total == 12


def test_record_replay_re_encodes_a_session_file(tmp_path):
    """record --source replay --file plays a file into another one as fast as possible:
    same session id, start, streams, frames and laps."""
    import numpy as np

    from pitwire import sessionfile

    source = nan_lap_file(tmp_path / "s.pwr", 95.5)
    out = tmp_path / "again.pwr"
    code, text = run("record", "--source", "replay", "--file", str(source), "--out", str(out))
    assert code == 0, text
    with sessionfile.open(source) as a, sessionfile.open(out) as b:
        assert b.info.session_id == a.info.session_id == "laps"
        assert b.info.started_ns == a.info.started_ns
        assert [s.stream_id for s in b.streams] == [s.stream_id for s in a.streams]
        assert b.laps == a.laps
        for s in a.streams:
            fa, fb = a.frames(s.stream_id), b.frames(s.stream_id)
            assert np.array_equal(fa.t_ns, fb.t_ns)
            for name, col in fa.columns.items():
                assert np.array_equal(col, fb.columns[name], equal_nan=True), name


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--source", "replay"], "--source replay needs --file"),
        (["--source", "sim", "--file", "x.pwr"], "--file is for --source replay"),
        (["--source", "replay", "--file", "nowhere.pwr"], "no such file"),
    ],
)
def test_record_replay_options_are_checked(tmp_path, args, needle):
    """record --source replay without a playable --file exits 2 naming the problem."""
    out = tmp_path / "r.pwr"
    code, text = run("record", "--out", str(out), *args)
    assert code == 2, text
    assert needle in text
    assert not out.exists()


def test_record_replay_refuses_to_write_over_its_own_file(tmp_path):
    """--out the very --file being replayed (even with --overwrite) exits 2, file intact."""
    path = sim_file(tmp_path / "s.pwr", cars=1, seconds=0.5)
    data = path.read_bytes()
    code, text = run(
        "record", "--source", "replay", "--file", str(path), "--out", str(path), "--overwrite"
    )
    assert code == 2 and "--file being replayed" in text
    assert path.read_bytes() == data
