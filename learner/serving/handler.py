"""The chat-completions handler: resolve the model name, submit the job to the scheduler, and
answer with one JSON body or a stream of server-sent events. The model thread reports each job's
progress as typed events into the request's `Inbox`."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from maro.learner.adapters import BASE, ModelRef
from maro.learner.serving.config import ServeConfig
from maro.learner.serving.engine import AdapterStore, GenerationEngine, RowOutput, RowRequest
from maro.learner.serving.protocol import ApiError, ChatRequest, StreamText, choice, chunk, sse
from maro.learner.serving.scheduler import LATEST, Job, QueueFull, Scheduler


@dataclass(frozen=True)
class Started:
    """The job joined the batch; `adapter` is the version it runs on (None: the base model)."""

    adapter: str | None


@dataclass(frozen=True)
class Token:
    """Choice `index` sampled a token (`token` = (id, logprob, top entries)); `output` is set once
    that choice is finished."""

    index: int
    token: tuple | None
    output: RowOutput | None


@dataclass(frozen=True)
class Done:
    index: int
    output: RowOutput


@dataclass(frozen=True)
class Failed:
    error: BaseException


@dataclass(frozen=True)
class Gone:
    """The client disconnected before the answer was ready."""


JobEvent = Started | Token | Done | Failed | Gone


class Inbox:
    """A request's events: the model thread posts, the handler awaits them in order."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[JobEvent] = asyncio.Queue()

    def post(self, event: JobEvent) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening any more
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    async def next(self) -> JobEvent:
        return await self.queue.get()

    def job(self, rows: list[RowRequest], adapter: str | None, seed: int | None, stream: bool) -> Job:
        def on_token(index: int, row) -> None:
            tops = row.tops[-1] if row.tops else None
            token = (row.tokens[-1], row.logprobs[-1], tops) if row.tokens else None
            self.post(Token(index, token, row.output))

        return Job(rows, adapter, seed, stream, on_start=lambda a: self.post(Started(a)), on_token=on_token,
                   on_done=lambda i, out: self.post(Done(i, out)), on_error=lambda exc: self.post(Failed(exc)))


def failure(exc: BaseException | None = None) -> ApiError:
    detail = f": {type(exc).__name__}: {exc}" if exc else ""
    return ApiError(500, f"generation failed{detail}", "server_error", "generation_failed")


