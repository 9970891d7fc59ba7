"""The one place that calls a model: LiteLLM, with timeouts, retries with backoff and token accounting."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from maro.arena.store.records import TokenLogprob

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else importing litellm fetches a cost map

log = logging.getLogger(__name__)


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
    """Limit of one call; a call that takes longer counts as a transient failure and is retried."""
    num_retries: int = Field(2, ge=0)
    """Retries of transient failures (timeouts, connection errors, 408/409/429, 5xx) with exponential
    backoff and jitter. Permanent errors (bad key, unknown model, bad request) are not retried."""
    backoff_s: float = Field(0.5, ge=0)
    """First backoff; it doubles per retry (capped at 30 s) and a server's Retry-After is honoured."""
    context_tokens: int | None = Field(None, gt=0)
    """The model's context window, when known: the agent trims its memory to fit in it."""


def endpoint_problem(settings: ModelSettings, timeout_s: float = 5.0) -> str | None:
    """Why the OpenAI-compatible server at `settings.api_base` (ours, vLLM) cannot be reached, or
    None when it answers at all (any status). Hosted providers (no api_base) are not probed. Run
    before a match, so that a server that is down is an error rather than a seat that forfeits."""
    if not settings.api_base:
        return None
    import httpx

    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    try:
        httpx.get(settings.api_base.rstrip("/") + "/models", headers=headers, timeout=timeout_s)
    except httpx.TransportError as exc:
        return (f"no server answers at {settings.api_base} ({type(exc).__name__}); start it with "
                "`maro model serve`, or point the registry entry's api_base at a running server")
    return None


@dataclass(frozen=True)
class Completion:
    text: str
    logprobs: tuple[TokenLogprob, ...]
    model: str
    prompt_tokens: int
    completion_tokens: int
    retries: int = 0
    """Transient failures retried before this answer came."""


CompleteFn = Callable[[list[dict], ModelSettings], Awaitable[Completion]]


class ModelCallError(RuntimeError):
    """A model call that failed for good: a permanent error, or a transient one after every retry."""

    def __init__(self, message: str, *, transient: bool, attempts: int):
        super().__init__(message)
        self.transient, self.attempts = transient, attempts


@dataclass
class Usage:
    """Token accounting of one player in one match (or of anything that adds into it)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    errors: int = 0
    """Calls that failed for good (after their retries)."""
    error_messages: list[str] = field(default_factory=list)

    def record(self, completion: Completion) -> None:
        self.calls += 1
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.retries += completion.retries

    def record_error(self, exc: BaseException) -> None:
        self.calls += 1
        self.errors += 1
        self.error_messages = [*self.error_messages[-4:], str(exc)]  # the last few are enough to explain

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.retries += other.retries
        self.errors += other.errors
        self.error_messages = [*self.error_messages, *other.error_messages][-5:]

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


async def complete(messages: list[dict], settings: ModelSettings, *, usage: Usage | None = None,
                   **extra: Any) -> Completion:
    """Call the model and return its text, per-token log-probs and usage.

    Transient failures are retried here with backoff; what still fails raises ModelCallError.
    LiteLLM's own retries are switched off: they retry every error, permanent ones included, and
    without backoff except on rate limits. `extra` goes to litellm.acompletion as is (tests pass
    `mock_response=`). `usage`, when given, gets the call's tokens or its error.
    """
    import litellm

    litellm.suppress_debug_info = True  # errors are raised with their reason; no banner on stdout
    kwargs: dict[str, Any] = dict(
        model=settings.model, messages=messages, temperature=settings.temperature, max_tokens=settings.max_tokens,
        timeout=settings.timeout_s, num_retries=0, max_retries=0, **extra,
    )
    if settings.api_base:
        kwargs["api_base"] = settings.api_base
        kwargs["api_key"] = settings.api_key or "none"  # local servers ignore it; the client needs one
    elif settings.api_key:
        kwargs["api_key"] = settings.api_key
    if settings.logprobs:
        kwargs["logprobs"] = True
    attempts = settings.num_retries + 1
    for attempt in range(attempts):
        try:
            # The hard limit guards against providers that do not honour `timeout`.
            async with asyncio.timeout(settings.timeout_s + _HARD_LIMIT_MARGIN_S):
                response = await litellm.acompletion(**kwargs)
            break
        except Exception as exc:  # classified below; anything unknown counts as permanent
            transient = is_transient(exc)
            if not transient or attempt == attempts - 1:
                error = ModelCallError(_describe(exc, settings, attempt + 1), transient=transient, attempts=attempt + 1)
                if usage is not None:
                    usage.record_error(error)
                raise error from exc
            delay = _backoff(settings.backoff_s, attempt, exc)
            log.info("model call failed (%s); retry %d/%d in %.1fs", type(exc).__name__, attempt + 1,
                     settings.num_retries, delay)
            await asyncio.sleep(delay)
    choice = response.choices[0]
    used = getattr(response, "usage", None)
    result = Completion(
        text=choice.message.content or "",
        logprobs=_logprobs(choice),
        model=response.model or settings.model,
        prompt_tokens=getattr(used, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(used, "completion_tokens", 0) or 0,
        retries=attempt,
    )
    if usage is not None:
        usage.record(result)
    return result


_TRANSIENT_STATUS = {408, 409, 425, 429}
_HARD_LIMIT_MARGIN_S = 5.0


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same call again later may succeed."""
    import litellm

    if isinstance(exc, (TimeoutError, litellm.Timeout, litellm.RateLimitError, litellm.InternalServerError,
                        litellm.ServiceUnavailableError, litellm.BadGatewayError)):
        return True
    if isinstance(exc, (litellm.AuthenticationError, litellm.NotFoundError, litellm.BadRequestError,
                        litellm.PermissionDeniedError)):
        return False
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status in _TRANSIENT_STATUS or status >= 500
    return isinstance(exc, (litellm.APIConnectionError, ConnectionError))


def _backoff(base: float, attempt: int, exc: BaseException) -> float:
    """Exponential with jitter, at least the server's Retry-After, at most 30 s."""
    delay = min(30.0, base * 2 ** attempt) * random.uniform(0.5, 1.0)
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        delay = max(delay, min(30.0, float(headers.get("retry-after", 0))))
    except (TypeError, ValueError):
        pass
    return delay


def _describe(exc: BaseException, settings: ModelSettings, attempts: int) -> str:
    where = f"{settings.model}" + (f" at {settings.api_base}" if settings.api_base else "")
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"model call to {where} failed{tries}: {type(exc).__name__}" + (f": {detail}" if detail else "")


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
