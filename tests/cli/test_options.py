"""Tests of the capture flags shared by agent and record (pitwire.cli.options)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pitwire.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    """Exit code and all output, whitespace normalised (rich wraps long lines)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--source", "f1", "--forward", "nowhere"], "is not host:port"),
        (["--source", "f1", "--forward", "127.0.0.1:99999"], "outside 1-65535"),
        (["--source", "forza", "--ibt", "x.ibt"], "--ibt reads iRacing files"),
        (["--source", "f1", "--outsim-opts", "ff"], "--outsim-opts is for --source outgauge"),
        (["--source", "outgauge", "--outsim-opts", "zz"], "'zz' is not a hex number"),
        (["--source", "sim", "--record-raw", "x.pwraw"], "needs a game source"),
        (["--source", "f1", "--record-raw", "a", "--replay-raw", "b"], "cannot be combined"),
        (["--source", "auto", "--replay-raw", "b"], "use --source NAME"),
        (["--source", "acc", "--forward", "127.0.0.1:9"], "--forward applies to UDP games"),
        (["--source", "acc", "--port", "9"], "--port applies to UDP games"),
        (["--source", "f1", "--map-file", "/dev/shm"], "--map-file applies to shared-memory"),
        (["--source", "f1", "--poll-rate", "100"], "--poll-rate applies to shared-memory"),
        (["--source", "auto", "--port", "9"], "auto uses each game's default port"),
        (["--source", "sim", "--bind", "127.0.0.1"], "--bind applies to UDP games"),
        (["--source", "f1", "--ac-subscribe", "spot"], "--ac-subscribe applies to --source ac-udp"),
        (["--source", "ac-udp", "--ac-subscribe", "laps"], "must be update or spot"),
        (["--source", "iracing", "--ibt", "x.ibt", "--record-raw", "r"], "when reading --ibt"),
        (["--source", "f1", "--replay-raw", "x", "--forward", "h:1"], "when reading --replay-raw"),
    ],
)
def test_agent_capture_options_are_checked_before_anything_starts(args, needle):
    """Contradictory or malformed capture options exit 2 with a message naming the problem."""
    code, out = run("agent", *args)
    assert code == 2
    assert needle in out
