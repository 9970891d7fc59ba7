"""The model registry: names for models (hosted or our local server), resolved to ModelSettings.

A TOML file (YAML also works when the name ends in .yaml/.yml) with one table per model:

    default = "smollm2"                       # what `--model` means when left out

    [models.smollm2]                          # the local model server, newest adapter
    model = "openai/smollm2"
    api_base = "http://127.0.0.1:8008/v1"

    [models.gpt-mini]                         # a hosted provider; the key comes from the environment
    model = "openai/gpt-4o-mini"
    api_key_env = "OPENAI_API_KEY"
    max_tokens = 256

Keys are never stored in the file: `api_key_env` names the environment variable that holds it.
`NAME@VERSION` picks a pinned adapter of an entry served by our model server (`smollm2@v0003`,
`smollm2@base`). Other keys are ModelSettings fields (temperature, max_tokens, logprobs,
timeout_s, num_retries, backoff_s, context_tokens) and `description`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maro.agents.llm import ModelSettings

ENV_VAR = "MARO_MODELS"
DEFAULT_FILE = "maro-models.toml"


class RegistryError(ValueError):
    """A registry that cannot be read, or a name it cannot resolve; the message says what to do."""


class ModelEntry(BaseModel):
    """One named model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    """The LiteLLM model string (`openai/gpt-4o-mini`, `anthropic/...`, `openai/smollm2` for ours)."""
    api_base: str | None = None
    """The endpoint of an OpenAI-compatible server (ours, vLLM); hosted providers leave it out."""
    api_key_env: str | None = None
    """The environment variable holding the key; it must be set when the entry is used."""
    description: str = ""
    temperature: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, gt=0)
    logprobs: bool | None = None
    """Default: on for entries with api_base (our servers report them), off for hosted providers."""
    timeout_s: float | None = Field(None, gt=0)
    num_retries: int | None = Field(None, ge=0)
    backoff_s: float | None = Field(None, ge=0)
    context_tokens: int | None = Field(None, gt=0)

    def settings(self, name: str, environ: Mapping[str, str], version: str | None = None) -> ModelSettings:
        key = None
        if self.api_key_env:
            key = environ.get(self.api_key_env)
            if not key:
                raise RegistryError(f"model {name!r} reads its API key from ${self.api_key_env}, which is not set; "
                                    f"export {self.api_key_env}=... first")
        overrides = {k: v for k, v in self.model_dump(exclude={"model", "api_key_env", "description"}).items()
                     if v is not None}
        overrides.setdefault("logprobs", self.api_base is not None)
        model = f"{self.model}@{version}" if version else self.model
        return ModelSettings(model=model, api_key=key, **overrides)


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str | None = None
    models: dict[str, ModelEntry] = Field(default_factory=dict)


BUILTIN = RegistryFile(default="smollm2", models={"smollm2": ModelEntry(
    model="openai/smollm2", api_base="http://127.0.0.1:8008/v1",
    description="the local model server (`maro model serve`, default port), newest adapter")})
"""What names mean when no registry file exists: the local model server on its default port."""


class ModelRegistry:
    """Names to ModelSettings; `load` reads a file, `ModelRegistry()` holds the built-in names."""

    def __init__(self, data: RegistryFile = BUILTIN, source: str = "built-in registry",
                 environ: Mapping[str, str] | None = None):
        self.data, self.source = data, source
        self.environ = os.environ if environ is None else environ
        if data.default is not None and data.default not in data.models:
            raise RegistryError(f"{source}: default {data.default!r} is not one of its models "
                                f"({', '.join(sorted(data.models)) or 'none'})")

    @classmethod
    def load(cls, path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> ModelRegistry:
        """Read `path`; without one, `$MARO_MODELS`, else ./maro-models.toml, else the built-in names."""
        env = os.environ if environ is None else environ
        if path is None:
            path = default_path(env)
            if path is None:
                return cls(environ=env)
        path = Path(path).expanduser()
        if not path.is_file():
            raise RegistryError(f"model registry {path} not found; copy examples/models.toml there, "
                                f"or point --registry / ${ENV_VAR} at your file")
        raw = _read(path)
        try:
            data = RegistryFile.model_validate(raw)
        except ValidationError as exc:
            raise RegistryError(f"{path}: {_explain(exc)}") from None
        return cls(data, str(path), env)

    def names(self) -> list[str]:
        return sorted(self.data.models)

    def knows(self, name: str) -> bool:
        """Whether `name` (or `NAME@VERSION`) names a model of this registry."""
        return name in self.data.models or name.split("@", 1)[0] in self.data.models

    def entry(self, name: str) -> ModelEntry:
        try:
            return self.data.models[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise RegistryError(f"unknown model {name!r} in {self.source}; known: {known}") from None

    def settings(self, name: str | None = None, **overrides: Any) -> ModelSettings:
        """The settings of model `name` (the registry's default when None), with `overrides` on top."""
        if name is None:
            if self.data.default is None:
                raise RegistryError(f"{self.source} has no default model; pass a model name")
            name = self.data.default
        version = None
        if name not in self.data.models and "@" in name:
            name, version = name.split("@", 1)
            if self.entry(name).api_base is None:
                raise RegistryError(f"{name}@{version}: pinned versions exist only on our model servers "
                                    f"(entries with api_base); {name!r} is a hosted model")
        settings = self.entry(name).settings(name, self.environ, version)
        return settings.model_copy(update=overrides) if overrides else settings


def default_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The registry file used when none is given: `$MARO_MODELS`, else ./maro-models.toml if it
    exists; None means the built-in names."""
    env = os.environ if environ is None else environ
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR])
    return Path(DEFAULT_FILE) if Path(DEFAULT_FILE).is_file() else None


def load_settings(name: str | None = None, path: str | Path | None = None, **overrides: Any) -> ModelSettings:
    """One call for scripts: `load_settings("gpt-mini")` with the default registry lookup."""
    return ModelRegistry.load(path).settings(name, **overrides)


def _read(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise RegistryError(f"{path}: reading YAML needs PyYAML (pip install pyyaml); or use TOML") from None
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise RegistryError(f"{path} is not valid YAML: {exc}") from None
    else:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise RegistryError(f"{path} is not valid TOML: {exc}") from None
    if not isinstance(raw, dict):
        raise RegistryError(f"{path}: expected a table with `models`, got {type(raw).__name__}")
    for name, entry in (raw.get("models") or {}).items():
        if isinstance(entry, dict) and "api_key" in entry:
            raise RegistryError(f"{path}: model {name!r} stores an api_key; keys never go in the file, "
                                "name the environment variable instead: api_key_env = \"PROVIDER_API_KEY\"")
    return raw


def _explain(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
