"""`maro model serve`: an OpenAI-compatible chat server over transformers, PEFT adapters and dynamic batching."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from maro.learner.serving_engine import AdapterStore, GenerationEngine, RowRequest

log = logging.getLogger(__name__)


class ServeConfig(BaseModel):
    """Configuration of the local model server."""

    model_config = ConfigDict(extra="forbid")

    model_dir: Path = Field(description="Folder of a transformers causal LM with its tokenizer.")
    served_name: str = Field("smollm2", description="Model name clients send; `@base`/`@vNNNN` select versions.")
    adapters_dir: Path | None = Field(None, description="Folder of PEFT adapter versions (vNNNN/ + LATEST).")
    host: str = Field("127.0.0.1", description="Interface to bind.")
    port: int = Field(8008, ge=0, le=65535, description="TCP port to bind (0 picks a free one).")
    reload_interval_s: float = Field(1.0, gt=0, description="How often LATEST is polled for a new adapter.")
    max_batch_size: int = Field(8, ge=1, description="Most rows (requests x n) in one generate call.")
    batch_wait_ms: float = Field(15, ge=0, description="How long the first request waits for companions.")
    max_queue: int = Field(256, ge=1, description="Most requests waiting; beyond it requests get 503.")
    default_max_tokens: int = Field(64, ge=1, description="Completion length when a request names none.")
    max_loaded_adapters: int = Field(4, ge=1, description="Adapter versions kept in memory at once.")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads; None leaves torch's choice.")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="Weights dtype while serving.")


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

    @field_validator("stop", mode="before")
    @classmethod
    def _stops(cls, v):
        stops = [v] if isinstance(v, str) else list(v or [])
        if len(stops) > 4 or any(not isinstance(s, str) or not s for s in stops):
            raise ValueError("stop takes at most 4 non-empty strings")
        return stops

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, v):
        if v:
            raise ValueError("streaming is not supported by this server")
        return v


class ApiError(Exception):
    """An error reported to the client as OpenAI-style JSON with an HTTP status."""

    def __init__(self, status: int, message: str, type_: str, code: str):
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code


def _error_response(err: ApiError) -> JSONResponse:
    body = {"error": {"message": err.message, "type": err.type, "code": err.code, "param": None}}
    return JSONResponse(body, status_code=err.status)


class _Pending:
    """A queued request: its rows, the adapter it asked for, and the future its answer lands in."""

    def __init__(self, rows: list[RowRequest], adapter: str | None, seed: int | None, fut):
        self.rows, self.adapter, self.seed, self.future = rows, adapter, seed, fut


class Batcher:
    """Collects queued requests into batches and runs them one batch at a time on one thread.

    Every model operation (generate, adapter load) goes through the single-thread executor, so
    an adapter reload always lands between batches and never under an in-flight generate.
    """

    def __init__(self, engine: GenerationEngine, store: AdapterStore, config: ServeConfig):
        self.engine, self.store, self.config = engine, store, config
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maro-generate")
        self.queue: asyncio.Queue[_Pending] | None = None
        self.tasks: list[asyncio.Task] = []
        self.stats = {"requests": 0, "batches": 0, "rows": 0, "max_batch_rows": 0, "reloads": 0}

    def start(self) -> None:
        if self.tasks:
            return
        self.queue = asyncio.Queue(maxsize=self.config.max_queue)
        self.tasks = [asyncio.create_task(self._batch_loop()), asyncio.create_task(self._poll_loop())]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []
        self.executor.shutdown(wait=True)

    async def submit(self, rows: list[RowRequest], adapter: str | None, seed: int | None):
        self.start()
        fut = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait(_Pending(rows, adapter, seed, fut))
        except asyncio.QueueFull:
            raise ApiError(503, "server busy: request queue is full, retry later", "server_error", "queue_full")
        self.stats["requests"] += 1
        return await fut

    def _run(self, rows: list[RowRequest], adapter: str | None, seed: int | None):
        self.store.ensure(adapter)  # an evicted or never-loaded version loads on demand
        return self.engine.generate(rows, adapter, seed)

    async def reload(self) -> str | None:
        """Check LATEST now (on the model thread) and return the current version."""
        loop = asyncio.get_running_loop()
        changed = await loop.run_in_executor(self.executor, self.store.refresh)
        self.stats["reloads"] += int(changed)
        return self.store.current

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.reload_interval_s)
            try:
                await self.reload()
            except Exception:  # noqa: BLE001 - a broken adapter must not stop serving; retried next poll
                log.exception("adapter reload failed")

    async def _collect(self) -> list[_Pending]:
        first = await self.queue.get()
        batch, rows = [first], len(first.rows)
        deadline = time.monotonic() + self.config.batch_wait_ms / 1000
        while rows < self.config.max_batch_size:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout)
            except asyncio.TimeoutError:
                break
            batch.append(item)
            rows += len(item.rows)
        return batch

    async def _batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = await self._collect()
            # Resolve "latest" now, so a reload landing mid-group cannot change what a row ran on.
            groups: dict[tuple, list[_Pending]] = {}
            for item in pending:
                adapter = self.store.current if item.adapter == "latest" else item.adapter
                # A seeded request runs alone: its sample then does not depend on its companions.
                key = (adapter, item.seed, id(item) if item.seed is not None else None)
                groups.setdefault(key, []).append(item)
            for (adapter, seed, _), items in groups.items():
                rows = [row for item in items for row in item.rows]
                try:
                    outs = await loop.run_in_executor(self.executor, self._run, rows, adapter, seed)
                except Exception as exc:  # noqa: BLE001 - every waiter must hear about it
                    for item in items:
                        if not item.future.done():
                            item.future.set_exception(exc)
                    continue
                self.stats["batches"] += 1
                self.stats["rows"] += len(rows)
                self.stats["max_batch_rows"] = max(self.stats["max_batch_rows"], len(rows))
                for item in items:
                    mine, outs = outs[: len(item.rows)], outs[len(item.rows) :]
                    if not item.future.done():
                        item.future.set_result((adapter, mine))


def _choice(index: int, out, want_logprobs: bool) -> dict:
    choice = {
        "index": index,
        "message": {"role": "assistant", "content": out.text},
        "finish_reason": out.finish_reason,
        "logprobs": None,
        # Non-standard: the sampled token ids, aligned one to one with logprobs.content.
        "token_ids": out.token_ids,
    }
    if want_logprobs:
        choice["logprobs"] = {"content": out.logprob_entries}
    return choice


def create_app(config: ServeConfig) -> FastAPI:
    """Build the app; the model loads here, the batcher starts with the first request or lifespan."""
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    engine = GenerationEngine(config.model_dir, dtype=config.dtype)
    store = AdapterStore(engine, config.adapters_dir, max_loaded=config.max_loaded_adapters)
    store.refresh()
    batcher = Batcher(engine, store, config)
    name = config.served_name

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="MARO model server", lifespan=lifespan)
    app.state.batcher, app.state.engine, app.state.store = batcher, engine, store

    @app.exception_handler(ApiError)
    async def _api_error(_request, err: ApiError):
        return _error_response(err)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request, err: RequestValidationError):
        return _error_response(ApiError(400, str(err), "invalid_request_error", "invalid_request"))

    @app.exception_handler(Exception)
    async def _internal_error(_request, err: Exception):
        return _error_response(ApiError(500, f"{type(err).__name__}: {err}", "server_error", "internal_error"))

    def resolve(model: str) -> str | None:
        """Model name to adapter key: "latest", None (base) or a version name."""
        if model == name:
            return "latest"
        if model == f"{name}@base":
            return None
        if model.startswith(f"{name}@") and store.exists(model.split("@", 1)[1]):
            return model.split("@", 1)[1]
        raise ApiError(404, f"model {model!r} does not exist; see /v1/models", "invalid_request_error", "model_not_found")

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": name, "adapter": store.current}

    @app.get("/v1/models")
    async def models():
        ids = [name, f"{name}@base"] + [f"{name}@{v}" for v in store.versions()]
        created = int(time.time())
        return {"object": "list", "data": [{"id": i, "object": "model", "created": created, "owned_by": "maro"} for i in ids]}

    @app.get("/v1/stats")
    async def stats():
        return {**batcher.stats, "adapter": store.current, "loaded_adapters": store.loaded()}

    @app.post("/v1/adapters/reload")
    async def reload():
        current = await batcher.reload()
        return {"adapter": current, "model": f"{name}@{current or 'base'}"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            body = ChatRequest.model_validate(await request.json())
            messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        except (ValidationError, ValueError) as exc:
            raise ApiError(400, str(exc), "invalid_request_error", "invalid_request") from None
        adapter = resolve(body.model)
        max_tokens = body.max_completion_tokens or body.max_tokens or config.default_max_tokens
        prompt_ids = engine.encode_chat(messages)
        if len(prompt_ids) + max_tokens > engine.max_positions:
            raise ApiError(400, f"prompt ({len(prompt_ids)} tokens) + max_tokens ({max_tokens}) exceeds "
                           f"the context of {engine.max_positions}", "invalid_request_error", "context_length_exceeded")
        top = (body.top_logprobs or 0) if body.logprobs else 0
        row = RowRequest(prompt_ids, body.temperature, body.top_p, max_tokens, body.stop, top)
        used, outs = await batcher.submit([row] * body.n, adapter, body.seed)
        completion = sum(len(o.token_ids) for o in outs)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": f"{name}@{used or 'base'}",
            "choices": [_choice(i, o, body.logprobs) for i, o in enumerate(outs)],
            "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": completion,
                      "total_tokens": len(prompt_ids) + completion},
        }

    return app


def serve(config: ServeConfig) -> None:
    """Run the server until interrupted (blocking)."""
    import uvicorn

    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")
