"""Tests for the OpenAI-compatible model server on the tiny model."""

import asyncio
import time

import httpx
import pytest
import torch

from tests.helpers import model_server, save_tiny_adapter


@pytest.fixture(scope="module")
def base_url(tiny_model_dir):
    with model_server(model_dir=tiny_model_dir, batch_wait_ms=150, max_batch_size=8) as url:
        yield url


def _chat(**extra):
    return {"model": "smollm2", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 6, **extra}


def test_chat_completion_returns_aligned_logprobs(base_url):
    r = httpx.post(f"{base_url}/v1/chat/completions", json=_chat(logprobs=True, top_logprobs=2, temperature=0.8))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "smollm2@base"
    choice = body["choices"][0]
    assert isinstance(choice["message"]["content"], str) and choice["message"]["role"] == "assistant"
    entries = choice["logprobs"]["content"]
    assert len(entries) == len(choice["token_ids"]) == body["usage"]["completion_tokens"] > 0
    assert all(e["logprob"] <= 0 for e in entries)
    assert all(len(e["top_logprobs"]) == 2 for e in entries)
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


def test_logprobs_match_a_forward_pass(base_url, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    r = httpx.post(f"{base_url}/v1/chat/completions", json=_chat(logprobs=True, temperature=0.5, seed=7))
    choice = r.json()["choices"][0]
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    prompt = tok.apply_chat_template(_chat()["messages"], add_generation_prompt=True, return_dict=True)["input_ids"]
    ids = torch.tensor([list(prompt) + choice["token_ids"]])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1] / 0.5
    expected = logits.log_softmax(-1).gather(1, ids[0, len(prompt) :, None]).squeeze(1)
    got = torch.tensor([e["logprob"] for e in choice["logprobs"]["content"]])
    assert torch.allclose(got, expected, atol=1e-3)


def test_seeded_requests_repeat_and_n_gives_several_choices(base_url):
    first = httpx.post(f"{base_url}/v1/chat/completions", json=_chat(seed=11, n=3)).json()
    again = httpx.post(f"{base_url}/v1/chat/completions", json=_chat(seed=11, n=3)).json()
    assert len(first["choices"]) == 3
    assert [c["token_ids"] for c in first["choices"]] == [c["token_ids"] for c in again["choices"]]


def test_stop_string_cuts_text_and_ends_row(base_url):
    # Greedy text of the tiny model is fixed; stop on its second character.
    plain = httpx.post(f"{base_url}/v1/chat/completions", json=_chat(temperature=0, max_tokens=8)).json()
    text = plain["choices"][0]["message"]["content"]
    stop = text.strip()[1:3] if len(text.strip()) > 2 else text[1:2]
    cut = httpx.post(f"{base_url}/v1/chat/completions", json=_chat(temperature=0, max_tokens=8, stop=[stop], logprobs=True)).json()
    choice = cut["choices"][0]
    assert stop not in choice["message"]["content"]
    assert text.startswith(choice["message"]["content"])
    assert choice["finish_reason"] == "stop"
    assert len(choice["token_ids"]) == len(choice["logprobs"]["content"]) < 8
    assert choice["token_ids"] == plain["choices"][0]["token_ids"][: len(choice["token_ids"])]
    # vLLM's include_stop_str_in_output: the same tokens, the text up to and with the stop string.
    kept = httpx.post(f"{base_url}/v1/chat/completions", json=_chat(
        temperature=0, max_tokens=8, stop=[stop], logprobs=True, include_stop_str_in_output=True)).json()["choices"][0]
    assert kept["message"]["content"] == choice["message"]["content"] + stop
    assert kept["token_ids"] == choice["token_ids"] and kept["finish_reason"] == "stop"


def test_models_lists_served_names(base_url):
    ids = [m["id"] for m in httpx.get(f"{base_url}/v1/models").json()["data"]]
    assert ids[:2] == ["smollm2", "smollm2@base"]
    assert httpx.get(f"{base_url}/health").json()["status"] == "ok"


