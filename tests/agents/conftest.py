"""Fixtures of the agent tests: an arena on loopback, the tiny model behind the real local model server."""

import contextlib
import threading
import time

import pytest

from maro.arena.server import ArenaConfig, ArenaServer
from maro.learner.selfplay import free_port


@pytest.fixture
async def arena(tmp_path):
    server = ArenaServer(ArenaConfig(port=0, db=str(tmp_path / "m.sqlite")))
    await server.start()
    yield server
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


@contextlib.contextmanager
def local_model_server(model_dir, adapters_dir=None):
    """`maro model serve`'s app on a loopback port in a thread; yields the root URL."""
    import uvicorn

    from maro.learner.serving import ServeConfig, create_app

    config = ServeConfig(model_dir=model_dir, adapters_dir=adapters_dir, port=free_port(), batch_wait_ms=20,
                         max_batch_size=8)
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=config.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "model server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def tiny_server(tiny_model_dir, tmp_path_factory):
    """The tiny model served with one published adapter, v0003."""
    adapters = tmp_path_factory.mktemp("adapters")
    save_tiny_adapter(tiny_model_dir, adapters / "v0003", seed=3)
    with local_model_server(tiny_model_dir, adapters) as url:
        yield url
