"""Tests of the session-file commands (pitwire.cli.files): record, inspect, export, import,
watch, and the agent's replay of a file."""

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


# -- session files: record, inspect, export, import, watch, agent --source replay ----------


def stored_frames(live_server, session: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from pitwire.model.ids import SessionId

    srv, on_server_loop = live_server
    summary = on_server_loop(srv.store.get_session(SessionId(session)))
    return {s.info.stream_id: s.frames for s in summary.streams}


def test_help_lists_the_session_file_commands():
    """pitwire --help names record, inspect, export, import and watch."""
    code, out = run("--help")
    assert code == 0
    assert all(cmd in out for cmd in ("record", "inspect", "export", "import", "watch"))


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("record", ["--out", "--source", "--duration", "--session", "--overwrite", "--cars"]),
        ("inspect", ["FILE", "--json", "--gaps"]),
        ("export", ["FILE", "--format", "--out", "--streams", "--channels"]),
        ("import", ["FILE", "--server", "--session", "--timeout"]),
        ("watch", ["FOLDER", "--server", "--recursive", "--pattern", "--settle", "--poll"]),
        ("agent", ["--file", "--replay-speed", "replay"]),
    ],
)
def test_session_file_commands_document_their_options(command, options):
    """Each new command's --help exits 0 and documents its arguments and options."""
    code, out = run(command, "--help")
    assert code == 0
    for option in options:
        assert option in out, option


def test_inspect_json_gives_streams_completeness_laps_and_damage(tmp_path):
    """inspect --json prints one JSON object with the streams, their completeness, laps and
    the damage found."""
    import json

    path = sim_file(tmp_path / "s.pwr", cars=2, seconds=3.0)
    result = runner.invoke(app, ["inspect", "--json", str(path)])
    assert result.exit_code == 0
    d = json.loads(result.stdout)
    assert d["session"]["session_id"] == "cli-sim" and d["frames"] == 360
    assert [(s["stream_id"], s["frames"], s["completeness"]) for s in d["streams"]] == [
        ("car-1", 180, 1.0),
        ("car-2", 180, 1.0),
    ]
    assert d["problems"] == [] and d["index_rebuilt"] is False
    assert "laps" in d


def test_inspect_shows_a_table_of_the_streams(tmp_path):
    """inspect prints the session, each stream with its driver and rate, and that the file
    is undamaged."""
    from pitwire import sessionfile

    path = sim_file(tmp_path / "s.pwr")
    with sessionfile.open(path) as reader:
        drivers = [s.driver for s in reader.streams]
    code, text = run("inspect", str(path))
    assert code == 0
    assert "cli-sim" in text and "sim-ring" in text
    assert all(d.split()[0] in text for d in drivers)
    assert "60.0" in text and "100.0%" in text
    assert "damage: none found" in text and "index: ok" in text


def test_inspect_of_a_damaged_file_lists_the_damage(tmp_path):
    """inspect of a file cut short says its index was rebuilt and lists the damage."""
    path = sim_file(tmp_path / "cut.pwr", cars=1, seconds=10.0)
    path.write_bytes(path.read_bytes()[:-3000])
    code, text = run("inspect", str(path))
    assert code == 0
    assert "rebuilt by scanning" in text and "damaged:" in text and "reading stops" in text


@pytest.mark.parametrize("command", ["inspect", "export", "import"])
@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "no such file"), (b"\x00garbage" * 10, "not a pitwire session file")],
)
def test_missing_and_foreign_files_exit_2(tmp_path, command, content, needle):
    """inspect, export and import of a missing file or of a file that is not a session
    file exit 2 with a clear message and no traceback."""
    path = tmp_path / "x.pwr"
    if content is not None:
        path.write_bytes(content)
    extra = {"export": ["--format", "csv"], "import": ["--server", "ws://127.0.0.1:9"]}
    code, text = run(command, str(path), *extra.get(command, []))
    assert code == 2
    assert needle in text and "Traceback" not in text


