"""The model server's HTTP routes, each a line or two over the app's `ChatHandler`
(OpenAI's `/v1/chat/completions` and `/v1/models`, plus health, stats and adapter reload)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request

from maro.learner.serving.handler import ChatHandler

router = APIRouter()


def _handler(request: Request) -> ChatHandler:
    return request.app.state.handler


@router.get("/health")
async def health(request: Request):
    handler = _handler(request)
    return {"status": "ok", "model": handler.name, "adapter": handler.store.current}


@router.get("/v1/models")
async def models(request: Request):
    return _handler(request).models()


@router.get("/v1/stats")
async def stats(request: Request):
    handler = _handler(request)
    return {**handler.scheduler.snapshot(), "adapter": handler.store.current, "loaded_adapters": handler.store.loaded()}


@router.post("/v1/adapters/reload")
async def reload_now(request: Request):
    handler = _handler(request)
    current = await handler.reload()
    return {"adapter": current, "model": f"{handler.name}@{current or 'base'}"}


@router.post("/v1/chat/completions")
async def chat(request: Request):
    request.app.state.start()
    return await _handler(request).chat(request)


def attach_router(app: FastAPI) -> None:
    app.include_router(router)
