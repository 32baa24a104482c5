"""Regenerate the golden vectors: ``python spec/vectors/generate.py``.

The vectors are the contract; regenerate only when the spec changes, and review the diff.
"""

import json
import pathlib

import numpy as np

from pitwire.protocol import frames, state

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
    (HERE / "state_frames.json").write_text(json.dumps(state_cases(), indent=2) + "\n")


def state_cases() -> dict:
    """A sequence of STATE frames for two groups, to be applied in order."""
    t0 = 1_763_000_000_123_456_789
    groups = {7: [0.01, 1.0, None], 9: [0.1, 0.001]}
    enc = state.StateEncoder(groups)
    nan = float("nan")
    steps = [
        (
            "keyframe",
            "a keyframe: group 7 speed 123.45 km/h, rpm 8000, an exact 0.1; "
            "group 9 has no frame yet",
            dict(epoch=1, t_ns=t0, keyframe=True, values={7: [123.45, 8000.0, 0.1], 9: None}),
        ),
        (
            "delta",
            "a delta: speed +0.5 (a 1-byte varint), rpm -300 (2 bytes), group 9 gets values",
            dict(
                epoch=1,
                t_ns=t0 + 40_000_000,
                keyframe=False,
                values={7: [123.95, 7700.0, 0.1], 9: [-5.0, 0.5]},
            ),
        ),
        (
            "nothing_changed",
            "a delta with no change: only the header and its instant",
            dict(
                epoch=1,
                t_ns=t0 + 80_000_000,
                keyframe=False,
                values={7: [123.95, 7700.0, 0.1], 9: [-5.0, 0.5]},
            ),
        ),
        (
            "exact_and_missing",
            "the exact column changes, a stepped column loses its value (NaN)",
            dict(
                epoch=1,
                t_ns=t0 + 120_000_000,
                keyframe=False,
                values={7: [123.95, nan, 2.5e300], 9: [-5.0, 0.5]},
            ),
        ),
        (
            "seek",
            "a seek: epoch 2 opens with a keyframe; values are absolute again",
            dict(
                epoch=2,
                t_ns=t0 - 60_000_000_000,
                keyframe=True,
                values={7: [0.0, 900.0, -1.0], 9: [1e20, float("inf")]},
            ),
        ),
    ]
    frames_out = []
    dec = state.StateDecoder(groups)
    for name, desc, kw in steps:
        values = {
            g: None if v is None else np.array(v, np.float64) for g, v in kw["values"].items()
        }
        data = enc.encode(
            epoch=kw["epoch"], t_ns=kw["t_ns"], values=values, keyframe=kw["keyframe"]
        )
        dec.apply(data)
        frames_out.append(
            {
                "name": name,
                "description": desc,
                "hex": data.hex(),
                "keyframe": kw["keyframe"],
                "epoch": kw["epoch"],
                "t_ns": str(kw["t_ns"]),
                "state": {
                    str(g): [
                        None if x != x else (str(x) if abs(x) == float("inf") else x)
                        for x in row.tolist()
                    ]
                    for g, row in dec.state.items()
                },
            }
        )
    return {
        "description": "apply the frames in order; 'state' is every group's values after "
        "each (null = no value)",
        "groups": {str(g): r for g, r in groups.items()},
        "frames": frames_out,
    }


if __name__ == "__main__":
    main()
