"""The OpenAI chat-completions wire format: request body, errors, responses and stream chunks."""

from __future__ import annotations

import json
from typing import Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from maro.learner.serving.engine import RowOutput


class ChatMessage(BaseModel):
    """One message; content parts of type text are joined, others rejected."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict] | None = ""

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for part in self.content:
            if part.get("type") != "text":
                raise ValueError(f"unsupported content part type {part.get('type')!r}")
            parts.append(str(part.get("text", "")))
        return "".join(parts)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The OpenAI chat-completions body; unknown OpenAI fields are ignored, not rejected."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    n: int = Field(1, ge=1, le=16)
    stream: bool = False
    stream_options: StreamOptions | None = None
    ignore_eos: bool = False  # vLLM's extension: generate exactly max_tokens (benchmarks)
    include_stop_str_in_output: bool = False  # vLLM's extension: the text keeps the stop string it ended at

    @field_validator("stop", mode="before")
    @classmethod
    def _stops(cls, v):
        stops = [v] if isinstance(v, str) else list(v or [])
        if len(stops) > 4 or any(not isinstance(s, str) or not s for s in stops):
            raise ValueError("stop takes at most 4 non-empty strings")
        return stops


class ApiError(Exception):
    """An error reported to the client as OpenAI-style JSON with an HTTP status."""

    def __init__(self, status: int, message: str, type_: str, code: str):
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": None}}


def error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


def choice(index: int, out: RowOutput, want_logprobs: bool) -> dict:
    """One `choices[i]` of a chat.completion."""
    return {
        "index": index,
        "message": {"role": "assistant", "content": out.text},
        "finish_reason": out.finish_reason,
        "logprobs": {"content": out.logprob_entries} if want_logprobs else None,
        # Non-standard: the sampled token ids, aligned one to one with logprobs.content.
        "token_ids": out.token_ids,
    }


def sse(payload: dict | str) -> str:
    """One server-sent event as OpenAI streams them: `data: {...}` and a blank line."""
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


def chunk(head: dict, index: int, delta: dict, *, finish: str | None = None, entries: list | None = None,
          token_ids: list[int] | None = None) -> dict:
    """A chat.completion.chunk for one choice; `head` holds id, created and model."""
    part = {"index": index, "delta": delta, "logprobs": {"content": entries} if entries is not None else None,
            "finish_reason": finish}
    if token_ids is not None:
        part["token_ids"] = token_ids
    return {**head, "object": "chat.completion.chunk", "choices": [part]}


class StreamText:
    """Releases a row's text as it grows, holding back what may still turn into a stop string.

    What it has released is always a prefix of the final text: a tail that could be the start of
    a stop string, or an incomplete UTF-8 character, waits for the next token.
    """

    def __init__(self, stops: list[str], include_stop: bool = False):
        self.stops, self.sent, self.include = stops, "", include_stop

    def release(self, text: str) -> str:
        hits = [(text.find(s), len(s)) for s in self.stops if s in text]
        cut = (min(hits)[0] + (min(hits)[1] if self.include else 0)) if hits else len(text)
        text = text[:cut]
        hold = max((k for s in self.stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        safe = text[: len(text) - hold].rstrip("\ufffd")
        return self._advance(safe)

    def finish(self, final_text: str) -> str:
        return self._advance(final_text)

    def _advance(self, text: str) -> str:
        if not text.startswith(self.sent) or len(text) <= len(self.sent):
            return ""
        delta, self.sent = text[len(self.sent) :], text
        return delta
