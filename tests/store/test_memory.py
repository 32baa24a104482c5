"""MemoryStore behaviour beyond the contract."""

from __future__ import annotations

from pitwire.model.ids import SessionId
from pitwire.model.records import SessionInfo
from pitwire.store.memory import MemoryStore


async def test_async_context_manager_opens_and_closes() -> None:
    """``async with MemoryStore()`` opens the store for the block."""
    async with MemoryStore() as store:
        await store.put_session(SessionInfo(session_id="s"))
        assert [s.info.session_id for s in await store.list_sessions()] == ["s"]


async def test_returned_info_is_a_copy() -> None:
    """Mutating a returned SessionInfo (as ingest does before put_session) changes nothing
    until it is put back."""
    async with MemoryStore() as store:
        await store.put_session(SessionInfo(session_id="s", track="spa"))
        got = await store.get_session(SessionId("s"))
        got.info.track = "monza"
        assert (await store.get_session(SessionId("s"))).info.track == "spa"


async def test_data_kept_across_close_and_open() -> None:
    """Closing and reopening the same instance keeps its sessions (it is one process's memory)."""
    store = MemoryStore()
    await store.open()
    await store.put_session(SessionInfo(session_id="s"))
    await store.close()
    await store.open()
    assert len(await store.list_sessions()) == 1
