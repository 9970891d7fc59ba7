"""Tests for switching model servers by configuration: LiteLLM names and the adapter-publishing calls."""

import json
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from maro.learner.serving.client import ModelServerConfig, ModelServerError


def _recording(responses=None):
    """An httpx client over MockTransport that records (path, json body, headers) of every request."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.url.path, body, request.headers.get("authorization")))
        status, payload = (responses or {}).get((request.url.path, (body or {}).get("lora_name")), (200, {}))
        return httpx.Response(status, json=payload) if isinstance(payload, dict) else httpx.Response(status, text=payload)

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def test_litellm_names_and_api_base_are_the_same_shape_for_both_kinds():
    for kind in ("local", "vllm"):
        config = ModelServerConfig(kind=kind, base_url="http://models:8000/", served_name="smollm2")
        assert config.litellm_model() == "openai/smollm2"
        assert config.litellm_model("v0003") == "openai/smollm2@v0003"
        assert config.api_base() == "http://models:8000/v1"


def test_unknown_kind_or_key_is_rejected():
    with pytest.raises(ValidationError):
        ModelServerConfig(kind="tgi")
    with pytest.raises(ValidationError):
        ModelServerConfig(url="http://x")


def test_local_publish_asks_the_server_to_reload():
    client, seen = _recording({("/v1/adapters/reload", None): (200, {"adapter": "v0004", "model": "smollm2@v0004"})})
    name = ModelServerConfig().publish_adapter("v0004", Path("/runs/adapters/v0004"), client=client)
    assert name == "smollm2@v0004"
    assert seen == [("/v1/adapters/reload", None, None)]


def test_vllm_publish_loads_the_pinned_version_then_moves_the_bare_name_in_place():
    client, seen = _recording()
    config = ModelServerConfig(kind="vllm", base_url="http://vllm:8000", api_key="k")
    assert config.publish_adapter("v0004", Path("/adapters/v0004"), client=client) == "smollm2@v0004"
    assert seen == [
        ("/v1/load_lora_adapter", {"lora_name": "smollm2@v0004", "lora_path": "/adapters/v0004"}, "Bearer k"),
        ("/v1/load_lora_adapter", {"lora_name": "smollm2", "lora_path": "/adapters/v0004", "load_inplace": True},
         "Bearer k"),
    ]


def test_vllm_republishing_a_loaded_version_still_moves_the_alias():
    already = (400, "The lora adapter 'smollm2@v0004' has already been loaded.")
    client, seen = _recording({("/v1/load_lora_adapter", "smollm2@v0004"): already})
    ModelServerConfig(kind="vllm").publish_adapter("v0004", Path("/a/v0004"), client=client)
    assert [body["lora_name"] for _, body, _ in seen] == ["smollm2@v0004", "smollm2"]


def test_vllm_refusal_raises_with_the_servers_message():
    refused = (404, "runtime LoRA updating is disabled")
    client, _ = _recording({("/v1/load_lora_adapter", "smollm2@v0001"): refused})
    with pytest.raises(ModelServerError, match="disabled"):
        ModelServerConfig(kind="vllm").publish_adapter("v0001", Path("/a/v0001"), client=client)


def test_vllm_unload_drops_the_pinned_name_and_local_does_nothing():
    client, seen = _recording()
    ModelServerConfig(kind="vllm").unload_adapter("v0001", client=client)
    ModelServerConfig(kind="local").unload_adapter("v0001", client=client)
    assert seen == [("/v1/unload_lora_adapter", {"lora_name": "smollm2@v0001"}, None)]


def test_local_publish_against_the_real_server(tiny_model_dir, tmp_path):
    from tests.helpers import model_server, save_tiny_adapter

    with model_server(model_dir=tiny_model_dir, adapters_dir=tmp_path, reload_interval_s=60) as url:
        save_tiny_adapter(tiny_model_dir, tmp_path / "v0001", seed=0)
        (tmp_path / "LATEST").write_text("v0001\n")
        config = ModelServerConfig(base_url=url)
        assert config.publish_adapter("v0001", tmp_path / "v0001") == "smollm2@v0001"
        reply = httpx.post(f"{config.api_base()}/chat/completions", json={
            "model": config.litellm_model().split("/", 1)[1], "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 2}).json()
        assert reply["model"] == "smollm2@v0001"