@pytest.mark.parametrize("body", [
    {"model": "smollm2"},
    {"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "temperature": 5},
    {"model": "smollm2", "messages": [{"role": "wizard", "content": "x"}]},
    {"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
    {"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]},
])
def test_invalid_body_is_400_with_openai_error(base_url, body):
    r = httpx.post(f"{base_url}/v1/chat/completions", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_unknown_model_is_404(base_url):
    r = httpx.post(f"{base_url}/v1/chat/completions", json=_chat(model="gpt-9"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert httpx.post(f"{base_url}/v1/chat/completions", json=_chat(model="smollm2@v0042")).status_code == 404


async def test_concurrent_requests_share_a_batch(base_url):
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        before = (await client.get("/v1/stats")).json()
        replies = await asyncio.gather(*[client.post("/v1/chat/completions", json=_chat(temperature=0.7)) for _ in range(6)])
        after = (await client.get("/v1/stats")).json()
    assert all(r.status_code == 200 for r in replies)
    assert after["rows"] - before["rows"] == 6
    assert after["batches"] - before["batches"] < 6
    assert after["max_batch_rows"] >= 2
    # Where the model thread's time went: prompt tokens prefilled, rows decoded, and their seconds.
    assert after["prefill_tokens"] - before["prefill_tokens"] >= 6 * 5
    assert after["decode_rows"] > before["decode_rows"] and after["decode_s"] > before["decode_s"] >= 0
    assert after["prefill_s"] > before["prefill_s"]


async def test_litellm_reaches_the_server_unchanged(base_url):
    import litellm

    response = await litellm.acompletion(
        model="openai/smollm2", api_base=f"{base_url}/v1", api_key="x",
        messages=[{"role": "user", "content": "Hello"}], logprobs=True, max_tokens=8,
    )
    assert isinstance(response.choices[0].message.content, str)
    assert response.model.endswith("smollm2@base")
    assert len(response.choices[0].logprobs.content) == response.usage.completion_tokens


async def test_full_queue_answers_503(tiny_model_dir):
    with model_server(model_dir=tiny_model_dir, max_queue=1, max_batch_size=1, batch_wait_ms=0) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            replies = await asyncio.gather(*[client.post("/v1/chat/completions", json=_chat(max_tokens=32)) for _ in range(8)])
    codes = sorted(r.status_code for r in replies)
    assert 200 in codes and 503 in codes
    assert next(r for r in replies if r.status_code == 503).json()["error"]["code"] == "queue_full"


def test_adapter_hot_reload(tiny_model_dir, tmp_path):
    adapters = tmp_path / "adapters"
    adapters.mkdir()
    with model_server(model_dir=tiny_model_dir, adapters_dir=adapters, reload_interval_s=60) as url:
        greedy = _chat(temperature=0, max_tokens=6)
        base = httpx.post(f"{url}/v1/chat/completions", json=greedy).json()
        assert base["model"] == "smollm2@base"

        save_tiny_adapter(tiny_model_dir, adapters / "v0001", seed=0)
        (adapters / "LATEST").write_text("v0001\n")

        assert httpx.post(f"{url}/v1/adapters/reload").json()["adapter"] == "v0001"
        tuned = httpx.post(f"{url}/v1/chat/completions", json=greedy).json()
        assert tuned["model"] == "smollm2@v0001"
        assert tuned["choices"][0]["token_ids"] != base["choices"][0]["token_ids"]
        again = httpx.post(f"{url}/v1/chat/completions", json={**greedy, "model": "smollm2@base"}).json()
        assert again["model"] == "smollm2@base"
        assert again["choices"][0]["token_ids"] == base["choices"][0]["token_ids"]
        ids = [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]
        assert "smollm2@v0001" in ids


def test_adapter_store_evicts_old_versions_and_reloads_them_on_demand(tiny_model_dir, tmp_path):
    from maro.learner.serving.batch import generate
    from maro.learner.serving.engine import AdapterStore, GenerationEngine, RowRequest

    engine = GenerationEngine(tiny_model_dir)
    store = AdapterStore(engine, tmp_path, max_loaded=1)
    assert store.refresh() is False and store.current is None
    row = RowRequest(engine.encode_chat([{"role": "user", "content": "hi"}]), 0.0, 1.0, 5)
    outs = {}
    for seed, version in enumerate(["v0001", "v0002"]):
        save_tiny_adapter(tiny_model_dir, tmp_path / version, seed)
        (tmp_path / "LATEST").write_text(version)
        assert store.refresh() is True and store.current == version
        outs[version] = generate(engine, [row], version)[0].token_ids
    assert store.loaded() == ["v0002"]
    store.ensure("v0001")  # an evicted version comes back and gives the same answer
    assert generate(engine, [row], "v0001")[0].token_ids == outs["v0001"] != outs["v0002"]
    assert store.versions() == ["v0001", "v0002"]


def test_server_polls_latest_without_being_asked(tiny_model_dir, tmp_path):
    with model_server(model_dir=tiny_model_dir, adapters_dir=tmp_path, reload_interval_s=0.05) as url:
        save_tiny_adapter(tiny_model_dir, tmp_path / "v0003", seed=3)
        (tmp_path / "LATEST").write_text("v0003")
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/health").json()["adapter"] != "v0003":
            assert time.monotonic() < deadline, "LATEST was not picked up"
            time.sleep(0.05)
        reply = httpx.post(f"{url}/v1/chat/completions", json=_chat()).json()
        assert reply["model"] == "smollm2@v0003"
