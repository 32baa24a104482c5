"""Run every benchmark; each prints one JSON object per figure (see docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = [
    "live.py",
    "fanout.py",
    "ingest.py",
    "capture.py",
    "sessionfile.py",
    "codec.py",
    "store.py",
    "replay.py",
    "rest.py",
    "dashboard.py",
]

if __name__ == "__main__":
    failed = 0
    for name in BENCHES:
        failed |= subprocess.call([sys.executable, name], cwd=HERE) != 0
    sys.exit(failed)
