"""The one place that calls a model: LiteLLM, with timeouts, retries and token accounting."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from maro.arena.records import TokenLogprob

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else importing litellm fetches a cost map


class ModelSettings(BaseModel):
    """Which model to call and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "openai/smollm2"
    """A LiteLLM model string: `openai/<name>` with `api_base` for an OpenAI-compatible server
    (our local model server, vLLM), or a hosted provider's usual string."""
    api_base: str | None = None
    api_key: str | None = None
    """Key for the endpoint; hosted providers read theirs from the environment when unset."""
    temperature: float = Field(0.7, ge=0)
    max_tokens: int = Field(24, gt=0)
    logprobs: bool = True
    """Ask for per-token log-probs (the learner's importance ratios need them)."""
    timeout_s: float = Field(60.0, gt=0)
    num_retries: int = Field(2, ge=0)
    """Retries with backoff inside LiteLLM on connection errors, rate limits and 5xx."""


@dataclass(frozen=True)
class Completion:
    text: str
    logprobs: tuple[TokenLogprob, ...]
    model: str
    prompt_tokens: int
    completion_tokens: int


CompleteFn = Callable[[list[dict], ModelSettings], Awaitable[Completion]]


async def complete(messages: list[dict], settings: ModelSettings, **extra: Any) -> Completion:
    """Call the model once and return its text, per-token log-probs and usage."""
    import litellm

    kwargs: dict[str, Any] = dict(
        model=settings.model, messages=messages, temperature=settings.temperature, max_tokens=settings.max_tokens,
        timeout=settings.timeout_s, num_retries=settings.num_retries, **extra,
    )
    if settings.api_base:
        kwargs["api_base"] = settings.api_base
        kwargs["api_key"] = settings.api_key or "none"  # local servers ignore it; the client needs one
    elif settings.api_key:
        kwargs["api_key"] = settings.api_key
    if settings.logprobs:
        kwargs["logprobs"] = True
    response = await litellm.acompletion(**kwargs)
    choice = response.choices[0]
    usage = getattr(response, "usage", None)
    return Completion(
        text=choice.message.content or "",
        logprobs=_logprobs(choice),
        model=response.model or settings.model,
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
    )


def _logprobs(choice: Any) -> tuple[TokenLogprob, ...]:
    """OpenAI-format log-probs; token ids when the server adds them (ours does), else -1."""
    lp = getattr(choice, "logprobs", None)
    content = getattr(lp, "content", None) if lp is not None else None
    if content is None and isinstance(lp, dict):
        content = lp.get("content")
    if not content:
        return ()
    ids = _field(choice, "token_ids") or _field(lp, "token_ids") or []
    out = []
    for i, item in enumerate(content):
        token = item["token"] if isinstance(item, dict) else item.token
        logprob = item["logprob"] if isinstance(item, dict) else item.logprob
        out.append(TokenLogprob(token, int(ids[i]) if i < len(ids) else -1, float(logprob)))
    return tuple(out)


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None:
        extra = getattr(obj, "model_extra", None) or getattr(obj, "provider_specific_fields", None) or {}
        value = extra.get(name) if isinstance(extra, dict) else None
    return value