def test_export_csv_writes_one_readable_file_per_stream(tmp_path):
    """export --format csv writes a CSV per selected stream, every frame a row."""
    import csv

    path = sim_file(tmp_path / "s.pwr", cars=3, seconds=1.0)
    out = tmp_path / "out"
    code, text = run(
        "export", str(path), "--format", "csv", "--out", str(out), "--streams", "car-1,car-3",
        "--channels", "speed,rpm",
    )  # fmt: skip
    assert code == 0, text
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["cli-sim_car-1.csv", "cli-sim_car-3.csv"]
    with open(files[0], newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    assert len(rows) == 1 + 60
    assert any("speed" in cell for cell in rows[0]) and any("rpm" in cell for cell in rows[0])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--format", "xls"], "unknown export format 'xls'"),
        (["--format", "csv", "--streams", "car-9"], "unknown streams: car-9"),
        (["--format", "csv", "--channels", "warp"], "unknown channels: warp"),
        (["--format", "csv", "--streams", ","], "--streams needs at least one name"),
    ],
)
def test_export_bad_input_exits_2_before_writing(tmp_path, args, needle):
    """export with an unknown format, stream or channel exits 2 and writes nothing."""
    path = sim_file(tmp_path / "s.pwr", cars=1, seconds=0.5)
    out = tmp_path / "out"
    code, text = run("export", str(path), "--out", str(out), *args)
    assert code == 2
    assert needle in text
    assert not out.exists()


def test_import_stores_every_frame_and_a_second_import_adds_none(tmp_path, live_server):
    """import sends each stream's frames to a real server once; importing again reports
    them as already there and the counts stay."""
    srv, _ = live_server
    path = sim_file(tmp_path / "s.pwr", cars=3, seconds=2.0, session="imported")
    code, text = run("import", str(path), "--server", srv.ws)
    assert code == 0, text
    assert "360 frames stored" in text
    assert stored_frames(live_server, "imported") == {"car-1": 120, "car-2": 120, "car-3": 120}
    code, text = run("import", str(path), "--server", srv.ws)
    assert code == 0 and "0 frames stored, 360 already there" in text
    assert stored_frames(live_server, "imported") == {"car-1": 120, "car-2": 120, "car-3": 120}


def test_import_checks_every_file_before_importing_any(tmp_path, live_server):
    """A garbage file among good ones exits 2 before the good ones are imported."""
    srv, on_server_loop = live_server
    good = sim_file(tmp_path / "good.pwr", session="good")
    bad = tmp_path / "bad.pwr"
    bad.write_text("not telemetry")
    code, text = run("import", str(good), str(bad), "--server", srv.ws)
    assert code == 2 and "not a pitwire session file" in text
    assert on_server_loop(srv.store.list_sessions()) == []


def test_import_to_an_unreachable_server_exits_1(tmp_path):
    """import to a port nobody listens on exits 1 saying the server cannot be reached."""
    path = sim_file(tmp_path / "s.pwr", cars=1, seconds=0.5)
    code, text = run("import", str(path), "--server", "ws://127.0.0.1:9")
    assert code == 1
    assert "cannot reach the server" in text


def test_import_with_a_bad_session_exits_2(tmp_path):
    """import --session that is not a valid id exits 2."""
    path = sim_file(tmp_path / "s.pwr", cars=1, seconds=0.5)
    code, text = run("import", str(path), "--session", "no spaces")
    assert code == 2 and "--session must be 1-64" in text


