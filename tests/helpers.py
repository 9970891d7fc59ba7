"""Test helpers: real servers on loopback in a thread, and a LoRA adapter for the tiny model."""

import contextlib
import json
import random
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from maro.arena.engine import game_class, game_ids, view_entry


def free_port() -> int:
    """A loopback port nobody holds now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app, timeout_s: float = 30.0):
    """Serve `app` on 127.0.0.1 (a port the OS picks); yields the root URL, stops on exit."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def model_server(**config):
    """`maro model serve`'s app (the given `ServeConfig` fields) in a thread; yields the root URL."""
    from maro.learner.serving.app import ServeConfig, create_app

    with serve_in_thread(create_app(ServeConfig(**config))) as url:
        yield url


async def start_arena(tmp_path, runner=None, registry=None, **overrides):
    """An arena server on a loopback port with a SQLite store in `tmp_path` and short deadlines
    (3 s a turn, 10 s to join) unless `runner` says otherwise; bots for bot seats, and model
    seats from the `registry` file when given; `overrides` are ArenaConfig fields."""
    from maro.agents.seats import ServerSeats
    from maro.arena.match.runner import RunnerConfig
    from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer

    config = ArenaConfig(port=0, db=str(tmp_path / "m.sqlite"),
                         runner=runner or RunnerConfig(turn_timeout_s=3, join_timeout_s=10), **overrides)
    server = ArenaServer(config, seats=ServerSeats.from_registry(registry))
    await server.start()
    return server


@contextlib.asynccontextmanager
async def arena_with_stub(tmp_path, **overrides):
    """`start_arena` with a client channel and stub on it (`server.channel`, `server.stub`), stopped after."""
    from maro.agents.client import open_channel
    from maro.arena.v1 import arena_pb2_grpc as pb_grpc

    server = await start_arena(tmp_path, **overrides)
    try:
        async with open_channel(server.address) as channel:
            server.channel, server.stub = channel, pb_grpc.ArenaStub(channel)
            yield server
    finally:
        await server.stop()


def save_tiny_adapter(tiny_model_dir, folder, seed: int) -> None:
    """A LoRA adapter for the tiny model with visibly non-zero weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_alpha=8))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.add_(torch.randn(param.shape, generator=gen) * 2.0)
    model.save_pretrained(folder)


def make_tiny_model(out_dir: Path, *, seed: int = 0) -> Path:
    """Save a tiny random LlamaForCausalLM with the SmolLM2 tokenizer into `out_dir` (fp32).

    Deterministic from `seed`; used by unit tests in place of the real weights.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from maro.learner.localmodel import tokenizer_dir

    out_dir = Path(out_dir)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir())
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    # A private generator state: seeding the global one would leak into the caller's randomness.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config.pad_token_id = tok.pad_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


# --- the game contract's shared pieces (tests/arena/test_conformance.py, tests/agents/test_bots.py)

SEEDS = range(40)


def variants():
    """(game id, params): each game at its smallest and largest player count."""
    for gid in game_ids():
        cls = game_class(gid)
        counts = sorted({cls.spec.min_players, cls.spec.max_players})
        if cls.players_param is not None:
            for n in counts:
                yield pytest.param(gid, {cls.players_param: n}, id=f"{gid}-{n}p")
        else:
            yield pytest.param(gid, {}, id=gid)


ADAPTED_SEEDS = range(3)
"""Seeds per adapted game (OpenSpiel's, TextArena's): they are many, and their engines are their own."""

TEXTARENA_CONFORMANCE = (
    "KuhnPoker-v0", "SimpleNegotiation-v0", "SecretMafia-v0", "IteratedPrisonersDilemma-v0", "TicTacToe-v0",
    "GameOfPureStrategy-v0", "LiarsDice-v0", "IndianPoker-v0", "SimpleBlindAuction-v0", "TruthAndDeception-v0",
    "ThreePlayerIPD-v0", "IteratedRockPaperScissors-v0", "ConnectFour-v0", "Nim-v0", "Battleship-v0",
)
"""TextArena environments held to the whole contract: some whose legal moves its messages list, some
whose moves our generators spell (`moves.py`), some that take free text."""


def adapted_variants():
    """(game id, params) of every supported OpenSpiel game at its default parameters, and of the
    TextArena environments above at their smallest and largest seat counts."""
    from maro.arena.games.openspiel import supported

    for gid in supported():
        yield pytest.param(gid, {}, id=gid)
    for env_id in TEXTARENA_CONFORMANCE:
        gid = f"textarena:{env_id}"
        spec = game_class(gid).spec
        for n in sorted({spec.min_players, spec.max_players}):
            yield pytest.param(gid, {"players": n}, id=f"{gid}-{n}p")


def seeds_for(game_id: str):
    return ADAPTED_SEEDS if ":" in game_id else SEEDS


def visible_text(game, state, events, observer):
    seen = [e.text + " " + json.dumps(dict(e.data)) for e in events if e.visible_to(observer)]
    obs = game.observe(state, observer)  # its `role` is what the transport tells the player
    return json.dumps(obs.view) + f"\n{view_entry('role', obs.role)}\n" + "\n".join(seen)


def random_match(game, seed, rng=None):
    """Play a match of random legal actions to its end; returns its states and events."""
    rng = rng or random.Random(seed)
    state, events = game.init(seed)
    states = [state]
    while not state.finished:
        state, new = game.step(state, {s: game.random_action(state, s, rng) for s in sorted(game.acting(state))})
        states.append(state)
        events += new
    return states, events
