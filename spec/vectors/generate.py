"""Regenerate the golden vectors: ``python spec/vectors/generate.py``.

The vectors are the contract; regenerate only when the spec changes, and review the diff.
"""

import json
import pathlib

import numpy as np

from pitwire.protocol import frames

HERE = pathlib.Path(__file__).parent


def case(name: str, desc: str, *, group, seq, t_ns, columns, epoch=0):
    data = frames.serialize(
        group=group,
        seq=seq,
        t_ns=np.asarray(t_ns, np.int64),
        columns=[(cid, np.asarray(v, dt)) for cid, dt, v in columns],
        epoch=epoch,
    )
    return {
        "name": name,
        "description": desc,
        "hex": data.hex(),
        "group": group,
        "seq": seq,
        "t0_ns": str(t_ns[0]) if t_ns else "0",
        "epoch": epoch,
        "t_offsets": [(t - t_ns[0]) / 1e9 for t in t_ns],
        "columns": [{"channel": cid, "dtype": dt, "values": list(v)} for cid, dt, v in columns],
    }


def main() -> None:
    t0 = 1_763_000_000_123_456_789
    cases = [
        case("empty", "no frames, no columns", group=0, seq=0, t_ns=[], columns=[]),
        case(
            "one_frame",
            "one frame, speed f4 and rpm f4",
            group=7,
            seq=42,
            t_ns=[t0],
            columns=[(0, "f4", [123.5]), (1, "f4", [8000.0])],
        ),
        case(
            "three_frames_mixed",
            "three frames at 60 Hz; an f4 column that needs padding, then an f8 column",
            group=3,
            seq=1000,
            t_ns=[t0, t0 + 16_666_667, t0 + 33_333_333],
            columns=[(2, "f4", [1.0, 2.0, 3.0]), (12, "f8", [0.1, -2.5, 1e300])],
            epoch=5,
        ),
        case(
            "large_ids",
            "group and seq near their limits",
            group=4_294_967_295,
            seq=2**53 - 1,
            t_ns=[t0, t0 + 1],
            columns=[(65535, "f8", [-0.0, 3.0])],
        ),
    ]
    (HERE / "data_frames.json").write_text(json.dumps(cases, indent=2) + "\n")


if __name__ == "__main__":
    main()
