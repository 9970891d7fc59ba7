"""Running the arena for real: lobby, spectators, listing, ratings, model seats, health,
reflection, TLS, metrics, limits and bad input, all over gRPC on loopback."""

import asyncio
import datetime
from types import SimpleNamespace

import grpc
import pytest
from fastapi import FastAPI, Request
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from maro.agents.bots import ScriptedPlayer
from maro.agents.client import create_match, find_seat, open_channel, play_seat
from maro.arena.match.runner import RunnerConfig
from maro.arena.v1 import arena_pb2 as pb
from maro.arena.v1 import arena_pb2_grpc as pb_grpc
from tests.helpers import arena_with_stub, free_port, serve_in_thread, start_arena

BOT = {"kind": "bot", "bot": "bargaining-bot"}


started = start_arena


@pytest.fixture
async def arena(tmp_path):
    async with arena_with_stub(tmp_path) as server:
        yield server


async def test_lobby_gives_open_seats_and_waits_for_new_ones(arena):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await find_seat(arena.channel, "bargaining-v1")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    waiting = asyncio.create_task(find_seat(arena.channel, "bargaining-v1", wait=True, timeout=10))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    match_id, tokens = await create_match(arena.channel, "bargaining-v1", 2, [{"kind": "open"}, BOT])
    assert tokens == {}  # an open seat's token goes through the lobby, not to the creator
    found_match, seat, token = await waiting
    assert (found_match, seat) == (match_id, 0)
    result = await play_seat(arena.channel, match_id, token, ScriptedPlayer("bargaining-bot"), name="alice")
    assert result.outcome is not None
    assert arena.store.get_match(match_id).seats[0].name == "alice"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await find_seat(arena.channel, "chess-v9")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_spectators_see_public_events_live_and_never_private_ones(arena):
    match_id, tokens = await create_match(arena.channel, "bargaining-v1", 4, [{"kind": "remote"}, BOT])
    stream = arena.stub.Spectate(pb.SpectateRequest(match_id=match_id))
    play = asyncio.create_task(play_seat(arena.channel, match_id, tokens[0], ScriptedPlayer("bargaining-bot")))
    seen = [item async for item in stream]
    await play
    texts = [s.event.text for s in seen if s.WhichOneof("msg") == "event"]
    assert texts[0].startswith("Bargaining over one item") and any("offers" in t for t in texts)
    assert not any("Your cost" in t or "Your value" in t for t in texts)
    assert seen[-1].WhichOneof("msg") == "end" and len(seen[-1].end.outcomes) == 2
    replay = [s async for s in arena.stub.Spectate(pb.SpectateRequest(match_id=match_id))]
    assert [s.event.text for s in replay[:-1]] == texts  # after the end: the same public record


async def test_list_matches_filters_and_live_records_hide_private_facts(arena):
    done, tokens = await create_match(arena.channel, "bargaining-v1", 1, [{"kind": "remote"}, BOT])
    await play_seat(arena.channel, done, tokens[0], ScriptedPlayer("bargaining-bot"))
    live, _ = await create_match(arena.channel, "bargaining-v1", 2, [{"kind": "remote"}, BOT])
    listed = (await arena.stub.ListMatches(pb.ListMatchesRequest(game_id="bargaining-v1"))).matches
    assert [m.match_id for m in listed] == [live, done]  # newest first
    finished = (await arena.stub.ListMatches(pb.ListMatchesRequest(status="finished"))).matches
    assert [m.match_id for m in finished] == [done] and finished[0].seats[0].role == "seller"
    future = int((datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).timestamp() * 1000)
    assert not (await arena.stub.ListMatches(pb.ListMatchesRequest(since_unix_ms=future))).matches
    assert len((await arena.stub.ListMatches(pb.ListMatchesRequest(limit=1))).matches) == 1
    record = await arena.stub.GetMatch(pb.GetMatchRequest(match_id=live))
    assert all(not e.private_to for e in record.events) and not any(s.role for s in record.seats)
    full = await arena.stub.GetMatch(pb.GetMatchRequest(match_id=done))
    assert any(e.private_to for e in full.events)


async def test_ratings_follow_finished_matches(arena):
    for seed in range(3):
        match_id, tokens = await create_match(arena.channel, "bargaining-v1", seed,
                                              [{"kind": "remote", "name": "alice"}, BOT])
        await play_seat(arena.channel, match_id, tokens[0], ScriptedPlayer("bargaining-bot", seed))
    await asyncio.sleep(0.1)
    overall = (await arena.stub.GetRatings(pb.GetRatingsRequest(game_id="bargaining-v1", role="*"))).ratings
    assert {r.player for r in overall} == {"alice", "bargaining-bot"}
    assert all(r.matches == 3 and r.sigma < 8.34 for r in overall)
    roles = (await arena.stub.GetRatings(pb.GetRatingsRequest(game_id="bargaining-v1", role="seller"))).ratings
    assert [r.player for r in roles] == ["alice"]