def test_agent_replays_a_session_file_into_a_server(tmp_path, live_server):
    """agent --source replay --file plays a recorded file through the live path: every
    frame of every stream is stored."""
    srv, _ = live_server
    path = sim_file(tmp_path / "s.pwr", cars=2, seconds=1.0)
    code, text = run(
        "agent", "--source", "replay", "--file", str(path), "--replay-speed", "0",
        "--server", srv.ws, "--session", "replayed",
    )  # fmt: skip
    assert code == 0, text
    assert "frames read 120" in text and "not acknowledged 0" in text
    assert stored_frames(live_server, "replayed") == {"car-1": 60, "car-2": 60}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--source", "replay"], "--source replay needs --file"),
        (["--source", "sim", "--file", "x.pwr"], "--file is for --source replay"),
        (["--source", "replay", "--file", "nowhere.pwr"], "no such file"),
        (["--source", "replay", "--file", "x.pwr", "--port", "9"], "--port applies to UDP"),
        (["--source", "replay", "--file", "x.pwr", "--replay-speed", "-1"], "must be >= 0"),
    ],
)
def test_agent_replay_options_are_checked(args, needle):
    """agent --source replay without a playable --file, or with capture options that do not
    apply, exits 2 naming the problem."""
    code, text = run("agent", *args, "--server", "ws://127.0.0.1:9")
    assert code == 2
    assert needle in text


