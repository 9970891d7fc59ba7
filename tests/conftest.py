"""Shared pytest fixtures: offline environment defaults and the tiny local model."""

import os

# Set before any test module imports litellm, transformers or grpc.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "TRL_EXPERIMENTAL_SILENCE": "1",
    "GRPC_VERBOSITY": "ERROR",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_key, _value)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer_dir():
    """The SmolLM2 tokenizer folder (no weights), converted once into the user cache."""
    from maro.learner.localmodel import tokenizer_dir as _tokenizer_dir

    return _tokenizer_dir()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer_dir):
    """A tiny random Llama with the SmolLM2 tokenizer, saved once per test session."""
    from tests.helpers import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"), seed=0)


@pytest.fixture
async def arena(tmp_path):
    """A real arena server on a loopback port with a SQLite store (modules with other needs
    define their own `arena`)."""
    from maro.agents.seats import ServerSeats
    from maro.arena.transport.grpc.server import ArenaConfig, ArenaServer

    server = ArenaServer(ArenaConfig(port=0, db=str(tmp_path / "m.sqlite")), seats=ServerSeats())
    await server.start()
    yield server
    await server.stop()