class ChatHandler:
    """Everything the routes answer, over one engine, adapter store and scheduler."""

    def __init__(self, config: ServeConfig, engine: GenerationEngine, store: AdapterStore, scheduler: Scheduler):
        self.config, self.engine, self.store, self.scheduler = config, engine, store, scheduler
        self.name = config.served_name

    def resolve(self, model: str) -> str | None:
        """Model name to adapter key: LATEST, None (base) or a version name."""
        ref = ModelRef.parse(model)
        if ref.name == self.name:
            if ref.version is None:
                return LATEST
            if ref.version == BASE:
                return None
            if self.store.exists(ref.version):
                return ref.version
        raise ApiError(404, f"model {model!r} does not exist; see /v1/models", "invalid_request_error", "model_not_found")

    def models(self) -> dict:
        ids = [self.name, f"{self.name}@base"] + [f"{self.name}@{v}" for v in self.store.versions()]
        created = int(time.time())
        return {"object": "list", "data": [{"id": i, "object": "model", "created": created, "owned_by": "maro"}
                                           for i in ids]}

    async def reload(self) -> str | None:
        """Check LATEST now, on the model thread between two decode steps; return the current version."""
        changed = await asyncio.wrap_future(self.scheduler.call(self.store.refresh))
        self.scheduler.stats["reloads"] += int(changed)
        return self.store.current

    async def chat(self, request: Request):
        try:
            body = ChatRequest.model_validate(await request.json())
            messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        except (ValidationError, ValueError) as exc:  # malformed JSON is a ValueError too
            raise ApiError(400, str(exc), "invalid_request_error", "invalid_request") from None
        adapter = self.resolve(body.model)
        max_tokens = body.max_completion_tokens or body.max_tokens or self.config.default_max_tokens
        prompt_ids = self.engine.encode_chat(messages)
        if len(prompt_ids) + max_tokens > self.engine.max_positions:
            raise ApiError(400, f"prompt ({len(prompt_ids)} tokens) + max_tokens ({max_tokens}) exceeds the "
                           f"context of {self.engine.max_positions}", "invalid_request_error",
                           "context_length_exceeded")
        top = (body.top_logprobs or 0) if body.logprobs else 0
        row = RowRequest(prompt_ids, body.temperature, body.top_p, max_tokens, body.stop, top, body.ignore_eos,
                         body.include_stop_str_in_output)
        inbox = Inbox()
        job = inbox.job([row] * body.n, adapter, body.seed, body.stream)
        try:
            self.scheduler.submit(job)
        except QueueFull:
            raise ApiError(503, "server busy: request queue is full, retry later", "server_error", "queue_full") from None
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": self.name}
        if body.stream:
            return StreamingResponse(self._stream(job, inbox, head, body, len(prompt_ids)),
                                     media_type="text/event-stream")
        return await self._complete(request, job, inbox, head, body, len(prompt_ids))

    async def _complete(self, request: Request, job: Job, inbox: Inbox, head: dict, body: ChatRequest,
                        prompt_len: int):
        watcher = asyncio.create_task(_watch_disconnect(request, job, inbox))
        outs: list[RowOutput | None] = [None] * body.n
        used = None
        try:
            while any(o is None for o in outs):
                event = await inbox.next()
                if isinstance(event, Gone):
                    return Response(status_code=499)  # nobody reads it; the rows are already freed
                if isinstance(event, Failed):
                    raise failure(event.error)
                if isinstance(event, Started):
                    used = event.adapter
                elif isinstance(event, Done):
                    if event.output.finish_reason == "error":
                        raise failure()
                    outs[event.index] = event.output
        finally:
            watcher.cancel()
        completion = sum(len(o.token_ids) for o in outs)
        return {
            **head, "object": "chat.completion", "model": f"{self.name}@{used or 'base'}",
            "choices": [choice(i, o, body.logprobs) for i, o in enumerate(outs)],
            "usage": {"prompt_tokens": prompt_len, "completion_tokens": completion,
                      "total_tokens": prompt_len + completion},
        }

    async def _stream(self, job: Job, inbox: Inbox, head: dict, body: ChatRequest,
                      prompt_len: int) -> AsyncIterator[str]:
        """SSE chunks: a role chunk per choice, one chunk per sampled token, a final one with finish_reason."""
        texts = [StreamText(body.stop, body.include_stop_str_in_output) for _ in range(body.n)]
        tokens: list[list[int]] = [[] for _ in range(body.n)]
        finished = 0
        try:
            event = await inbox.next()
            if isinstance(event, Failed):
                yield sse(failure(event.error).body())
                return
            head = {**head, "model": f"{self.name}@{getattr(event, 'adapter', None) or 'base'}"}
            for i in range(body.n):
                yield sse(chunk(head, i, {"role": "assistant", "content": ""}))
            while finished < body.n:
                event = await inbox.next()
                if not isinstance(event, Token):
                    continue  # Done repeats what the last token event carried
                if event.output is not None and event.output.finish_reason in ("error", "cancelled"):
                    yield sse(failure().body())
                    return
                yield sse(self._token_chunk(head, body, event, texts, tokens))
                finished += event.output is not None
            if body.stream_options and body.stream_options.include_usage:
                completion = sum(len(t) for t in tokens)
                usage = {"prompt_tokens": prompt_len, "completion_tokens": completion,
                         "total_tokens": prompt_len + completion}
                yield sse({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
            yield sse("[DONE]")
        finally:
            if finished < body.n:
                job.cancel()  # the client left (the response was cancelled) or the job failed

    def _token_chunk(self, head: dict, body: ChatRequest, event: Token, texts: list[StreamText],
                     tokens: list[list[int]]) -> dict:
        """One choice's chunk for a sampled token: its text delta (held back while it may be the
        start of a stop string), log-probs when asked, and the finish reason on its last token."""
        index, entries, ids = event.index, None, []
        if event.token is not None:
            tokens[index].append(event.token[0])
            ids = [event.token[0]]
            entries = [self.engine.entry(*event.token)] if body.logprobs else None
        if event.output is None:
            delta = texts[index].release(self.engine.decode(tokens[index]))
            return chunk(head, index, {"content": delta}, entries=entries, token_ids=ids)
        delta = texts[index].finish(event.output.text)
        return chunk(head, index, {"content": delta} if delta else {}, finish=event.output.finish_reason,
                     entries=entries, token_ids=ids)


async def _watch_disconnect(request: Request, job: Job, inbox: Inbox) -> None:
    """Cancel `job` when the client goes away before its answer is ready."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    job.cancel()
    inbox.post(Gone())