@pytest.fixture
def fake_model_server():
    """An OpenAI-compatible endpoint on loopback whose 'model' always offers 120."""
    app = FastAPI()
    app.state.keys = []

    @app.post("/v1/chat/completions")
    async def chat(body: dict, request: Request):
        app.state.keys.append(request.headers.get("authorization", ""))
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "[Offer: 120]"}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}}

    with serve_in_thread(app) as url:
        yield SimpleNamespace(url=f"{url}/v1", root=url, keys=app.state.keys)


async def test_model_seats_by_registry_name_use_the_servers_keys(tmp_path, fake_model_server, monkeypatch):
    registry = tmp_path / "models.toml"
    registry.write_text(f'[models.fake]\nmodel = "openai/fake"\napi_base = "{fake_model_server.url}"\n'
                        'api_key_env = "MARO_TEST_FAKE_KEY"\n'
                        '[models.keyless]\nmodel = "openai/gpt-4o-mini"\napi_key_env = "MARO_TEST_UNSET_KEY"\n')
    monkeypatch.setenv("MARO_TEST_FAKE_KEY", "sk-server-side")
    monkeypatch.delenv("MARO_TEST_UNSET_KEY", raising=False)
    # A model seat's first turn imports and starts LiteLLM: no short deadline on a busy machine.
    server = await started(tmp_path, registry=registry, runner=RunnerConfig(turn_timeout_s=60, join_timeout_s=10))
    try:
        async with open_channel(server.address) as channel:
            match_id, _ = await create_match(channel, "bargaining-v1", 3, [{"kind": "model", "model": "fake"}, BOT])
            await server.service.wait(match_id)
            record = server.store.get_match(match_id)
            assert record.status == "finished" and record.seats[0].name == "model:fake"
            mine = [b for b in server.store.behaviors([match_id]) if b.seat == 0]
            assert mine and all(b.completion == "[Offer: 120]" for b in mine)
            assert fake_model_server.keys and set(fake_model_server.keys) == {"Bearer sk-server-side"}
            # A named model whose key this server lacks is refused before the match exists.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await create_match(channel, "bargaining-v1", 3, [{"kind": "model", "model": "keyless"}, BOT])
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "seat 0" in err.value.details() and "MARO_TEST_UNSET_KEY" in err.value.details()
            # With a registry the server's keys go to its named models only: no bare provider strings.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await create_match(channel, "bargaining-v1", 3, [{"kind": "model", "model": "openai/gpt-4o"}, BOT])
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "not in this server's registry; it runs fake, keyless" in err.value.details()
            assert len(server.store.list_matches()) == 1
    finally:
        await server.stop()


