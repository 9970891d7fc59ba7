"""Tests for streaming, cancellation, bad input and adapter reloads under load, through a real server."""

import asyncio
import json
import time

import httpx
import pytest

from tests.helpers import model_server, save_tiny_adapter
from tests.learner.test_serving import _chat

URL = "/v1/chat/completions"


@pytest.fixture(scope="module")
def base_url(tiny_model_dir):
    with model_server(model_dir=tiny_model_dir, batch_wait_ms=20, max_batch_size=8, max_queue=64) as url:
        yield url


def _events(lines) -> list:
    data = [line[len("data: ") :] for line in lines if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


def test_stream_chunks_add_up_to_the_plain_completion(base_url):
    greedy = _chat(temperature=0, max_tokens=8, logprobs=True, top_logprobs=1)
    plain = httpx.post(f"{base_url}{URL}", json=greedy).json()["choices"][0]
    with httpx.stream("POST", f"{base_url}{URL}", json={**greedy, "stream": True,
                                                         "stream_options": {"include_usage": True}}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        chunks = _events(list(r.iter_lines()))
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "smollm2@base" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    parts = [c["choices"][0] for c in chunks if c["choices"]]
    assert "".join(p["delta"].get("content", "") for p in parts) == plain["message"]["content"]
    assert [t for p in parts for t in p.get("token_ids", [])] == plain["token_ids"]
    entries = [e for p in parts if p["logprobs"] for e in p["logprobs"]["content"]]
    assert [e["logprob"] for e in entries] == pytest.approx([e["logprob"] for e in plain["logprobs"]["content"]], abs=1e-4)
    assert parts[-1]["finish_reason"] == plain["finish_reason"]
    assert chunks[-1]["usage"]["completion_tokens"] == len(plain["token_ids"])


def test_stream_with_n_and_a_stop_string_never_leaks_the_stop(base_url):
    plain = httpx.post(f"{base_url}{URL}", json=_chat(temperature=0, max_tokens=8)).json()["choices"][0]
    stop = plain["message"]["content"].strip()[1:3] or "\n"
    body = _chat(temperature=0, max_tokens=8, stop=[stop], n=2, stream=True)
    with httpx.stream("POST", f"{base_url}{URL}", json=body) as r:
        chunks = _events(list(r.iter_lines()))
    for index in (0, 1):
        parts = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        text = "".join(p["delta"].get("content", "") for p in parts)
        assert stop not in text and plain["message"]["content"].startswith(text)
        assert parts[-1]["finish_reason"] == "stop"


async def test_litellm_streams_from_the_server(base_url):
    import litellm

    stream = await litellm.acompletion(model="openai/smollm2", api_base=f"{base_url}/v1", api_key="x", stream=True,
                                       messages=[{"role": "user", "content": "Hello"}], max_tokens=6, temperature=0)
    pieces = [c.choices[0].delta.content or "" async for c in stream]
    plain = httpx.post(f"{base_url}{URL}", json={**_chat(temperature=0, max_tokens=6),
                                                 "messages": [{"role": "user", "content": "Hello"}]}).json()
    assert "".join(pieces) == plain["choices"][0]["message"]["content"]


async def test_client_that_leaves_mid_stream_frees_its_row_and_others_are_served(base_url):
    long = _chat(max_tokens=1500, ignore_eos=True, stream=True)
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        before = (await client.get("/v1/stats")).json()
        others = asyncio.gather(*[client.post(URL, json=_chat(max_tokens=30, ignore_eos=True)) for _ in range(3)])
        async with client.stream("POST", URL, json=long) as r:
            seen = 0
            async for line in r.aiter_lines():
                seen += line.startswith("data: ")
                if seen > 5:
                    break  # leaving the block closes the connection mid-generation
        replies = await others
        after = await _wait_stats(client, lambda s: s["cancelled"] > before["cancelled"] and s["running"] == 0)
    assert all(r.status_code == 200 and len(r.json()["choices"][0]["token_ids"]) == 30 for r in replies)
    assert after["tokens"] - before["tokens"] < 1000  # the long row stopped well before its 1500 tokens


async def test_client_that_times_out_on_a_plain_request_frees_its_row(base_url):
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        before = (await client.get("/v1/stats")).json()
        with pytest.raises(httpx.ReadTimeout):
            await client.post(URL, json=_chat(max_tokens=1500, ignore_eos=True), timeout=0.5)
        after = await _wait_stats(client, lambda s: s["cancelled"] > before["cancelled"] and s["running"] == 0)
        ok = await client.post(URL, json=_chat())
    assert ok.status_code == 200
    assert after["tokens"] - before["tokens"] < 1000


async def _wait_stats(client, ready, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        stats = (await client.get("/v1/stats")).json()
        if ready(stats):
            return stats
        assert time.monotonic() < deadline, stats
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("content, status, code", [
    (b"{not json", 400, "invalid_request"),
    (json.dumps(_chat(max_tokens=10**9)).encode(), 400, "context_length_exceeded"),
    (json.dumps(_chat(messages=[{"role": "user", "content": "word " * 3000}])).encode(), 400, "context_length_exceeded"),
    (json.dumps(_chat(model="smollm2@v9999")).encode(), 404, "model_not_found"),
    (json.dumps(_chat(model="nobody")).encode(), 404, "model_not_found"),
])
async def test_bad_requests_get_openai_errors_while_the_batch_serves_others(base_url, content, status, code):
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        good = [client.post(URL, json=_chat(max_tokens=20, ignore_eos=True)) for _ in range(3)]
        bad = client.post(URL, content=content, headers={"content-type": "application/json"})
        *replies, wrong = await asyncio.gather(*good, bad)
    assert wrong.status_code == status
    error = wrong.json()["error"]
    assert error["code"] == code and error["type"] in ("invalid_request_error",) and error["message"]
    assert all(r.status_code == 200 and len(r.json()["choices"][0]["token_ids"]) == 20 for r in replies)


async def test_new_adapter_loads_without_failing_requests_in_flight(tiny_model_dir, tmp_path):
    with model_server(model_dir=tiny_model_dir, adapters_dir=tmp_path, reload_interval_s=60, batch_wait_ms=0) as url:
        greedy = _chat(temperature=0, max_tokens=300, ignore_eos=True)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            reference = (await client.post(URL, json=greedy)).json()["choices"][0]["token_ids"]
            in_flight = asyncio.ensure_future(asyncio.gather(*[client.post(URL, json=greedy) for _ in range(3)]))
            await _wait_stats(client, lambda s: s["running"] == 3)
            save_tiny_adapter(tiny_model_dir, tmp_path / "v0001", seed=0)
            (tmp_path / "LATEST").write_text("v0001\n")
            assert (await client.post("/v1/adapters/reload")).json()["model"] == "smollm2@v0001"
            newer = await client.post(URL, json=_chat(temperature=0, max_tokens=6))
            replies = await in_flight
    assert newer.json()["model"] == "smollm2@v0001"
    for reply in replies:  # admitted under the base model, they finish on it, token for token
        assert reply.status_code == 200 and reply.json()["model"] == "smollm2@base"
        assert reply.json()["choices"][0]["token_ids"] == reference
