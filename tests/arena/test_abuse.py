"""What a stranger's program tries against the arena, through the proto alone, over gRPC on
loopback: spending the server's keys, making it call an address, unbounded games, idle streams,
malformed fields, oversized echoes, control characters and playing under another's name."""

import asyncio
from types import SimpleNamespace

import grpc
import pytest
from fastapi import FastAPI, Request
from grpc_health.v1 import health_pb2, health_pb2_grpc

from maro.agents.bots import ScriptedPlayer
from maro.agents.client import create_match, open_channel, play_seat
from maro.arena import auth
from maro.arena.match.messages import Submission
from maro.arena.match.runner import RunnerConfig
from maro.arena.transport.grpc.server import ArenaConfig
from maro.arena.v1 import arena_pb2 as pb
from maro.arena.v1 import arena_pb2_grpc as pb_grpc
from tests.helpers import arena_with_stub, serve_in_thread, start_arena

BOT = {"kind": "bot", "bot": "bargaining-bot"}
REMOTE = {"kind": "remote"}


started = start_arena


@pytest.fixture
async def arena(tmp_path):
    """A server with its defaults: no key file (local), no model registry."""
    async with arena_with_stub(tmp_path) as server:
        yield server


@pytest.fixture
def endpoint():
    """An OpenAI-compatible endpoint on loopback that records every request it gets."""
    app = FastAPI()
    app.state.hits = []

    @app.post("/{path:path}")
    async def anything(path: str, body: dict, request: Request):
        app.state.hits.append((path, request.headers.get("authorization", "")))
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model", ""),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "[Offer: 120]"}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}}

    with serve_in_thread(app) as url:
        yield SimpleNamespace(url=url, hits=app.state.hits)


async def refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


