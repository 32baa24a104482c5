"""Tests of the command line (pitwire.cli) through typer's CliRunner; only paths that exit
before starting a server or an agent run here."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pitwire import __version__
from pitwire.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    """Exit code and all output (stdout and stderr) with whitespace normalised, since rich
    wraps long lines."""
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_no_arguments_shows_help():
    """pitwire without arguments prints its usage and commands."""
    code, out = run()
    assert code in (0, 2)
    assert "Usage" in out and "serve" in out


def test_help_lists_the_commands():
    """pitwire --help names serve, agent and demo."""
    code, out = run("--help")
    assert code == 0
    assert all(cmd in out for cmd in ("serve", "agent", "demo", "--version"))


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("serve", ["--host", "--port", "--db", "--lag-limit", "--log-level"]),
        ("agent", ["--source", "--server", "--session", "--cars", "--transport", "--batch-ms"]),
        ("demo", ["--host", "--port", "--cars", "--db", "--seed"]),
    ],
)
def test_command_help_lists_its_options(command, options):
    """Each command's --help exits 0 and documents its options."""
    code, out = run(command, "--help")
    assert code == 0
    for option in options:
        assert option in out, option


def test_version():
    """--version prints the package version and exits 0."""
    code, out = run("--version")
    assert (code, out) == (0, f"pitwire {__version__}")


def test_agent_with_an_unknown_source_names_the_known_ones():
    """agent --source with an unknown name exits 2 naming the known sources."""
    code, out = run("agent", "--source", "nope")
    assert code == 2
    assert "unknown source 'nope'" in out and "known sources: sim" in out


def test_agent_with_a_bad_transport_exits_2():
    """agent --transport other than ws/http exits 2 saying what is allowed."""
    code, out = run("agent", "--transport", "carrier-pigeon")
    assert code == 2
    assert "--transport must be ws or http" in out and "carrier-pigeon" in out


@pytest.mark.parametrize("session", ["bad id!", "-leading-dash", "x" * 65, "ümlaut"])
def test_agent_with_a_bad_session_exits_2(session):
    """agent --session that is not 1-64 letters, digits or ._:- exits 2."""
    code, out = run("agent", "--session", session)
    assert code == 2
    assert "--session must be 1-64" in out


@pytest.mark.parametrize(
    ("db", "needle"),
    [
        ("mysql://user:hunter2@db.example/pitwire", "scheme 'mysql'"),
        ("data/pitwire.db", "a URL without a scheme"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "demo"])
def test_unsupported_db_url_exits_2_with_a_clear_message(command, db, needle):
    """serve/demo with an unsupported --db exit 2, name the scheme and the supported ones,
    and never echo the rest of the URL (it may hold a password)."""
    code, out = run(command, "--db", db, "--port", "0")
    assert code == 2
    assert "unsupported store URL" in out and needle in out
    assert "sqlite:///" in out and "memory://" in out
    assert "hunter2" not in out


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--port", "70000"],
        ["agent", "--cars", "0"],
        ["agent", "--rate", "0"],
        ["serve", "--lag-limit", "0"],
    ],
)
def test_out_of_range_options_exit_2(args):
    """Numeric options outside their documented range exit 2 before anything starts."""
    code, out = run(*args)
    assert code == 2
    assert "Invalid value" in out


def test_agent_replay_of_a_missing_capture_exits_2(tmp_path):
    """--replay-raw of a file that does not exist ends with a clear error, not a traceback."""
    code, out = run(
        "agent",
        "--source",
        "f1",
        "--replay-raw",
        str(tmp_path / "none.pwraw"),
        "--server",
        "ws://127.0.0.1:9",
    )
    assert code == 2
    assert "cannot read the raw capture" in out


