"""`maro model serve`: an OpenAI-compatible chat server over transformers, PEFT adapters and continuous batching."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maro.learner.serving_api import (  # noqa: F401 - ChatMessage/ChatRequest are part of this module's API
    ApiError,
    ChatMessage,
    ChatRequest,
    StreamText,
    choice,
    chunk,
    error_response,
    sse,
)
from maro.learner.model_servers import PREFIX_CACHE_TOKENS
from maro.learner.serving_engine import AdapterStore, GenerationEngine, RowRequest
from maro.learner.serving_scheduler import LATEST, Job, QueueFull, Scheduler

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
    max_batch_size: int = Field(16, ge=1, description="Most rows (requests x n) in the running batch.")
    batch_wait_ms: float = Field(15, ge=0, description="How long an idle batch waits for companions of a first request.")
    max_queue: int = Field(256, ge=1, description="Most requests waiting to join the batch; beyond it requests get 503.")
    default_max_tokens: int = Field(64, ge=1, description="Completion length when a request names none.")
    max_loaded_adapters: int = Field(4, ge=1, description="Adapter versions kept in memory at once (more while in use).")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads; None leaves torch's choice.")
    dtype: Literal["float32", "bfloat16", "auto"] = Field(
        "float32", description="Weights dtype; `auto` is bfloat16 where the hardware supports it, else float32.")
    prefix_cache_tokens: int = Field(PREFIX_CACHE_TOKENS, ge=0, le=1_000_000, description=(
        "Prompt tokens whose KV is kept so that prompts starting the same way (a game's rules and worked "
        "example, a repair turn) prefill only the rest; 0 turns it off."))


class _Events:
    """A request's inbox: the model thread posts, the handler awaits, in order."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple] = asyncio.Queue()

    def post(self, *event) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening any more
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    def job(self, rows: list[RowRequest], adapter: str | None, seed: int | None, stream: bool) -> Job:
        def on_token(index, row):
            tops = row.tops[-1] if row.tops else None
            token = (row.tokens[-1], row.logprobs[-1], tops) if row.tokens else None
            self.post("token", index, token, row.output)

        return Job(rows, adapter, seed, stream, on_start=lambda a: self.post("start", a), on_token=on_token,
                   on_done=lambda i, out: self.post("done", i, out), on_error=lambda exc: self.post("error", exc))