async def test_health_and_reflection(arena):
    health = health_pb2_grpc.HealthStub(arena.channel)
    for service in ("", "maro.arena.v1.Arena"):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(arena.channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = [s.name async for r in responses for s in r.list_services_response.service]
    assert "maro.arena.v1.Arena" in names and "grpc.health.v1.Health" in names


async def test_tls_with_a_self_signed_certificate(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(pem)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server = await started(tmp_path, host="localhost", tls_cert=tmp_path / "cert.pem", tls_key=tmp_path / "key.pem")
    try:
        async with open_channel(server.address, tls_ca=pem) as channel:
            games = await pb_grpc.ArenaStub(channel).ListGames(pb.ListGamesRequest())
            assert "bargaining-v1" in [g.id for g in games.games]
        async with open_channel(server.address) as plain:  # no TLS: refused
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await pb_grpc.ArenaStub(plain).ListGames(pb.ListGamesRequest(), timeout=3)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop()


async def test_metrics_count_actions_rejections_and_deadlines(arena):
    match_id, tokens = await create_match(arena.channel, "bargaining-v1", 4, [{"kind": "remote"}, BOT])

    class Clumsy(ScriptedPlayer):
        async def act(self, prompt, rejection):
            sub = await super().act(prompt, rejection)
            return sub if prompt.attempt else type(sub)(sub.turn, "hmm")

    await play_seat(arena.channel, match_id, tokens[0], Clumsy("bargaining-bot"))
    m = arena.metrics
    labels = {"game": "bargaining-v1"}
    assert m.sample("maro_rejections_total", labels) >= 1
    assert m.sample("maro_actions_total", labels) >= 2
    assert m.sample("maro_turn_latency_seconds_count", labels) == m.sample("maro_actions_total", labels)
    assert m.sample("maro_matches_ended_total", {"status": "finished"}) == 1
    assert m.sample("maro_matches_live") == 0


async def test_stream_limit_per_client(tmp_path):
    server = await started(tmp_path, max_streams_per_client=1)
    try:
        async with open_channel(server.address) as channel:
            match_id, tokens = await create_match(channel, "bargaining-v1", 1, [{"kind": "remote"}, {"kind": "remote"}])
            stub = pb_grpc.ArenaStub(channel)
            first = stub.Play()
            await first.write(pb.PlayRequest(join=pb.Join(match_id=match_id, seat_token=tokens[0])))
            await first.read()
            second = stub.Play()
            await second.write(pb.PlayRequest(join=pb.Join(match_id=match_id, seat_token=tokens[1])))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await second.read()
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            first.cancel()
    finally:
        await server.stop()


async def test_flooding_client_is_cut_off_and_other_matches_go_on(arena):
    victim, tokens = await create_match(arena.channel, "bargaining-v1", 1, [{"kind": "remote"}, {"kind": "remote"}])
    calm, calm_tokens = await create_match(arena.channel, "bargaining-v1", 2, [{"kind": "remote"}, BOT])
    calm_play = asyncio.create_task(play_seat(arena.channel, calm, calm_tokens[0], ScriptedPlayer("bargaining-bot")))
    flood = arena.stub.Play()
    await flood.write(pb.PlayRequest(join=pb.Join(match_id=victim, seat_token=tokens[1])))

    async def read_until_closed():
        with pytest.raises(grpc.aio.AioRpcError) as err:
            while (await flood.read()) is not grpc.aio.EOF:
                pass
        return err.value

    reader = asyncio.create_task(read_until_closed())
    for _ in range(100):  # five times the burst the stream is allowed
        if reader.done():
            break
        try:
            await flood.write(pb.PlayRequest(action=pb.Action(turn=0, text="[Offer: 1]")))
        except grpc.aio.AioRpcError:
            break  # closed by the server: its status comes with the read
    error = await reader
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "requests per second" in error.details()
    assert (await calm_play).outcome is not None
    assert arena.store.behaviors([victim]) == []  # nothing of the flood reached the store


async def test_oversized_and_malformed_messages_get_precise_status(tmp_path):
    server = await started(tmp_path, max_message_bytes=64 * 1024)
    try:
        async with open_channel(server.address) as channel:
            stub = pb_grpc.ArenaStub(channel)
            big = pb.CreateMatchRequest(game_id="bargaining-v1", params_json='{"x": "' + "a" * 100_000 + '"}')
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.CreateMatch(big)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            raw = channel.unary_unary("/maro.arena.v1.Arena/CreateMatch")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await raw(b"\xff\xff\xff\x07garbage")
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed" in err.value.details()
            raw_play = channel.stream_stream("/maro.arena.v1.Arena/Play")
            call = raw_play()
            await call.write(b"\x0a\xff\xff\xff\xff\x0f")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call.read()
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            # the server is unharmed
            assert (await stub.ListGames(pb.ListGamesRequest())).games
    finally:
        await server.stop()


async def test_tokens_are_bound_to_their_match_and_dead_after_the_end(arena):
    first, tokens = await create_match(arena.channel, "bargaining-v1", 1, [{"kind": "remote"}, BOT])
    other, other_tokens = await create_match(arena.channel, "bargaining-v1", 2, [{"kind": "remote"}, BOT])
    for match_id, token, code in [(other, tokens[0], grpc.StatusCode.PERMISSION_DENIED)]:
        call = arena.stub.Play()
        await call.write(pb.PlayRequest(join=pb.Join(match_id=match_id, seat_token=token)))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() == code
    await play_seat(arena.channel, first, tokens[0], ScriptedPlayer("bargaining-bot"))
    call = arena.stub.Play()
    await call.write(pb.PlayRequest(join=pb.Join(match_id=first, seat_token=tokens[0])))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "finished" in err.value.details()
    assert arena.store.get_match(other).status in ("created", "running")


async def test_metrics_endpoint_serves_prometheus_text(tmp_path):
    import httpx

    port = free_port()
    server = await started(tmp_path, metrics_port=port)
    try:
        async with open_channel(server.address) as channel:
            match_id, tokens = await create_match(channel, "bargaining-v1", 1, [{"kind": "remote"}, BOT])
            await play_seat(channel, match_id, tokens[0], ScriptedPlayer("bargaining-bot"))
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        assert 'maro_matches_ended_total{status="finished"} 1.0' in text
        assert "maro_turn_latency_seconds_bucket" in text
    finally:
        await server.stop()


def test_json_logs_carry_match_fields(capsys):
    import json
    import logging

    from maro.arena.logs import configure

    configure(logging.INFO, "json")
    try:
        logging.getLogger("maro.test").info("match ended", extra={"match_id": "m1", "status": "finished"})
        line = capsys.readouterr().err.strip().splitlines()[-1]
        entry = json.loads(line)
        assert entry["msg"] == "match ended" and entry["match_id"] == "m1" and entry["status"] == "finished"
        assert entry["level"] == "info" and entry["ts"].endswith("Z")
    finally:
        logging.getLogger().handlers[:] = []