def test_serve_with_an_unreachable_database_exits_2_in_one_line():
    """serve whose PostgreSQL refuses connections exits 2 with one error line naming the
    database and what to check, not a traceback."""
    from support import free_tcp_port

    code, out = run(
        "serve",
        "--db",
        f"postgresql://pit:hunter2@127.0.0.1:{free_tcp_port()}/test",
        "--port",
        "0",
        "--spool-dir",
        "off",
    )
    assert code == 2, out
    assert "cannot open the store" in out and "Check --db" in out
    assert "Traceback" not in out and "hunter2" not in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--replay-cache", "lots"], "--replay-cache: 'lots' is not a size"),
        (["--replay-cache", "0MB"], "--replay-cache: '0MB' is not a positive size"),
        (["--max-delay", "0.5"], "--max-delay"),
        (["--max-delay", "inf"], "--max-delay"),
        (["--replay-cache", "100KB"], "--replay-cache must be at least 1MB"),
    ],
)
def test_serve_with_bad_replay_options_exits_2(args: list[str], needle: str):
    """serve with a replay cache that is not a positive size, or a maximum delay under a
    second, exits 2 naming the option."""
    code, out = run("serve", "--db", "memory://", "--port", "0", *args)
    assert code == 2, out
    assert needle in out


@pytest.mark.parametrize(
    ("server", "needle"),
    [
        ("ftp://127.0.0.1:8611", "--server 'ftp://127.0.0.1:8611': the scheme 'ftp' is not"),
        ("ws://127.0.0.1:99999", "the port must be a number from 1 to 65535"),
        ("ws://:8000", "names no host"),
        ("pitwall", "has no port"),
    ],
)
def test_agent_with_an_unusable_server_url_exits_2_before_anything_starts(tmp_path, server, needle):
    """agent --server that is not ws(s)/http(s) with a host and a port 1-65535 (or
    host:port) exits 2 with the reason, before the banner and without making a spool."""
    code, out = run("agent", "--server", server, "--spool-dir", str(tmp_path / "spool"))
    assert code == 2, out
    assert needle in out
    assert "agent: source" not in out and "Traceback" not in out
    assert not (tmp_path / "spool").exists()


@pytest.mark.parametrize("session", ["", " "])
def test_agent_with_an_empty_session_exits_2(session):
    """agent --session "" is refused rather than silently replaced by the default id."""
    code, out = run("agent", "--session", session)
    assert code == 2
    assert "--session is empty" in out


def test_agent_spool_folder_errors_name_the_folder_and_suggest_spool_dir(tmp_path):
    """A spool folder that cannot be made (here under a file) exits 2 naming it and pointing
    to --spool-dir, without the hint meant for two agents of one session."""
    (tmp_path / "file").write_text("x")
    code, out = run(
        *("agent", "--session", "s1", "--spool-dir", str(tmp_path / "file")),
        *("--server", "ws://127.0.0.1:9", "--duration", "0.1"),
    )
    assert code == 2, out
    assert f"cannot use spool directory {tmp_path / 'file' / 's1'}" in out
    assert "--spool-dir" in out and "two agents" not in out


def test_agent_shows_the_server_url_without_its_password(tmp_path, live_server):
    """The agent's banner and report show --server with its password masked, and its spool
    does not keep it."""
    srv, _ = live_server
    url = srv.url.replace("http://", "ws://bob:S3cretPW@")
    code, out = run(
        *("agent", "--session", "pw", "--spool-dir", str(tmp_path), "--server", url),
        *("--cars", "1", "--duration", "0.2"),
    )
    assert code == 0, out
    assert "→ ws://bob:***@127.0.0.1:" in out
    assert "S3cretPW" not in out


def test_agent_discard_spool_deletes_a_sessions_spool(tmp_path):
    """agent --discard-spool ID deletes that session's spool folder (saying how many frames
    were never sent and for which server) and exits; a missing one exits 2."""
    from pitwire.agent.spool import Spool
    from pitwire.protocol.messages import ChannelDesc

    with Spool(tmp_path / "old", server="ws://bob:S3cretPW@gone:1/ws/ingest") as spool:
        spool.note_session(session="old", track="", source="sim", started_ns=0)
        spool.note_stream("car-1", id=1, channels=[ChannelDesc(id=0, name="x")], driver="", car="")
        spool.keep("car-1", 9, b"\0" * 64, 10)
    code, out = run("agent", "--discard-spool", "old", "--spool-dir", str(tmp_path))
    assert code == 0, out
    assert "discarded the spool" in out and "10 frames never sent" in out
    assert "ws://bob:***@gone:1" in out and "S3cretPW" not in out
    assert not (tmp_path / "old").exists()
    code, out = run("agent", "--discard-spool", "old", "--spool-dir", str(tmp_path))
    assert code == 2 and "no spool in" in out
    code, out = run("agent", "--discard-spool", "../x", "--spool-dir", str(tmp_path))
    assert code == 2 and "is not a session id" in out