# --- 1, 2: the server's keys and the server's requests ----------------------------------------
async def test_model_seats_need_the_registry_and_never_take_a_callers_endpoint(arena, endpoint, monkeypatch,
                                                                                tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-servers-own")
    bot = pb.SeatPlan(kind=pb.SeatPlan.BOT, bot="bargaining-bot")
    for seat in (pb.SeatPlan(kind=pb.SeatPlan.MODEL, model="openai/gpt-4o-mini"),
                 pb.SeatPlan(kind=pb.SeatPlan.MODEL, model="gpt-4o-mini"),
                 pb.SeatPlan(kind=pb.SeatPlan.MODEL, model="openai/x", api_base=f"{endpoint.url}/anything/at/all")):
        err = await refused(arena.stub.CreateMatch(pb.CreateMatchRequest(game_id="bargaining-v1", seats=[seat, bot])))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, seat
        assert "registry" in err.details() or "api_base" in err.details()
    # With a registry, a named model runs; a caller's endpoint is still refused.
    registry = tmp_path / "models.toml"
    registry.write_text(f'[models.fake]\nmodel = "openai/fake"\napi_base = "{endpoint.url}/v1"\n'
                        'api_key_env = "MARO_TEST_FAKE_KEY"\n')
    monkeypatch.setenv("MARO_TEST_FAKE_KEY", "sk-for-fake")
    server = await started(tmp_path / "r", registry=registry, runner=RunnerConfig(turn_timeout_s=60))  # litellm's first import is slow
    try:
        async with open_channel(server.address) as channel:
            err = await refused(pb_grpc.ArenaStub(channel).CreateMatch(pb.CreateMatchRequest(
                game_id="bargaining-v1", seats=[
                    pb.SeatPlan(kind=pb.SeatPlan.MODEL, model="fake", api_base=f"{endpoint.url}/elsewhere"),
                    pb.SeatPlan(kind=pb.SeatPlan.BOT, bot="bargaining-bot")])))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "api_base" in err.details()
            await asyncio.sleep(0.3)
            assert endpoint.hits == []  # nothing was ever sent anywhere
            match_id, _ = await create_match(channel, "bargaining-v1", 1, [{"kind": "model", "model": "fake"}, BOT])
            await server.service.wait(match_id)
            record = server.store.get_match(match_id)
            assert endpoint.hits and {path for path, _ in endpoint.hits} == {"v1/chat/completions"}, (record.end_reason, server.store.behaviors([match_id])[:1])
        assert len(server.store.list_matches()) == 1
    finally:
        await server.stop()
    assert arena.store.list_matches() == []


# --- 3: bounded games, matches and callers ------------------------------------------------------
async def test_unbounded_game_parameters_are_refused_before_a_match_exists(arena):
    for game, params in (("bargaining-v1", {"max_rounds": 1_000_000}), ("deal_or_no_deal-v1", {"max_turns": 1_000_000}),
                         ("werewolf-v1", {"players": 5, "max_days": 1_000_000}),
                         ("bargaining-v1", {"max_rounds": 10**30}),
                         ("undercover-v1", {"word_pairs": [["a" * 40, "b"]]})):
        seats = [BOT] * 2 if game != "werewolf-v1" else [{"kind": "bot", "bot": "werewolf-bot"}] * 5
        if game == "undercover-v1":
            seats = [{"kind": "bot", "bot": "undercover-bot"}] * 5
        elif game == "deal_or_no_deal-v1":
            seats = [{"kind": "bot", "bot": "deal-bot"}] * 2
        err = await refused(create_match(arena.channel, game, 1, seats, params))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (game, params)
        assert "less than or equal" in err.details() or "at most" in err.details(), err.details()
        assert len(err.details()) < 400
    assert arena.store.list_matches() == []


async def test_a_match_over_its_event_byte_or_time_cap_is_aborted_with_the_reason(tmp_path):
    for name, runner, expected in (
            ("events", RunnerConfig(max_events=12), "more than 12 events"),
            ("bytes", RunnerConfig(max_stored_bytes=4096), "more than 4096 bytes")):
        server = await started(tmp_path / name, runner=runner)
        try:
            async with open_channel(server.address) as channel:
                seats = [{"kind": "bot", "bot": "prisoners_dilemma-bot"}, REMOTE]
                match_id, tokens = await create_match(channel, "prisoners_dilemma-v1", 1, seats,
                                                      {"rounds": 50, "chat_turns": 5})
                seat = next(iter(tokens))

                class Chatty:  # long speeches
                    async def act(self, prompt, rejection):
                        speech = "[Say: " + "x" * 150 + "]" if "[Say" in " ".join(prompt.legal_actions) else "[Cooperate]"
                        return Submission(prompt.turn, speech)

                result = await asyncio.wait_for(play_seat(channel, match_id, tokens[seat], Chatty()), 20)
                assert expected in result.reason, (name, result.reason)
            record = server.store.get_match(match_id)
            assert record.status == "aborted" and expected in record.end_reason
        finally:
            await server.stop()
    # A seat that joins and then never acts, under a long turn deadline: the match's wall time ends it.
    server = await started(tmp_path / "time", runner=RunnerConfig(max_match_s=0.5, turn_timeout_s=60))
    try:
        async with open_channel(server.address) as channel:
            match_id, tokens = await create_match(channel, "bargaining-v1", 1, [REMOTE, BOT])
            call = pb_grpc.ArenaStub(channel).Play()
            await call.write(pb.PlayRequest(join=pb.Join(match_id=match_id, seat_token=tokens[0])))
            kinds = [r.WhichOneof("msg") async for r in call]
            assert kinds[0] == "joined" and kinds[-1] == "end"
        assert "limit of 0.5s per match" in server.store.get_match(match_id).end_reason
    finally:
        await server.stop()


async def test_each_principal_has_a_cap_on_its_live_matches(tmp_path):
    server = await started(tmp_path, max_live_matches_per_principal=2)
    try:
        async with open_channel(server.address) as channel:
            first = [await create_match(channel, "bargaining-v1", i, [REMOTE, BOT]) for i in range(2)]
            err = await refused(create_match(channel, "bargaining-v1", 3, [REMOTE, BOT]))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "live matches" in err.details()
            match_id, tokens = first[0]
            await play_seat(channel, match_id, tokens[0], ScriptedPlayer("bargaining-bot"))
            await server.service.wait(match_id)
            await create_match(channel, "bargaining-v1", 4, [REMOTE, BOT])  # room again
    finally:
        await server.stop()


# --- 4: streams that never join ------------------------------------------------------------------
async def test_idle_streams_are_closed_and_counted_apart_from_joined_seats(tmp_path):
    server = await started(tmp_path, stream_join_timeout_s=1.0, max_streams_per_client=2,
                           max_pending_streams_per_client=4)
    try:
        async with open_channel(server.address) as channel:
            stub = pb_grpc.ArenaStub(channel)
            idle = [stub.Play() for _ in range(3)]
            for call in idle:
                await call.wait_for_connection()
            # Three idle streams do not count against the two joined seats allowed: a join works.
            match_id, tokens = await create_match(channel, "bargaining-v1", 2, [REMOTE, BOT])
            result = await play_seat(channel, match_id, tokens[0], ScriptedPlayer("bargaining-bot"))
            assert result.outcome is not None
            idle.append(stub.Play())
            await idle[-1].wait_for_connection()
            extra = stub.Play()  # a fifth idle stream is over the limit of streams still to join
            assert (await refused(extra.read())).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            for call in idle:  # closed once their join deadline passed
                err = await refused(call.read())
                assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "no join within 1s" in err.details()
            assert server.guard.pending == {}
            match_id, tokens = await create_match(channel, "bargaining-v1", 3, [REMOTE, BOT])
            assert (await play_seat(channel, match_id, tokens[0], ScriptedPlayer("bargaining-bot"))).outcome is not None
    finally:
        await server.stop()


async def test_behind_one_address_each_principal_has_its_own_stream_counts(tmp_path):
    keys = tmp_path / "keys.toml"
    mallory, alice = auth.add_principal(keys, "mallory", "player"), auth.add_principal(keys, "alice", "player")
    server = await started(tmp_path, keys=keys, max_pending_streams_per_client=3, stream_join_timeout_s=30)
    try:
        async with open_channel(server.address, key=mallory) as bad, open_channel(server.address, key=alice) as good:
            idle = [pb_grpc.ArenaStub(bad).Play() for _ in range(3)]
            for call in idle:
                await call.wait_for_connection()
            assert (await refused(pb_grpc.ArenaStub(bad).Play().read())).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            match_id, tokens = await create_match(good, "bargaining-v1", 2, [REMOTE, BOT])
            result = await play_seat(good, match_id, tokens[0], ScriptedPlayer("bargaining-bot"))
            assert result.outcome is not None
            for call in idle:
                call.cancel()
    finally:
        await server.stop()


# --- 5, 6: malformed fields and echoed input -----------------------------------------------------
async def test_malformed_fields_are_invalid_argument_with_short_messages(arena):
    stub = arena.stub
    cases = [
        stub.CreateMatch(pb.CreateMatchRequest(game_id="bargaining-v1", params_json='{"max_rounds": ' + "9" * 5001 + "}",
                                               seats=[pb.SeatPlan(kind=pb.SeatPlan.BOT, bot="bargaining-bot")] * 2)),
        stub.CreateMatch(pb.CreateMatchRequest(game_id="bargaining-v1", params_json="[" * 100_000 + "]" * 100_000)),
        stub.CreateMatch(pb.CreateMatchRequest(game_id="bargaining-v1", params_json='{"a": ' * 50 + "1" + "}" * 50)),
        stub.CreateMatch(pb.CreateMatchRequest(game_id="bargaining-v1", params_json='{"max_rounds": NaN}')),
        stub.CreateMatch(pb.CreateMatchRequest(game_id="x" * 10_000)),
        stub.ListMatches(pb.ListMatchesRequest(since_unix_ms=-2**63)),
        stub.ListMatches(pb.ListMatchesRequest(until_unix_ms=2**63 - 1)),
        stub.ListMatches(pb.ListMatchesRequest(status="x" * 10_000)),
        stub.GetMatch(pb.GetMatchRequest(match_id="m" * 10_000)),
        stub.FindSeat(pb.FindSeatRequest(game_id="g" * 10_000)),
        stub.GetRatings(pb.GetRatingsRequest(role="r" * 10_000)),
    ]
    for call in cases:
        err = await refused(call)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
        assert len(err.details()) < 300, err.details()
    spectate = stub.Spectate(pb.SpectateRequest(match_id="s" * 10_000))
    err = await refused(spectate.read())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and len(err.details()) < 300
    # Well-formed ids that name nothing are NOT_FOUND, still with a short message.
    err = await refused(stub.GetMatch(pb.GetMatchRequest(match_id="0" * 32)))
    assert err.code() == grpc.StatusCode.NOT_FOUND and len(err.details()) < 100
    assert arena.store.list_matches() == []


# --- 7: control characters ------------------------------------------------------------------------
async def test_control_characters_and_bidi_overrides_never_reach_other_seats(arena):
    from maro.arena.match.messages import ObservationMsg, Submission

    match_id, tokens = await create_match(arena.channel, "prisoners_dilemma-v1", 1, [REMOTE, REMOTE],
                                          {"rounds": 1, "chat_turns": 1})
    seen: dict[int, list[str]] = {0: [], 1: []}
    nasty = "[Say: hi\x1bc\x1b(0 \u202egnp.exe\u202c\r\nSeat 1 defects\x85\x07]"

    class Talker:
        def __init__(self, seat):
            self.seat = seat

        def observe(self, message):
            if isinstance(message, ObservationMsg):
                seen[self.seat].extend(message.events)

        async def act(self, prompt, rejection):
            seen[self.seat].extend(prompt.observation.events)
            chat = "[Say" in " ".join(prompt.legal_actions)
            return Submission(prompt.turn, nasty if chat and self.seat == 0 else "[Pass]" if chat else "[Cooperate]")

    spectator = arena.stub.Spectate(pb.SpectateRequest(match_id=match_id))
    await asyncio.gather(play_seat(arena.channel, match_id, tokens[0], Talker(0), name="eve\x1b[31m\u202e"),
                         play_seat(arena.channel, match_id, tokens[1], Talker(1)))
    watched = [e.event.text async for e in spectator if e.WhichOneof("msg") == "event"]
    record = arena.store.get_match(match_id)
    texts = [e.text for e in record.events] + seen[1] + watched + [s.name for s in record.seats]
    assert any("gnp.exe" in t for t in seen[1]) and any("gnp.exe" in t for t in watched)
    for text in texts:
        assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or c in "\u202e\u202c" for c in text), repr(text)
    assert record.seats[0].name == "eve[31m"
    assert any("hic(0 gnp.exe" in t and "Seat 1 defects" in t for t in seen[1]), seen[1]


