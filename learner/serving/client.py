"""Which OpenAI-compatible model server the agents and the learner talk to (local or vLLM), chosen by configuration.

Naming, the same on both servers (see deploy/vllm.md):

- `<served_name>`          the newest published adapter (the base model until the first publish);
- `<served_name>@vNNNN`    one pinned adapter version (past opponents);
- `<served_name>@base`     the base model without any adapter.

The local server resolves these itself from its adapter folder. On vLLM, `publish_adapter`
loads each version twice: under its pinned name, and in place under the bare name, which vLLM
looks up among LoRA adapters before its served model names, so the alias moves to the newest
version without a restart and without failing requests in flight.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from maro.learner.adapters import ModelRef


class ModelServerError(RuntimeError):
    """The model server refused an adapter operation."""


class ModelServerConfig(BaseModel):
    """Where the policy model is served and how adapters reach it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["local", "vllm"] = Field("local", description="`local`: maro model serve; `vllm`: vllm serve.")
    base_url: str = Field("http://127.0.0.1:8008", description="Server root, without /v1.")
    served_name: str = Field("smollm2", description="The bare model name; versions are `<name>@vNNNN`.")
    api_key: str | None = Field(None, description="Bearer token (vLLM's --api-key); the local server ignores it.")
    timeout_s: float = Field(120.0, gt=0, description="Timeout of adapter operations (a load can take a while).")

    def litellm_model(self, version: str | None = None) -> str:
        """The LiteLLM model string: the newest policy, or one pinned version (`v0003`, `base`)."""
        return "openai/" + ModelRef(self.served_name, version).format()

    def api_base(self) -> str:
        return self.base_url.rstrip("/") + "/v1"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _post(self, client: httpx.Client, path: str, body: dict | None = None) -> httpx.Response:
        return client.post(self.base_url.rstrip("/") + path, json=body, headers=self._headers(), timeout=self.timeout_s)

    def publish_adapter(self, version: str, path: Path, *, client: httpx.Client | None = None) -> str:
        """Make `version` (a PEFT adapter folder at `path`) servable and the newest; returns the name serving it.

        local: the adapter is already in the server's folder (AdapterRegistry.publish); this asks
        the server to load LATEST now instead of at its next poll. vllm: POST /v1/load_lora_adapter
        for `<name>@<version>`, then again in place for `<name>` (needs vLLM started with
        `--enable-lora` and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True; `path` must be readable by it).
        """
        with _client(client) as http:
            if self.kind == "local":
                response = self._post(http, "/v1/adapters/reload")
                _check(response, "reload adapters")
                return f"{self.served_name}@{response.json().get('adapter') or 'base'}"
            pinned = f"{self.served_name}@{version}"
            response = self._post(http, "/v1/load_lora_adapter", {"lora_name": pinned, "lora_path": str(path)})
            if not (response.status_code == 400 and "already" in response.text):  # republishing is not an error
                _check(response, f"load {pinned}")
            body = {"lora_name": self.served_name, "lora_path": str(path), "load_inplace": True}
            _check(self._post(http, "/v1/load_lora_adapter", body), f"point {self.served_name} at {version}")
            return pinned

    def stats(self) -> dict | None:
        """The local server's counters (`/v1/stats`: requests, prefill and decode work and time);
        None for vLLM, which exports Prometheus metrics instead, or when the server does not answer."""
        if self.kind != "local":
            return None
        try:
            response = httpx.get(self.base_url.rstrip("/") + "/v1/stats", headers=self._headers(), timeout=10)
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def unload_adapter(self, version: str, *, client: httpx.Client | None = None) -> None:
        """Drop a pinned version from the pool (vLLM); the local server evicts by itself, so a no-op there."""
        if self.kind == "local":
            return
        with _client(client) as http:
            name = f"{self.served_name}@{version}"
            response = self._post(http, "/v1/unload_lora_adapter", {"lora_name": name})
            if response.status_code != 404:
                _check(response, f"unload {name}")


def _client(client: httpx.Client | None):
    """The caller's client (tests pass one over httpx.MockTransport) left open, or a fresh one closed after."""
    return httpx.Client() if client is None else contextlib.nullcontext(client)


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        raise ModelServerError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
