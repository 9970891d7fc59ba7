"""Fixtures of the agent tests: the tiny model behind the real local model server (the arena is in tests/conftest.py)."""

import pytest

from tests.helpers import model_server, save_tiny_adapter


@pytest.fixture(scope="session")
def tiny_server(tiny_model_dir, tmp_path_factory):
    """The tiny model served with one published adapter, v0003."""
    adapters = tmp_path_factory.mktemp("adapters")
    save_tiny_adapter(tiny_model_dir, adapters / "v0003", seed=3)
    with model_server(model_dir=tiny_model_dir, adapters_dir=adapters, batch_wait_ms=20, max_batch_size=8) as url:
        yield url


@pytest.fixture
def tiny_registry(tiny_server, tmp_path):
    """A registry file naming the served tiny model `tiny` (newest adapter, short replies)."""
    path = tmp_path / "models.toml"
    path.write_text(f'[models.tiny]\nmodel = "openai/smollm2"\napi_base = "{tiny_server}/v1"\nmax_tokens = 8\n')
    return path