# --- 8: identities -----------------------------------------------------------------------------
async def test_keys_name_principals_whose_ratings_no_display_name_can_move(tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "RELOAD_EVERY_S", 0.0)
    keys = tmp_path / "keys.toml"
    alice, bob = auth.add_principal(keys, "alice", "player"), auth.add_principal(keys, "bob", "player")
    root = auth.add_principal(keys, "root", "admin")
    assert alice not in keys.read_text() and auth.hash_key(alice) in keys.read_text()
    registry = tmp_path / "models.toml"
    registry.write_text('[models.fake]\nmodel = "openai/fake"\napi_base = "http://127.0.0.1:9/v1"\n')
    server = await started(tmp_path, keys=keys, registry=registry)
    try:
        async with open_channel(server.address) as anonymous, open_channel(server.address, key="maro_guess") as wrong:
            for channel in (anonymous, wrong):
                err = await refused(pb_grpc.ArenaStub(channel).ListGames(pb.ListGamesRequest()))
                assert err.code() == grpc.StatusCode.UNAUTHENTICATED
                err = await refused(create_match(channel, "bargaining-v1", 1, [REMOTE, BOT]))
                assert err.code() == grpc.StatusCode.UNAUTHENTICATED
                play = pb_grpc.ArenaStub(channel).Play()
                assert (await refused(play.read())).code() == grpc.StatusCode.UNAUTHENTICATED
            health = await health_pb2_grpc.HealthStub(anonymous).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING  # probes need no key
        async with open_channel(server.address, key=alice) as a, open_channel(server.address, key=bob) as b, \
                open_channel(server.address, key=root) as admin:
            # Players may not create model seats; admins may.
            err = await refused(create_match(a, "bargaining-v1", 1, [{"kind": "model", "model": "fake"}, BOT]))
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED
            match_id, _ = await create_match(admin, "bargaining-v1", 1, [{"kind": "model", "model": "fake"}, BOT])
            server.service.live[match_id].task.cancel()
            # Alice plays three matches calling herself "bob", against a bot labelled "bob" too.
            for seed in range(3):
                match_id, tokens = await create_match(a, "bargaining-v1", seed, [REMOTE, {**BOT, "name": "bob"}])
                await play_seat(a, match_id, tokens[0], ScriptedPlayer("bargaining-bot", seed), name="bob")
            await server.service.wait(match_id)
            await asyncio.sleep(0.1)
            table = (await pb_grpc.ArenaStub(b).GetRatings(pb.GetRatingsRequest(game_id="bargaining-v1", role="*"))).ratings
            assert {r.player for r in table} == {"alice", "bot:bargaining-bot"} and all(r.matches == 3 for r in table)
            record = (await pb_grpc.ArenaStub(b).GetMatch(pb.GetMatchRequest(match_id=match_id)))
            assert [(s.name, s.player) for s in record.seats] == [("bob", "alice"), ("bob", "bot:bargaining-bot")]
            # A seat alice took is hers: bob cannot rejoin it with the token.
            match_id, tokens = await create_match(a, "bargaining-v1", 9, [REMOTE, BOT])
            call = pb_grpc.ArenaStub(a).Play()
            await call.write(pb.PlayRequest(join=pb.Join(match_id=match_id, seat_token=tokens[0])))
            assert (await call.read()).WhichOneof("msg") == "joined"
            call.cancel()
            await asyncio.sleep(0.2)
            stolen = pb_grpc.ArenaStub(b).Play()
            await stolen.write(pb.PlayRequest(join=pb.Join(match_id=match_id, seat_token=tokens[0])))
            assert (await refused(stolen.read())).code() == grpc.StatusCode.PERMISSION_DENIED
            # A revoked key stops working without a restart.
            auth.remove_principal(keys, "bob")
            err = await refused(pb_grpc.ArenaStub(b).ListGames(pb.ListGamesRequest()))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop()


