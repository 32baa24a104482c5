"""Tests of importing recordings into a real server (pitwire.sources.importer)."""

from __future__ import annotations

import asyncio

import pytest

from pitwire import sessionfile
from pitwire.model.ids import SessionId
from pitwire.model.records import SessionInfo
from pitwire.sources.base import SourceError
from pitwire.sources.importer import ImportFailed, http_base, import_recording
from pitwire.sources.record import simulate
from pitwire.sources.sim import SimField
from support import running_server


async def stored(server, session: str) -> dict[str, tuple[int, int | None, int]]:  # type: ignore[no-untyped-def]
    """Per stream: frames, last seq and last frame time the server stores."""
    summary = await server.store.get_session(SessionId(session))
    return {s.info.stream_id: (s.frames, s.last_seq, s.t1_ns) for s in summary.streams}


def in_file(path) -> dict[str, tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    with sessionfile.open(path) as reader:
        return {s.stream_id: (s.frames, s.frames - 1, s.t1_ns) for s in reader.summary()}


async def test_import_stores_every_frame_of_every_stream_exactly_once(tmp_path, server):
    """Each stream's frames reach the server once, numbered 0..n-1, in the file's session."""
    path = tmp_path / "race.pwr"
    simulate(path, cars=5, seconds=4.0, session="race-7")
    report = await import_recording(path, server=server.ws)
    assert report.complete and report.session == "race-7"
    assert (report.frames_total, report.frames_acked, report.frames_skipped) == (1200, 1200, 0)
    assert await stored(server, "race-7") == in_file(path)


async def test_importing_the_same_file_again_adds_nothing(tmp_path, server):
    """A second import of an unchanged file skips every frame: the server keeps one copy."""
    path = tmp_path / "race.pwr"
    simulate(path, cars=3, seconds=2.0, session="twice")
    await import_recording(path, server=server.ws)
    again = await import_recording(path, server=server.ws)
    assert (again.frames_skipped, again.frames_sent, again.complete) == (360, 0, True)
    assert await stored(server, "twice") == in_file(path)


async def test_a_file_that_grew_adds_only_its_new_frames(tmp_path, server):
    """A recording imported while still being written (no index), then again once finished,
    ends up on the server whole and without a repeated frame."""
    path = tmp_path / "growing.pwr"
    field = SimField(cars=3, seed=5, start_ns=1_700_000_000_000_000_000)
    info = SessionInfo(session_id="growing", track="sim-ring", source="sim")
    writer = sessionfile.create(path, info, streams=field.streams, flush_interval=3600)

    def write(ticks: int) -> None:
        for _ in range(ticks):
            for stream, batch in field.step():
                writer.write(stream, batch)
        writer.flush()

    write(120)
    first = await import_recording(path, server=server.ws)
    assert first.index_rebuilt and first.frames_acked == 360
    write(90)
    writer.close()
    second = await import_recording(path, server=server.ws)
    assert (second.frames_skipped, second.frames_acked) == (360, 270)
    assert await stored(server, "growing") == in_file(path)
    assert in_file(path)["car-1"][0] == 210


async def test_a_parquet_export_imports_like_the_session_file(tmp_path, server):
    """A Parquet file written by the exporter imports with every frame of every stream."""
    pytest.importorskip("pyarrow")
    from pitwire.export import export_session

    path = tmp_path / "race.pwr"
    simulate(path, cars=2, seconds=2.0, session="pq")
    with sessionfile.open(path) as reader:
        [parquet] = export_session(reader, "parquet", tmp_path / "out")
    report = await import_recording(parquet, server=server.ws, session="from-parquet")
    assert report.complete and report.frames_acked == 240
    assert await stored(server, "from-parquet") == in_file(path)


async def test_a_garbage_file_is_refused_before_anything_is_sent(tmp_path, server):
    """A file that is not a session file raises SourceError and creates no session."""
    path = tmp_path / "notes.pwr"
    path.write_text("lap times: 1:42.1, 1:41.9\n")
    with pytest.raises(SourceError, match="not a pitwire session file"):
        await import_recording(path, server=server.ws)
    assert await server.store.list_sessions() == []


async def test_a_server_that_is_not_running_fails_clearly(tmp_path):
    """Import to a port nobody listens on raises ImportFailed saying the server is
    unreachable."""
    path = tmp_path / "race.pwr"
    simulate(path, cars=1, seconds=1.0)
    with pytest.raises(ImportFailed, match="cannot reach the server"):
        await import_recording(path, server="ws://127.0.0.1:9")


@pytest.mark.parametrize(
    ("server", "needle"),
    [
        ("ws://bob:hunter2@127.0.0.1:9", "cannot reach the server at ws://bob:***@127.0.0.1:9"),
        ("ws://127.0.0.1:99999", "the port must be a number from 1 to 65535"),
        ("ftp://127.0.0.1:8000", "is not supported"),
    ],
)
async def test_a_bad_or_unreachable_server_is_named_without_its_password(tmp_path, server, needle):
    """A server URL that is unusable or unreachable fails with ImportFailed saying why, and
    never shows a password."""
    path = tmp_path / "race.pwr"
    simulate(path, cars=1, seconds=1.0)
    with pytest.raises(ImportFailed) as caught:
        await import_recording(path, server=server)
    assert needle in str(caught.value) and "hunter2" not in str(caught.value)


async def test_frames_not_acknowledged_are_reported_when_the_server_goes_away(tmp_path):
    """A server that stops mid-import leaves frames unacknowledged: the report says so
    after the stall timeout instead of hanging."""
    path = tmp_path / "long.pwr"
    simulate(path, cars=4, seconds=60.0)
    progressed = asyncio.Event()
    async with running_server(chunk_frames=100, chunk_age=0.05) as srv:
        task = asyncio.create_task(
            import_recording(
                path,
                server=srv.ws,
                stall_timeout=1.0,
                window=500,  # slow: at most 500 frames in flight
                progress=lambda done, acked, total: acked and progressed.set(),
            )
        )
        await asyncio.wait_for(progressed.wait(), 10)
    report = await asyncio.wait_for(task, 20)
    assert not report.complete and report.unacked > 0
    assert report.frames_acked < report.frames_total


def test_http_base_turns_agent_urls_into_rest_urls():
    """ws/wss URLs, with or without /ws/ingest, map to the server's http(s) base."""
    assert http_base("ws://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert http_base("wss://pit.example/ws/ingest/") == "https://pit.example"
    assert http_base("http://h:1/") == "http://h:1"
    assert http_base("h:1") == "http://h:1"


async def test_a_server_that_answers_a_web_page_fails_clearly(tmp_path, web_page_server):
    """A URL whose server answers 200 with something that is not JSON (a web page) raises
    ImportFailed saying so, not a JSON decoding traceback."""
    path = tmp_path / "race.pwr"
    simulate(path, cars=1, seconds=0.5)
    with pytest.raises(ImportFailed, match=r"not a pitwire session .*text/html"):
        await import_recording(path, server=web_page_server)


async def test_a_server_without_a_scheme_is_a_ws_url(tmp_path, server):
    """--server 127.0.0.1:PORT (no scheme) imports as ws://127.0.0.1:PORT would."""
    path = tmp_path / "race.pwr"
    simulate(path, cars=2, seconds=1.0, session="bare")
    report = await import_recording(path, server=server.ws.removeprefix("ws://"))
    assert report.complete and report.frames_acked == 120
    assert await stored(server, "bare") == in_file(path)


def test_server_url_adds_ws_only_when_there_is_no_scheme():
    from pitwire.sources.importer import server_url

    assert server_url("127.0.0.1:8771") == "ws://127.0.0.1:8771"
    assert server_url(" pit.example:80/ ") == "ws://pit.example:80/"
    assert server_url("wss://pit.example") == "wss://pit.example"
    assert server_url("http://h:1") == "http://h:1"


@pytest.mark.parametrize("given", ["ws://127.0.0.1:9", "127.0.0.1:9", "wss://127.0.0.1:9/"])
async def test_an_unreachable_server_is_named_as_given(tmp_path, given):
    """The error names the server URL the user gave, not the http:// URL asked behind it."""
    path = tmp_path / "race.pwr"
    simulate(path, cars=1, seconds=0.5)
    with pytest.raises(ImportFailed, match="cannot reach the server") as failed:
        await import_recording(path, server=given)
    assert f"at {given} (" in str(failed.value)
    assert "http" not in str(failed.value)
