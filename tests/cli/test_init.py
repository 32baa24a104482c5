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
        ("postgresql://user:hunter2@db.example/pitwire", "scheme 'postgresql'"),
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