def test_a_server_without_keys_listens_on_loopback_only(tmp_path):
    from typer.testing import CliRunner

    from maro.learner.cli import app

    with pytest.raises(ValueError, match="without a key file"):
        ArenaConfig(host="0.0.0.0", db=str(tmp_path / "m.sqlite"))
    assert ArenaConfig(host="::1").keys is None and ArenaConfig(host="localhost").keys is None
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["arena", "serve", "--host", "0.0.0.0", "--port", "0",
                                                           "--db", str(tmp_path / "m.sqlite")])
    assert result.exit_code == 2 and "without a key file" in " ".join(result.output.split())


def test_the_keys_command_prints_a_key_once_and_stores_its_hash(tmp_path):
    from typer.testing import CliRunner

    from maro.learner.cli import app

    runner = CliRunner(env={"COLUMNS": "200"})
    keys = tmp_path / "keys.toml"
    result = runner.invoke(app, ["arena", "keys", "add", "carol", "--role", "admin", "--keys", str(keys)])
    assert result.exit_code == 0
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("maro_") and key not in keys.read_text() and (keys.stat().st_mode & 0o777) == 0o600
    assert auth.read_key_file(keys) == {"carol": ("admin", auth.hash_key(key))}
    listed = runner.invoke(app, ["arena", "keys", "list", "--keys", str(keys)])
    assert listed.exit_code == 0 and "carol" in listed.output and "admin" in listed.output
    for bad in (["add", "Bad:Name"], ["add", "dave", "--role", "root"]):
        assert runner.invoke(app, ["arena", "keys", *bad, "--keys", str(keys)]).exit_code == 2
    keys.write_text('[principals.x]\nrole = "player"\nkey = "maro_plaintext"\n')
    with pytest.raises(auth.KeyFileError, match="never a plain key"):
        auth.read_key_file(keys)
