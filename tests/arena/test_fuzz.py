"""Random field values and random bytes for every RPC of a loopback arena (hypothesis): never
UNKNOWN or INTERNAL, the server stays up, and a match played meanwhile finishes."""

import asyncio
import json
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maro.agents.bots import ScriptedPlayer
from maro.agents.client import create_match, open_channel, play_seat
from maro.agents.seats import ServerSeats
from maro.arena.engine import game_ids
from maro.arena.match.runner import RunnerConfig
from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer
from maro.arena.v1 import arena_pb2 as pb
from maro.arena.v1 import arena_pb2_grpc as pb_grpc

BROKEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Arena:
    """The server on its own event loop in a thread, so hypothesis drives it with plain calls."""

    def __init__(self, tmp_path):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        config = ArenaConfig(port=0, db=str(tmp_path / "fuzz.sqlite"), stream_join_timeout_s=1.0,
                             max_live_matches_per_principal=1000,
                             # A deadline far above any stall the fuzzing can cause on the shared event loop
                             # (a 100,000-deep JSON, 10,000-character fields), so the match played meanwhile
                             # is never forfeited by a slow machine.
                             runner=RunnerConfig(turn_timeout_s=30, join_timeout_s=2, max_retries=1))
        self.server = self.run(self._start(config))
        self.channel = grpc.insecure_channel(self.server.address)
        self.stub = pb_grpc.ArenaStub(self.channel)

    async def _start(self, config):
        server = ArenaServer(config, seats=ServerSeats())
        await server.start()
        return server

    def run(self, coroutine, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self):
        self.channel.close()
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Unhurried(ScriptedPlayer):
    """The bot's moves, a little slowly, so its match runs while the fuzzing goes on."""

    async def act(self, prompt, rejection):
        await asyncio.sleep(0.05)
        return await super().act(prompt, rejection)


async def _long_match(address):
    async with open_channel(address) as channel:
        match_id, tokens = await create_match(channel, "kuhn_poker-v1", 3, [{"kind": "remote"}, {"kind": "bot", "bot": "kuhn-bot"}],
                                              {"rounds": 50})
        return await play_seat(channel, match_id, tokens[0], Unhurried("kuhn-bot"))


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    arena = Arena(tmp_path_factory.mktemp("fuzz"))
    arena.meanwhile = asyncio.run_coroutine_threadsafe(_long_match(arena.server.address), arena.loop)
    yield arena
    arena.close()


def answered(call, *args) -> grpc.StatusCode:
    """The status of one call; what the server answered is fine unless it is UNKNOWN or INTERNAL."""
    try:
        result = call(*args, timeout=10)
        if hasattr(result, "__iter__") and not isinstance(result, (bytes, str)) and not hasattr(result, "ByteSize"):
            for _ in result:
                pass
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        assert exc.code() not in BROKEN, f"{exc.code()}: {exc.details()}"
        assert len(exc.details() or "") < 1024
        return exc.code()


texts = st.one_of(st.text(max_size=40), st.sampled_from(["", "x" * 10_000, "\x00\x1b[2J\u202e", "*", "0" * 32]))
ids = st.one_of(texts, st.sampled_from(game_ids()))
int64 = st.integers(min_value=-2**63, max_value=2**63 - 1)
int32 = st.integers(min_value=-2**31, max_value=2**31 - 1)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                         max_size=4), max_leaves=12)
params = st.one_of(texts, json_values.map(json.dumps),
                   st.dictionaries(st.sampled_from(["players", "max_rounds", "rounds", "max_days", "word_pairs",
                                                    "total_items", "undercovers", "no_deal_payoff"]),
                                   json_values, max_size=3).map(json.dumps),
                   st.sampled_from(['{"a": ' + "9" * 5000 + "}", "[" * 50_000, '{"players": 1e309}']))
seat_plans = st.builds(pb.SeatPlan, kind=st.integers(0, 7), bot=st.one_of(texts, st.sampled_from(["bargaining-bot", "kuhn-bot"])),
                       name=texts, model=texts, api_base=texts)


@FUZZ
@given(game_id=ids, seed=int64, params_json=params, seats=st.lists(seat_plans, max_size=40))
def test_create_match_with_any_fields(arena, game_id, seed, params_json, seats):
    request = pb.CreateMatchRequest(game_id=game_id, seed=seed, params_json=params_json, seats=seats)
    answered(arena.stub.CreateMatch, request)


@FUZZ
@given(game_id=ids, status=st.one_of(texts, st.sampled_from(["finished", "running"])), since=int64, until=int64,
       limit=int32)
def test_list_matches_with_any_fields(arena, game_id, status, since, until, limit):
    request = pb.ListMatchesRequest(game_id=game_id, status=status, since_unix_ms=since, until_unix_ms=until,
                                    limit=limit)
    answered(arena.stub.ListMatches, request)


