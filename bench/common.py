"""Benchmark helpers: start a real server process, raw WebSocket readers, figures as JSON."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def emit(name: str, value: float, unit: str, **extra: object) -> None:
    """Print one figure as one JSON object on one line."""
    print(json.dumps({"figure": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


@contextlib.contextmanager
def server_process(*args: str, db: str | None = None) -> Iterator[str]:
    """``pitwire serve`` on a free port with ``db`` (default: a fresh SQLite store); yields
    its base URL."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pitwire",
                "serve",
                "--port",
                "0",
                "--db",
                db or f"sqlite:///{tmp}/bench.db",
                "--spool-dir",
                f"{tmp}/spool",
                "--log-level",
                "warning",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 30
            url = ""
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if line.startswith("PITWIRE_URL="):
                    url = line.strip().split("=", 1)[1].rstrip("/")
                    break
                if not line and proc.poll() is not None:
                    raise RuntimeError("server exited before it was ready")
            if not url:
                raise RuntimeError("server did not start within 30 s")
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def agent_process(
    url: str, session: str, cars: int, rate: float, duration: float
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pitwire",
            "agent",
            "--source",
            "sim",
            "--cars",
            str(cars),
            "--rate",
            str(rate),
            "--duration",
            str(duration),
            "--server",
            "ws" + url[4:],
            "--session",
            session,
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def raw_ws(
    url: str, path: str, protocol: str = "pitwire.v1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a WebSocket by hand (for readers that only count bytes, at almost no CPU)."""
    host, port = url.split("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {protocol}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"handshake failed: {head[:80]!r}")
    return reader, writer


def ws_text_frame(text: str) -> bytes:
    """A masked client text frame (mask of zeros: allowed, and the payload stays readable)."""
    data = text.encode()
    n = len(data)
    head = bytes([0x81]) + (
        bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
    )
    return head + b"\0\0\0\0" + data


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentiles(values: list[float], ps: tuple[float, ...] = (50, 99)) -> list[float]:
    import numpy as np

    return (
        [float(x) for x in np.percentile(np.asarray(values), ps)]
        if values
        else [float("nan")] * len(ps)
    )


def repo() -> Path:
    return Path(__file__).resolve().parents[1]
