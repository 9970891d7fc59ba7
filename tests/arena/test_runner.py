"""The match runner: each accepted action parsed once, store writes off the loop and never lost
to a cancellation."""

import pytest

from maro.arena.engine import GAMES


async def test_the_runner_parses_each_accepted_action_once(arena, monkeypatch):
    from maro.agents.client import create_match, open_channel
    from maro.arena.games.kuhn_poker.rules import KuhnPoker

    calls = []
    parse = KuhnPoker.parse
    monkeypatch.setattr(KuhnPoker, "parse", lambda self, state, seat, text: calls.append(text) or parse(self, state, seat, text))
    async with open_channel(arena.address) as channel:
        match_id, _ = await create_match(channel, "kuhn_poker-v1", 4, [{"kind": "bot", "bot": "kuhn-bot"}] * 2,
                                         {"rounds": 3})
    await arena.service.wait(match_id)
    record = arena.store.get_match(match_id)
    accepted = [b for b in arena.store.behaviors([match_id]) if b.accepted]
    assert record.status == "finished" and len(accepted) >= 6 and len(calls) == len(accepted)


async def test_a_store_write_that_started_completes_before_a_cancellation_is_seen(tmp_path):
    import asyncio
    import threading

    from maro.arena.match.runner import MatchRunner, RunnerConfig
    from maro.arena.store.matches import MatchStore

    class Networked(MatchStore):  # writes to a networked database leave the event loop
        networked = True

    runner = MatchRunner("m", GAMES.make("kuhn_poker-v1"), 0, [], Networked(tmp_path / "s.sqlite"), RunnerConfig())
    release, order = threading.Event(), []

    def slow_write():
        release.wait(5)
        order.append("written")

    task = asyncio.create_task(runner._write(slow_write, then=lambda: order.append("then")))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.sleep(0.05)
    assert order == [] and not task.done()  # still waiting for the write, not abandoning it
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert order == ["written", "then"]


async def test_a_local_sqlite_store_is_written_in_place(tmp_path):
    import threading
    from types import SimpleNamespace

    from maro.arena.match.runner import MatchRunner, RunnerConfig
    from maro.arena.store.matches import MatchStore

    store = MatchStore(tmp_path / "s.sqlite")
    assert not store.networked and MatchStore.networked.fget(SimpleNamespace(url="postgresql://u@db/maro"))
    runner = MatchRunner("m", GAMES.make("kuhn_poker-v1"), 0, [], store, RunnerConfig())
    threads = []
    assert await runner._write(lambda: threads.append(threading.current_thread()) or 7) == 7
    assert threads == [threading.main_thread()]