@FUZZ
@given(match_id=texts, game_id=ids, role=texts, name=texts)
def test_reads_and_the_lobby_with_any_fields(arena, match_id, game_id, role, name):
    answered(arena.stub.GetMatch, pb.GetMatchRequest(match_id=match_id))
    answered(arena.stub.GetRatings, pb.GetRatingsRequest(game_id=game_id, role=role))
    answered(arena.stub.FindSeat, pb.FindSeatRequest(game_id=game_id, player_name=name, wait=False))
    answered(arena.stub.Spectate, pb.SpectateRequest(match_id=match_id))
    answered(arena.stub.ListGames, pb.ListGamesRequest())


actions = st.builds(pb.Action, turn=int32, text=texts, behavior=st.one_of(st.none(), st.builds(
    pb.Behavior, messages_json=params, completion=texts, model=texts,
    logprobs=st.lists(st.builds(pb.TokenLogprob, token=texts, token_id=int32,
                                logprob=st.floats(allow_nan=True, allow_infinity=True)), max_size=5))))


@FUZZ
@given(data=st.data())
def test_play_streams_with_any_messages(arena, data):
    match_id, tokens = arena.run(_new_match(arena.server.address))
    join = data.draw(st.one_of(
        st.builds(pb.Join, match_id=st.just(match_id), seat_token=st.just(tokens[0]), player_name=texts),
        st.builds(pb.Join, match_id=st.one_of(texts, st.just(match_id)), seat_token=texts, player_name=texts)))
    rest = data.draw(st.lists(st.one_of(actions.map(lambda a: pb.PlayRequest(action=a)),
                                        st.builds(pb.Join).map(lambda j: pb.PlayRequest(join=j)),
                                        st.just(pb.PlayRequest())), max_size=6))
    requests = [pb.PlayRequest(join=join), *rest] if data.draw(st.booleans()) else rest
    answered(arena.stub.Play, iter(requests))


async def _new_match(address):
    async with open_channel(address) as channel:
        return await create_match(channel, "bargaining-v1", 1, [{"kind": "remote"}, {"kind": "bot", "bot": "bargaining-bot"}])


METHODS = ("ListGames", "CreateMatch", "GetMatch", "ListMatches", "FindSeat", "GetRatings")


@FUZZ
@given(method=st.sampled_from(METHODS), payload=st.binary(max_size=300))
def test_undecodable_bytes_for_every_method(arena, method, payload):
    call = arena.channel.unary_unary(f"/maro.arena.v1.Arena/{method}")  # bytes in, bytes out
    answered(call, payload)
    stream = arena.channel.unary_stream("/maro.arena.v1.Arena/Spectate")
    answered(stream, payload)
    play = arena.channel.stream_stream("/maro.arena.v1.Arena/Play")
    answered(play, iter([payload, payload]))


def test_after_the_fuzzing_the_server_is_up_and_a_match_finishes(arena):
    """Runs after the fuzz tests above (file order): the server answers and plays a whole match."""
    health = health_pb2_grpc.HealthStub(arena.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING

    async def play():
        async with open_channel(arena.server.address) as channel:
            match_id, tokens = await create_match(channel, "kuhn_poker-v1", 7, [{"kind": "remote"}, {"kind": "bot", "bot": "kuhn-bot"}],
                                                  {"rounds": 5})
            return await play_seat(channel, match_id, tokens[0], ScriptedPlayer("kuhn-bot"))

    result = arena.run(play())
    assert result.outcome is not None and result.reason
    assert arena.server.store.get_match(result.match_id).status == "finished"
    meanwhile = arena.meanwhile.result(120)  # the match that ran through all the fuzzing
    assert arena.server.store.get_match(meanwhile.match_id).status == "finished" and meanwhile.turns >= 50


@pytest.fixture(scope="module")
def keyed_arena(tmp_path_factory):
    from maro.arena.auth import add_principal

    folder = tmp_path_factory.mktemp("fuzz-keys")
    key = add_principal(folder / "keys.toml", "alice", "player")
    arena = Arena.__new__(Arena)
    arena.loop = asyncio.new_event_loop()
    arena.thread = threading.Thread(target=arena.loop.run_forever, daemon=True)
    arena.thread.start()
    arena.server = arena.run(arena._start(ArenaConfig(port=0, db=str(folder / "k.sqlite"), keys=folder / "keys.toml")))
    arena.channel = grpc.insecure_channel(arena.server.address)
    arena.stub = pb_grpc.ArenaStub(arena.channel)
    arena.key = key
    yield arena
    arena.close()


@FUZZ
@given(value=st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
                       st.sampled_from(["Bearer", "Bearer ", "bearer maro_x", "Basic YWxpY2U6", "Bearer " + "k" * 4000])),
       binary=st.binary(max_size=64))
def test_any_authorization_metadata(keyed_arena, value, binary):
    for metadata in ((("authorization", value),), (("authorization-bin", binary),), ()):
        code = answered(lambda request, timeout: keyed_arena.stub.ListGames(request, timeout=timeout, metadata=metadata),
                        pb.ListGamesRequest())
        assert code == grpc.StatusCode.UNAUTHENTICATED
    good = (("authorization", f"Bearer {keyed_arena.key}"),)
    assert answered(lambda request, timeout: keyed_arena.stub.ListGames(request, timeout=timeout, metadata=good),
                    pb.ListGamesRequest()) == grpc.StatusCode.OK