async def _watch_disconnect(request: Request, job: Job, events: _Events) -> None:
    """Cancel `job` when the client goes away before its answer is ready."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    job.cancel()
    events.post("gone")


def _failure(exc: BaseException | None = None) -> ApiError:
    detail = f": {type(exc).__name__}: {exc}" if exc else ""
    return ApiError(500, f"generation failed{detail}", "server_error", "generation_failed")


def create_app(config: ServeConfig) -> FastAPI:
    """Build the app; the model loads here, the model thread starts with lifespan or the first request."""
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    engine = GenerationEngine(config.model_dir, dtype=config.dtype)
    store = AdapterStore(engine, config.adapters_dir, max_loaded=config.max_loaded_adapters)
    store.refresh()
    scheduler = Scheduler(engine, store, max_batch_size=config.max_batch_size, max_queue=config.max_queue,
                          batch_wait_ms=config.batch_wait_ms, prefix_cache_tokens=config.prefix_cache_tokens)
    name = config.served_name
    poller: list[asyncio.Task] = []

    async def reload() -> str | None:
        """Check LATEST now, on the model thread between two decode steps; return the current version."""
        changed = await asyncio.wrap_future(scheduler.call(store.refresh))
        scheduler.stats["reloads"] += int(changed)
        return store.current

    async def poll() -> None:
        while True:
            await asyncio.sleep(config.reload_interval_s)
            try:
                await reload()
            except Exception:  # noqa: BLE001 - a broken adapter must not stop serving; retried next poll
                log.exception("adapter reload failed")

    def start() -> None:
        scheduler.start()
        if not poller:
            poller.append(asyncio.create_task(poll()))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        start()
        yield
        for task in poller:
            task.cancel()
        await asyncio.to_thread(scheduler.stop)

    app = FastAPI(title="MARO model server", lifespan=lifespan)
    app.state.scheduler, app.state.engine, app.state.store = scheduler, engine, store

    @app.exception_handler(ApiError)
    async def _api_error(_request, err: ApiError):
        return error_response(err)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request, err: RequestValidationError):
        return error_response(ApiError(400, str(err), "invalid_request_error", "invalid_request"))

    @app.exception_handler(Exception)
    async def _internal_error(_request, err: Exception):
        return error_response(ApiError(500, f"{type(err).__name__}: {err}", "server_error", "internal_error"))

    def resolve(model: str) -> str | None:
        """Model name to adapter key: LATEST, None (base) or a version name."""
        if model == name:
            return LATEST
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
        return {**scheduler.snapshot(), "adapter": store.current, "loaded_adapters": store.loaded()}

    @app.post("/v1/adapters/reload")
    async def reload_now():
        current = await reload()
        return {"adapter": current, "model": f"{name}@{current or 'base'}"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        start()
        try:
            body = ChatRequest.model_validate(await request.json())
            messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        except (ValidationError, ValueError) as exc:  # malformed JSON is a ValueError too
            raise ApiError(400, str(exc), "invalid_request_error", "invalid_request") from None
        adapter = resolve(body.model)
        max_tokens = body.max_completion_tokens or body.max_tokens or config.default_max_tokens
        prompt_ids = engine.encode_chat(messages)
        if len(prompt_ids) + max_tokens > engine.max_positions:
            raise ApiError(400, f"prompt ({len(prompt_ids)} tokens) + max_tokens ({max_tokens}) exceeds "
                           f"the context of {engine.max_positions}", "invalid_request_error", "context_length_exceeded")
        top = (body.top_logprobs or 0) if body.logprobs else 0
        row = RowRequest(prompt_ids, body.temperature, body.top_p, max_tokens, body.stop, top, body.ignore_eos,
                         body.include_stop_str_in_output)
        events = _Events()
        job = events.job([row] * body.n, adapter, body.seed, body.stream)
        try:
            scheduler.submit(job)
        except QueueFull:
            raise ApiError(503, "server busy: request queue is full, retry later", "server_error", "queue_full") from None
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": name}
        if body.stream:
            return StreamingResponse(_stream(job, events, head, body, len(prompt_ids)), media_type="text/event-stream")
        return await _complete(request, job, events, head, body, len(prompt_ids))

    async def _complete(request: Request, job: Job, events: _Events, head: dict, body: ChatRequest, prompt_len: int):
        watcher = asyncio.create_task(_watch_disconnect(request, job, events))
        outs, used = [None] * body.n, None
        try:
            while any(o is None for o in outs):
                kind, *data = await events.queue.get()
                if kind == "gone":
                    return Response(status_code=499)  # nobody reads it; the rows are already freed
                if kind == "error":
                    raise _failure(data[0])
                if kind == "start":
                    used = data[0]
                elif kind == "done":
                    if data[1].finish_reason == "error":
                        raise _failure()
                    outs[data[0]] = data[1]
        finally:
            watcher.cancel()
        completion = sum(len(o.token_ids) for o in outs)
        return {
            **head, "object": "chat.completion", "model": f"{name}@{used or 'base'}",
            "choices": [choice(i, o, body.logprobs) for i, o in enumerate(outs)],
            "usage": {"prompt_tokens": prompt_len, "completion_tokens": completion, "total_tokens": prompt_len + completion},
        }

    async def _stream(job: Job, events: _Events, head: dict, body: ChatRequest, prompt_len: int):
        """SSE chunks: a role chunk per choice, one chunk per sampled token, a final one with finish_reason."""
        texts = [StreamText(body.stop, body.include_stop_str_in_output) for _ in range(body.n)]
        tokens: list[list[int]] = [[] for _ in range(body.n)]
        finished = 0
        try:
            kind, *data = await events.queue.get()
            if kind == "error":
                yield sse(_failure(data[0]).body())
                return
            head = {**head, "model": f"{name}@{data[0] or 'base'}"}
            for i in range(body.n):
                yield sse(chunk(head, i, {"role": "assistant", "content": ""}))
            while finished < body.n:
                kind, *data = await events.queue.get()
                if kind != "token":
                    continue  # "done" repeats what the last token event carried
                index, token, out = data
                if out is not None and out.finish_reason in ("error", "cancelled"):
                    yield sse(_failure().body())
                    return
                entries, ids = None, []
                if token is not None:
                    tokens[index].append(token[0])
                    ids = [token[0]]
                    entries = [engine.entry(*token)] if body.logprobs else None
                if out is None:
                    delta = texts[index].release(engine.decode(tokens[index]))
                    yield sse(chunk(head, index, {"content": delta}, entries=entries, token_ids=ids))
                    continue
                delta = texts[index].finish(out.text)
                yield sse(chunk(head, index, {"content": delta} if delta else {}, finish=out.finish_reason,
                                entries=entries, token_ids=ids))
                finished += 1
            if body.stream_options and body.stream_options.include_usage:
                completion = sum(len(t) for t in tokens)
                usage = {"prompt_tokens": prompt_len, "completion_tokens": completion,
                         "total_tokens": prompt_len + completion}
                yield sse({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
            yield sse("[DONE]")
        finally:
            if finished < body.n:
                job.cancel()  # the client left (the response was cancelled) or the job failed

    return app


def serve(config: ServeConfig) -> None:
    """Run the server until interrupted (blocking)."""
    import uvicorn

    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")
