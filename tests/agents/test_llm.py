"""The one LiteLLM call: retries with backoff on transient errors only, timeouts, token accounting."""

import asyncio

import litellm
import pytest

from maro.agents.llm import ModelCallError, ModelSettings, Usage, complete, is_transient

HOSTED = ModelSettings(model="openai/gpt-4o-mini", api_key="sk-test", logprobs=False, backoff_s=0.01)
MESSAGES = [{"role": "user", "content": "hi"}]


def failing_then(monkeypatch, errors):
    """litellm.acompletion raising `errors` in turn, then answering through LiteLLM's mock path."""
    real = litellm.acompletion
    calls = []

    async def fake(**kwargs):
        calls.append(kwargs)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return await real(**kwargs, mock_response="[Accept]")

    monkeypatch.setattr(litellm, "acompletion", fake)
    return calls


def rate_limited():
    return litellm.RateLimitError(message="slow down", model="gpt-4o-mini", llm_provider="openai")


async def test_mock_response_counts_tokens_into_the_usage():
    usage = Usage()
    result = await complete(MESSAGES, HOSTED, usage=usage, mock_response="[Offer: 50]")
    assert result.text == "[Offer: 50]" and result.retries == 0
    assert usage.calls == 1 and usage.completion_tokens == result.completion_tokens > 0 and usage.errors == 0


async def test_transient_errors_are_retried_with_backoff(monkeypatch):
    calls = failing_then(monkeypatch, [rate_limited(), litellm.APIConnectionError(
        message="reset", model="gpt-4o-mini", llm_provider="openai")])
    usage = Usage()
    result = await complete(MESSAGES, HOSTED, usage=usage)
    assert result.text == "[Accept]" and result.retries == 2 and len(calls) == 3
    assert usage.retries == 2 and usage.errors == 0
    assert all(c["num_retries"] == 0 and c["max_retries"] == 0 for c in calls)  # no second retry layer


async def test_transient_errors_give_up_after_the_retries(monkeypatch):
    calls = failing_then(monkeypatch, [rate_limited()] * 5)
    usage = Usage()
    with pytest.raises(ModelCallError, match="after 3 attempts: RateLimitError") as caught:
        await complete(MESSAGES, HOSTED.model_copy(update={"num_retries": 2}), usage=usage)
    assert caught.value.transient and caught.value.attempts == 3 and len(calls) == 3
    assert usage.errors == 1 and "RateLimitError" in usage.error_messages[-1]


async def test_permanent_errors_are_not_retried(monkeypatch):
    calls = failing_then(monkeypatch, [litellm.AuthenticationError(message="bad key", model="gpt-4o-mini",
                                                                   llm_provider="openai")])
    with pytest.raises(ModelCallError, match="AuthenticationError") as caught:
        await complete(MESSAGES, HOSTED)
    assert not caught.value.transient and len(calls) == 1


async def test_a_hung_call_times_out_and_counts_as_transient(monkeypatch):
    async def hang(**kwargs):
        await asyncio.sleep(60)

    monkeypatch.setattr(litellm, "acompletion", hang)
    monkeypatch.setattr("maro.agents.llm._HARD_LIMIT_MARGIN_S", 0.0)
    settings = HOSTED.model_copy(update={"timeout_s": 0.05, "num_retries": 1})
    with pytest.raises(ModelCallError, match="after 2 attempts: TimeoutError") as caught:
        await complete(MESSAGES, settings)
    assert caught.value.transient


def test_error_classes():
    assert is_transient(rate_limited())
    assert is_transient(litellm.Timeout(message="t", model="m", llm_provider="openai"))
    assert is_transient(litellm.InternalServerError(message="boom", model="m", llm_provider="openai"))
    assert not is_transient(litellm.BadRequestError(message="bad", model="m", llm_provider="openai"))
    assert not is_transient(litellm.NotFoundError(message="no such model", model="m", llm_provider="openai"))
    assert not is_transient(ValueError("a bug"))


def test_usage_adds_up():
    a, b = Usage(calls=2, prompt_tokens=10, completion_tokens=3), Usage(calls=1, prompt_tokens=5, errors=1)
    a.add(b)
    assert (a.calls, a.prompt_tokens, a.completion_tokens, a.errors, a.total_tokens) == (3, 15, 3, 1, 18)
