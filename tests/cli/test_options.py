"""Tests of the capture flags shared by agent and record, and of the agent's spool flags
(pitwire.cli.options)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pitwire.cli import app
from pitwire.cli.options import default_spool_dir, parse_size, spool_options

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


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MB", 512_000_000),
        ("2GB", 2_000_000_000),
        ("1.5g", 3 * 2**29),
        ("2K", 2048),
        ("100MiB", 100 * 2**20),
        (" 64 kb ", 64_000),
        ("4096", 4096),
        ("1TiB", 2**40),
    ],
)
def test_parse_size_reads_decimal_and_binary_units(text, size):
    """Sizes take KB/MB/GB/TB (powers of 1000), KiB/MiB/GiB/TiB or K/M/G/T (1024) or plain
    bytes."""
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "12XB", "-5MB", "", "MB", "1iB", "1.2.3GB"])
def test_parse_size_rejects_what_is_not_a_size(text):
    """Anything but a number with an optional unit is a ValueError naming the text."""
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--spool-max", "lots"], "--spool-max: 'lots' is not a size (examples: 512MB, 2GB"),
        (["--spool-max", "10KB"], "--spool-max must be at least 16MB"),
        (["--spool-max", "1MB"], "(about 30 s of 20 cars at 60 Hz"),
        (["--spool-dir", ""], "--spool-dir is empty: give a folder"),
        (["--spool-dir", " "], "--spool-dir is empty"),
        (["--no-spool", "--spool-dir", "x"], "--no-spool and --spool-dir"),
        (["--transport", "http", "--spool-dir", "x"], "--spool-dir applies to --transport ws"),
    ],
)
def test_agent_spool_options_are_checked_before_anything_starts(args, needle):
    """A malformed or contradictory spool flag exits 2 with a message naming it."""
    code, out = run("agent", *args)
    assert code == 2
    assert needle in out


def test_spool_options_default_to_the_per_user_folder(monkeypatch, tmp_path):
    """Without flags the ws agent spools to the per-user state folder (XDG_STATE_HOME on
    Linux); --no-spool or --transport http keep frames in memory."""
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_spool_dir() == tmp_path / "pitwire" / "spool"
    assert spool_options(None, False, "2GB", "ws") == (tmp_path / "pitwire" / "spool", 2 * 10**9)
    assert spool_options(tmp_path / "x", False, "1GB", "ws") == (tmp_path / "x", 10**9)
    assert spool_options(None, True, "1GB", "ws") == (None, 10**9)
    assert spool_options(None, False, "1GB", "http") == (None, 10**9)
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    assert default_spool_dir() == Path.home() / ".local" / "state" / "pitwire" / "spool"


def test_agent_refuses_a_spool_another_agent_uses(tmp_path):
    """Two agents streaming one session into one spool folder: the second exits 2."""
    from pitwire.agent.spool import Spool

    with Spool(tmp_path / "busy"):
        code, out = run(
            *("agent", "--session", "busy", "--spool-dir", str(tmp_path)),
            *("--duration", "0.1", "--server", "ws://127.0.0.1:9"),
        )
    assert code == 2
    assert "is in use by another running agent" in out


def test_agent_help_names_the_spool_flags():
    """agent --help documents --spool-dir (with its environment variable), --no-spool and
    --spool-max."""
    code, out = run("agent", "--help")
    assert code == 0
    assert all(flag in out for flag in ("--spool-dir", "PITWIRE_SPOOL_DIR", "--no-spool"))
    assert "--spool-max" in out
