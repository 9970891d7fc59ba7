"""The arena over real gRPC on loopback: contract, refereeing, bad input, the match store."""

import asyncio
import json

import grpc
import pytest

from maro.agents.bots import ScriptedPlayer
from maro.agents.client import create_match, play_seat
from maro.agents.seats import ServerSeats
from maro.arena.match.runner import RunnerConfig
from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer
from maro.arena.v1 import arena_pb2 as pb
from maro.arena.v1 import arena_pb2_grpc as pb_grpc

BOT = {"kind": "bot", "bot": "bargaining-bot"}
REMOTE = {"kind": "remote"}


@pytest.fixture
async def arena(tmp_path):
    server = ArenaServer(ArenaConfig(port=0, db=str(tmp_path / "m.sqlite"),
                                     runner=RunnerConfig(turn_timeout_s=2.0, max_retries=2, join_timeout_s=5)), seats=ServerSeats())
    await server.start()
    async with grpc.aio.insecure_channel(server.address) as channel:
        server.channel = channel
        server.stub = pb_grpc.ArenaStub(channel)
        yield server
    await server.stop()


class Session:
    """A raw Play stream for tests that send exactly what they want."""

    def __init__(self, stub, match_id, token):
        self.call = stub.Play()
        self.match_id, self.token = match_id, token

    async def join(self):
        await self.call.write(pb.PlayRequest(join=pb.Join(match_id=self.match_id, seat_token=self.token)))
        return await self.call.read()

    async def next(self, kind):
        while True:
            response = await asyncio.wait_for(self.call.read(), 10)
            assert response is not grpc.aio.EOF, "stream ended"
            if response.WhichOneof("msg") == kind:
                return getattr(response, kind)

    async def act(self, turn, text):
        await self.call.write(pb.PlayRequest(action=pb.Action(turn=turn, text=text)))


async def test_list_games(arena):
    games = {g.id: g for g in (await arena.stub.ListGames(pb.ListGamesRequest())).games}
    assert list(games["bargaining-v1"].roles) == ["seller", "buyer"]
    assert games["bargaining-v1"].min_players == 2


async def test_full_match_is_logged_with_behaviors_and_snapshots(arena):
    match_id, tokens = await create_match(arena.channel, "bargaining-v1", 3, [REMOTE, BOT])
    result = await play_seat(arena.channel, match_id, tokens[0], ScriptedPlayer("bargaining-bot", 1))
    assert result.role == "seller" and result.outcome is not None and not result.rejections
    record = await arena.stub.GetMatch(pb.GetMatchRequest(match_id=match_id))
    assert record.status == "finished" and list(record.outcomes) == pytest.approx(result.outcomes)
    assert [s.role for s in record.seats] == ["seller", "buyer"]
    behaviors = arena.store.behaviors([match_id])
    assert {b.seat for b in behaviors} == {0, 1}
    assert all(b.accepted and b.snapshot_before and b.snapshot_after for b in behaviors)
    assert [b.index for b in behaviors if b.seat == 0] == list(range(result.accepted))


