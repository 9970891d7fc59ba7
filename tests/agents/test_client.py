"""The seat client when the arena moves on without it: a reply after the deadline loses nothing."""

import asyncio

import grpc

from maro.agents.bots import default_bot
from maro.agents.client import create_match, play_seat
from maro.agents.seats import ServerSeats
from maro.arena.match.messages import Submission
from maro.arena.match.runner import RunnerConfig
from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer


class Slow:
    """Answers after the arena's turn deadline has passed."""

    def __init__(self, delay: float):
        self.delay = delay

    async def act(self, prompt, rejection):
        await asyncio.sleep(self.delay)
        return Submission(prompt.turn, "[Offer: 5]")


async def test_a_reply_after_the_deadline_ends_cleanly(tmp_path):
    server = ArenaServer(ArenaConfig(port=0, db=str(tmp_path / "m.sqlite"), runner=RunnerConfig(turn_timeout_s=0.3)), seats=ServerSeats())
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            seats = [{"kind": "remote"}, {"kind": "bot", "bot": default_bot("bargaining-v1")}]
            match_id, tokens = await create_match(channel, "bargaining-v1", 3, seats)
            try:
                result = await play_seat(channel, match_id, tokens[0], Slow(1.0))
            except ConnectionError as exc:  # the stream closed before the end could be read
                assert match_id in str(exc)
            else:
                assert result.outcome is not None and "forfeit" in result.reason
            for _ in range(50):
                record = server.store.get_match(match_id, with_events=False)
                if record.status == "finished":
                    break
                await asyncio.sleep(0.05)
            assert record.status == "finished" and "forfeit" in record.end_reason
    finally:
        await server.stop()


class BotPlayer:
    """Plays a scripted bot from the seat's view."""

    def __init__(self, name: str):
        from maro.agents.bots import get_bot

        self.bot, self.rng = get_bot(name), __import__("random").Random(0)

    async def act(self, prompt, rejection):
        return Submission(prompt.turn, self.bot.act(prompt.observation.view, prompt.legal_actions, self.rng))


async def test_the_grpc_arena_client_is_an_arena_client(tmp_path):
    from maro.agents.client import ArenaClient, GrpcArenaClient

    server = ArenaServer(ArenaConfig(port=0, db=str(tmp_path / "m.sqlite")), seats=ServerSeats())
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            client: ArenaClient = GrpcArenaClient(channel)
            assert "kuhn_poker-v1" in await client.list_games(timeout=5)
            match_id, tokens = await client.create_match("kuhn_poker-v1", 4, [{"kind": "remote"}, {"kind": "open"}])
            found = await client.find_seat("kuhn_poker-v1", name="lobby", timeout=5)
            assert found[:2] == (match_id, 1)
            results = await asyncio.gather(client.play_seat(match_id, tokens[0], BotPlayer("kuhn-bot")),
                                           client.play_seat(match_id, found[2], BotPlayer("kuhn-bot"), name="lobby"))
            assert [r.seat for r in results] == [0, 1] and sum(r.outcome for r in results) == 0
    finally:
        await server.stop()
