"""`maro model serve`: an OpenAI-compatible chat server over transformers, PEFT adapters and
continuous batching. `create_app` wires the engine, the adapter store, the scheduler and the
handler; the routes live in `routes.py`, the request handling in `handler.py`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from maro.learner.serving.config import ServeConfig
from maro.learner.serving.engine import AdapterStore, GenerationEngine
from maro.learner.serving.handler import ChatHandler
from maro.learner.serving.protocol import ApiError, error_response
from maro.learner.serving.routes import attach_router
from maro.learner.serving.scheduler import Scheduler

log = logging.getLogger(__name__)

__all__ = ["ServeConfig", "create_app", "serve"]


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
    handler = ChatHandler(config, engine, store, scheduler)
    poller: list[asyncio.Task] = []

    async def poll() -> None:
        while True:
            await asyncio.sleep(config.reload_interval_s)
            try:
                await handler.reload()
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
    app.state.handler, app.state.start = handler, start
    _add_error_handlers(app)
    attach_router(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request, err: ApiError):
        return error_response(err)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request, err: RequestValidationError):
        return error_response(ApiError(400, str(err), "invalid_request_error", "invalid_request"))

    @app.exception_handler(Exception)
    async def _internal_error(_request, err: Exception):
        return error_response(ApiError(500, f"{type(err).__name__}: {err}", "server_error", "internal_error"))


def serve(config: ServeConfig) -> None:
    """Run the server until interrupted (blocking)."""
    import uvicorn

    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")