def test_watch_of_a_missing_folder_exits_2(tmp_path):
    """watch of a folder that does not exist exits 2."""
    code, text = run("watch", str(tmp_path / "nope"), "--server", "ws://127.0.0.1:9")
    assert code == 2 and "is not a folder" in text


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_inspect_shows_a_lap_time_that_is_not_finite_as_a_dash(tmp_path, bad):
    """A NaN or infinite lap time shows as — and is not the best lap."""
    path = nan_lap_file(tmp_path / "s.pwr", bad)
    code, text = run("inspect", str(path))
    assert code == 0, text
    assert "1: —" in text and "2: 1:02.500" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_inspect_json_gives_null_for_a_lap_time_that_is_not_finite(tmp_path, bad):
    """inspect --json prints valid JSON (no NaN/Infinity): such a lap time is null."""
    import json

    path = nan_lap_file(tmp_path / "s.pwr", bad)
    result = runner.invoke(app, ["inspect", "--json", str(path)])
    assert result.exit_code == 0, result.output

    def strict(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    d = json.loads(result.stdout, parse_constant=strict)
    assert [(lap["lap"], lap["lap_time"]) for lap in d["laps"]] == [(1, None), (2, 62.5)]


def test_export_ld_of_a_lap_time_that_is_not_finite(tmp_path):
    """export --format ld with a NaN lap time writes the .ld and .ldx; the fastest lap is the
    one with a time."""
    import xml.etree.ElementTree as ET

    path = nan_lap_file(tmp_path / "s.pwr", float("nan"))
    out = tmp_path / "out"
    code, text = run("export", str(path), "--format", "ld", "--out", str(out))
    assert code == 0, text
    ldx = ET.parse(out / "laps_car-1.ldx").getroot()
    details = {s.get("Id"): s.get("Value") for s in ldx.findall("./Layers/Details/String")}
    assert details["Fastest Time"] == "1:02.500"


def test_import_checks_parquet_files_before_importing_any(tmp_path, live_server):
    """A Parquet file that cannot be read, among good files, exits 2 before anything is
    imported, as for session files."""
    pytest.importorskip("pyarrow")
    srv, on_server_loop = live_server
    good = sim_file(tmp_path / "good.pwr", session="good")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    code, text = run("import", str(good), str(bad), "--server", srv.ws)
    assert code == 2 and "bad.parquet" in text and "Traceback" not in text
    assert on_server_loop(srv.store.list_sessions()) == []


def test_import_from_a_server_answering_a_web_page_exits_1(tmp_path, web_page_server):
    """import to a URL whose server answers a web page instead of JSON exits 1 saying so."""
    path = sim_file(tmp_path / "s.pwr", cars=1, seconds=0.5)
    code, text = run("import", str(path), "--server", web_page_server)
    assert code == 1, text
    assert "not a pitwire session" in text and "Traceback" not in text


# -- trial findings: nothing readable, damaged trailers, export targets, record targets -----


def cut_header_file(path):  # type: ignore[no-untyped-def]
    """A session file cut inside its header: nothing in it is readable."""
    sim_file(path, cars=1, seconds=0.5)
    path.write_bytes(path.read_bytes()[:20])
    return path


def test_inspect_of_a_file_with_nothing_readable_exits_1_and_says_so(tmp_path):
    """A file cut inside its header: exit 1, 'nothing readable', the session id marked as
    the file name's, and no 'index: ok'."""
    path = cut_header_file(tmp_path / "cut-header.pwr")
    code, text = run("inspect", str(path))
    assert code == 1, text
    assert "nothing readable" in text
    assert "taken from the file name" in text
    assert "session cut-header " not in text
    assert "index: ok" not in text and "what precedes them is readable" not in text


def test_inspect_json_of_a_file_with_nothing_readable_exits_1(tmp_path):
    """inspect --json still prints its object, marks it unreadable and exits 1."""
    import json

    path = cut_header_file(tmp_path / "cut-header.pwr")
    result = runner.invoke(app, ["inspect", "--json", str(path)])
    assert result.exit_code == 1
    d = json.loads(result.stdout)
    assert d["readable"] is False and d["session_id_from_file_name"] is True
    assert d["index"] == "none" and d["problems"]


def test_inspect_of_an_empty_file_exits_1(tmp_path):
    """A 0-byte file: exit 1, nothing readable, no traceback."""
    path = tmp_path / "empty.pwr"
    path.write_bytes(b"")
    code, text = run("inspect", str(path))
    assert code == 1
    assert "nothing readable" in text and "empty" in text and "Traceback" not in text


@pytest.mark.parametrize("cut", ["damaged", "short"])
def test_inspect_of_a_damaged_trailer_does_not_claim_the_file_was_not_closed(tmp_path, cut):
    """Only the trailer damaged (overwritten or cut short): the index is found by scanning,
    everything is readable, and inspect does not say the file was not closed."""
    path = sim_file(tmp_path / "t.pwr", cars=2, seconds=1.0)
    data = path.read_bytes()
    path.write_bytes(data[:-16] + b"\xff" * 16 if cut == "damaged" else data[:-3])
    code, text = run("inspect", str(path))
    assert code == 0, text
    assert "2 streams, 120 frames" in text
    assert "not closed" not in text and "index: ok" not in text
    assert "found by scanning" in text and "trailer" in text


def test_inspect_of_a_file_still_being_written_says_so_without_damage(tmp_path):
    """A file whose writer is still open: no index yet, no damage, exit 0."""
    from pitwire.sources.record import simulate

    path = tmp_path / "open.pwr"
    writer = simulate(path, cars=1, seconds=1.0, session="open", close=False)
    try:
        code, text = run("inspect", str(path))
    finally:
        writer.close()
    assert code == 0, text
    assert "still being written" in text and "damage: none found" in text
    assert "60 frames" in text


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl", "ld"])
def test_export_of_a_file_with_nothing_readable_exits_1_and_writes_nothing(tmp_path, fmt):
    """No readable frame: exit 1 with a message, and no (empty) output file."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    path = cut_header_file(tmp_path / "cut.pwr")
    out = tmp_path / "out"
    code, text = run("export", str(path), "--format", fmt, "--out", str(out))
    assert code == 1, text
    assert "nothing readable" in text
    assert not out.exists() or not any(out.iterdir())
    assert "0/?" not in text


def test_export_of_a_file_without_frames_exits_1_and_writes_no_parquet(tmp_path):
    """A closed file that declares streams but holds no frame: exit 1, no Parquet file."""
    pytest.importorskip("pyarrow")
    from pitwire import sessionfile
    from pitwire.model.records import SessionInfo
    from pitwire.sources.sim import SimField

    path = tmp_path / "none.pwr"
    field = SimField(cars=2)
    sessionfile.create(path, SessionInfo(session_id="none"), streams=field.streams).close()
    code, text = run("export", str(path), "--format", "parquet")
    assert code == 1, text
    assert "nothing to export" in text
    assert not (tmp_path / "none.parquet").exists()


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.pwr", "csv"), ("my.csv", "jsonl"), ("x.parquet", "ld"), ("y.ldx", "ld")],
)
def test_export_to_a_file_of_another_format_exits_2(tmp_path, name, fmt):
    """--out whose suffix is not the format's: exit 2 naming the suffix, nothing written."""
    path = sim_file(tmp_path / "s.pwr", cars=1, seconds=0.5)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, text = run("export", str(path), "--format", fmt, "--out", str(tmp_path / name))
    assert code == 2, text
    assert f"--out {tmp_path / name}" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_export_does_not_overwrite_without_overwrite(tmp_path):
    """An output file that exists is kept (exit 2, --overwrite suggested); --overwrite
    replaces it."""
    path = sim_file(tmp_path / "s.pwr", cars=1, seconds=0.5)
    target = tmp_path / "mine.jsonl"
    target.write_text("precious\n")
    code, text = run("export", str(path), "--format", "jsonl", "--out", str(target))
    assert code == 2 and "--overwrite" in text and "exists" in text
    assert target.read_text() == "precious\n"
    code, text = run("export", str(path), "--format", "jsonl", "--out", str(target), "--overwrite")
    assert code == 0, text
    assert len(target.read_text().splitlines()) == 30


def test_export_into_a_folder_refuses_files_that_exist(tmp_path):
    """Exporting twice into the same folder: the second export keeps the first's files."""
    path = sim_file(tmp_path / "s.pwr", cars=2, seconds=0.5)
    out = tmp_path / "out"
    assert run("export", str(path), "-f", "ld", "--out", str(out))[0] == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, text = run("export", str(path), "-f", "ld", "--out", str(out))
    assert code == 2 and "exist" in text and "--overwrite" in text
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_import_to_a_server_without_a_scheme(tmp_path, live_server):
    """--server 127.0.0.1:PORT (no ws://) imports as ws://127.0.0.1:PORT would."""
    srv, _ = live_server
    path = sim_file(tmp_path / "s.pwr", cars=2, seconds=1.0, session="bare")
    code, text = run("import", str(path), "--server", srv.ws.removeprefix("ws://"))
    assert code == 0, text
    assert stored_frames(live_server, "bare") == {"car-1": 60, "car-2": 60}


def test_an_unreachable_ws_server_is_named_as_given_and_leaves_no_bar(tmp_path):
    """The error names ws://... as given, not http://..., and no empty '0/? frames' bar is
    left behind."""
    path = sim_file(tmp_path / "s.pwr", cars=1, seconds=0.5)
    code, text = run("import", str(path), "--server", "ws://127.0.0.1:9")
    assert code == 1
    assert "cannot reach the server at ws://127.0.0.1:9" in text
    assert "http://" not in text
    assert "0/?" not in text and "frames" not in text


def wide_help(*args: str) -> str:
    """--help output on a 300-column terminal, line breaks kept."""
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    return result.output


def test_help_texts_have_no_hard_line_breaks():
    """On a wide terminal each help paragraph is one line: no line broken where the
    docstring was wrapped in the source."""
    main = wide_help()
    for line in main.splitlines():
        if "│ inspect" in line or "│ import" in line:
            assert line.rstrip(" │").endswith("."), line
    watch = wide_help("watch")
    assert "(a session that grew)" in watch
    assert "kept in FOLDER/.pitwire-imported.json, so a restart" in watch
    inspect = wide_help("inspect")
    assert "completeness (frames against the median rate, gaps)" in inspect
    imp = wide_help("import")
    assert "newer than what the server already stores" in imp
