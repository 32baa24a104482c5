"""Capture cost: bytes from a game → decoded, framed, de-duplicated and numbered frames.

The agent's whole path for a packet short of the socket: decoder.feed → Framer → AgentCore
→ AgentPeer.send_batch (binary frame serialization). Figures: µs per packet and the share
of one core at the game's usual 60 Hz, for the F1 22-car telemetry packet (22 frames of
~87 channels each) and one Forza Dash datagram (one frame).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import emit, machine

from pitwire.agent.core import AgentCore
from pitwire.model.channels import ChannelSet
from pitwire.protocol.peer import AgentPeer
from pitwire.sources.base import Decoder, StreamUpdate
from pitwire.sources.f1 import F1Decoder
from pitwire.sources.f1_layouts import LAYOUTS
from pitwire.sources.forza import ForzaDecoder, encode_dash
from pitwire.sources.framer import Framer
from pitwire.sources.layout import build

FMT = 2024


def _f1_packets(n: int) -> tuple[list[bytes], list[bytes]]:
    def head(pid: int, frame: int) -> dict[str, int]:
        return {
            "m_packetFormat": FMT,
            "m_packetId": pid,
            "m_sessionUID": 77,
            "m_frameIdentifier": frame,
            "m_overallFrameIdentifier": frame,
        }

    setup = [
        build(
            LAYOUTS[FMT][2],
            {
                "m_header": head(2, 0),
                "m_lapData": [
                    {"m_resultStatus": 2, "m_currentLapNum": 3, "m_carPosition": i + 1}
                    for i in range(22)
                ],
            },
        ),
        build(LAYOUTS[FMT][4], {"m_header": head(4, 0), "m_numActiveCars": 22}),
    ]
    telemetry = [
        build(
            LAYOUTS[FMT][6],
            {
                "m_header": head(6, k),
                "m_carTelemetryData": [
                    {"m_speed": 200 + i + k % 50, "m_engineRPM": 10000 + k, "m_gear": 5}
                    for i in range(22)
                ],
            },
        )
        for k in range(1, n + 1)
    ]
    return setup, telemetry


def _path(decoder: Decoder) -> Callable[[bytes, int], int]:
    framer = Framer(decoder.manifest)
    core = AgentCore()
    peer = AgentPeer(session="bench", streams=[])

    def run(data: bytes, t: int) -> int:
        framer.add(decoder.feed(data, t))
        frames = 0
        for item in framer.drain():
            if isinstance(item, StreamUpdate):
                peer.add_stream(item.info.stream_id, ChannelSet(item.info.channels))
            elif isinstance(item, tuple):
                for stream, batch in core.feed(item[0], item[1], t):
                    peer.send_batch(stream, batch)
                    frames += batch.n
        peer.outgoing()
        return frames

    return run


def _measure(name: str, setup: list[bytes], packets: list[bytes], decoder: Decoder) -> None:
    run = _path(decoder)
    for data in setup:
        run(data, 0)
    for data in packets[:50]:  # warm-up
        run(data, 1)
    frames = 0
    start = time.perf_counter()
    for k, data in enumerate(packets[50:], start=2):
        frames += run(data, k)
    elapsed = time.perf_counter() - start
    per_packet = elapsed / (len(packets) - 50)
    emit(f"capture_{name}_us_per_packet", per_packet * 1e6, "us", machine=machine())
    emit(f"capture_{name}_core_share_at_60hz", per_packet * 60 * 100, "%", machine=machine())
    emit(f"capture_{name}_frames_per_s", frames / elapsed, "frames/s", machine=machine())


def main() -> None:
    setup, telemetry = _f1_packets(2050)
    _measure("f1_22cars", setup, telemetry, F1Decoder())
    dash = [
        encode_dash({"IsRaceOn": 1, "TimestampMS": k, "Speed": 40.0, "CurrentEngineRpm": 7000.0})
        for k in range(1, 20051)
    ]
    _measure("forza_dash", [], dash, ForzaDecoder())


if __name__ == "__main__":
    main()