async def test_create_match_errors_have_precise_status(arena):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_match(arena.channel, "chess-v9", 1, [REMOTE, BOT])
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_match(arena.channel, "bargaining-v1", 1, [REMOTE, BOT], params={"max_rounds": -1})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_match(arena.channel, "bargaining-v1", 1, [REMOTE])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "needs 2 seats" in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create_match(arena.channel, "bargaining-v1", 1, [REMOTE, {"kind": "bot", "bot": "nobody"}])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await arena.stub.GetMatch(pb.GetMatchRequest(match_id="0" * 32))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:  # not an id at all
        await arena.stub.GetMatch(pb.GetMatchRequest(match_id="nope"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_wrong_token_and_missing_join_are_refused(arena):
    match_id, tokens = await create_match(arena.channel, "bargaining-v1", 1, [REMOTE, REMOTE])
    for request, code in [
        (pb.PlayRequest(join=pb.Join(match_id=match_id, seat_token="guess")), grpc.StatusCode.PERMISSION_DENIED),
        (pb.PlayRequest(action=pb.Action(turn=0, text="[Walk]")), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.PlayRequest(join=pb.Join(match_id="0" * 32, seat_token=tokens[0])), grpc.StatusCode.NOT_FOUND),
        (pb.PlayRequest(join=pb.Join(match_id="nope", seat_token=tokens[0])), grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        call = arena.stub.Play()
        await call.write(request)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() == code


async def test_bad_actions_get_reasons_and_the_match_goes_on(arena):
    match_id, tokens = await create_match(arena.channel, "bargaining-v1", 5, [REMOTE, REMOTE])
    seller, buyer = Session(arena.stub, match_id, tokens[0]), Session(arena.stub, match_id, tokens[1])
    assert (await seller.join()).joined.role == "seller"
    assert (await buyer.join()).joined.seat == 1
    prompt = await seller.next("turn")
    assert prompt.turn == 0 and prompt.attempts_left == 2 and any("Offer" in a for a in prompt.legal_actions)
    view = json.loads(prompt.observation.view_json)
    assert "cost" in view["private"] and "value" not in view["private"]

    await buyer.act(0, "[Offer: 10]")  # out of turn
    assert "not your turn" in (await buyer.next("rejection")).reason
    await buyer.call.write(pb.PlayRequest())  # carries nothing
    assert "malformed" in (await buyer.next("rejection")).reason
    await seller.act(0, "a fair price please")  # unparseable
    rejection = await seller.next("rejection")
    assert "no action found" in rejection.reason and rejection.attempts_left == 2
    retry = await seller.next("turn")
    assert retry.attempt == 1 and retry.turn == 0
    await seller.act(0, "[Offer: 80]")
    assert (await seller.next("accepted")).turn == 0
    buyer_turn = await buyer.next("turn")
    assert "The seller offers 80." in buyer_turn.observation.events
    await buyer.act(1, "[Accept]")
    end = await seller.next("end")
    assert end.reason == "deal at 80" and list(end.roles) == ["seller", "buyer"]
    rejected = [b for b in arena.store.behaviors([match_id]) if not b.accepted]
    assert [b.reason[:15] for b in rejected] == ["no action found"]


async def test_repeated_invalid_actions_forfeit(arena):
    match_id, tokens = await create_match(arena.channel, "bargaining-v1", 5, [REMOTE, BOT])
    seller = Session(arena.stub, match_id, tokens[0])
    await seller.join()
    for _ in range(3):
        prompt = await seller.next("turn")
        await seller.act(prompt.turn, "[Offer: -5]")
    end = await seller.next("end")
    assert list(end.outcomes) == [-1.0, 0.0] and "forfeit" in end.reason
    assert (await arena.stub.GetMatch(pb.GetMatchRequest(match_id=match_id))).status == "finished"


async def test_missed_deadline_forfeits_and_disconnected_seat_can_rejoin(arena):
    match_id, tokens = await create_match(arena.channel, "bargaining-v1", 5, [BOT, REMOTE])
    buyer = Session(arena.stub, match_id, tokens[1])
    await buyer.join()
    await buyer.next("turn")
    buyer.call.cancel()  # disconnect while it is the buyer's turn
    await asyncio.sleep(0.2)
    again = Session(arena.stub, match_id, tokens[1])
    assert (await again.join()).joined.seat == 1
    view = await again.next("observation")
    assert "Your value is" in " ".join(view.events)
    prompt = await again.next("turn")  # the pending turn comes back
    await again.act(prompt.turn, "[Offer: 30]")
    await again.next("accepted")
    end = await again.next("end")  # then it stays silent: the deadline forfeits the match
    assert list(end.outcomes) == [0.0, -1.0] and "forfeit" in end.reason


async def test_two_sessions_cannot_hold_one_seat(arena):
    match_id, tokens = await create_match(arena.channel, "bargaining-v1", 5, [REMOTE, REMOTE])
    first = Session(arena.stub, match_id, tokens[0])
    await first.join()
    second = arena.stub.Play()
    await second.write(pb.PlayRequest(join=pb.Join(match_id=match_id, seat_token=tokens[0])))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await second.read()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
