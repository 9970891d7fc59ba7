"""`maro model serve` as a child process of the self-play loop, the demo and the evaluation:
started on a free loopback port, ready when its health check answers, stopped on exit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from maro.learner.serving.client import ModelServerConfig
from maro.learner.serving.config import PREFIX_CACHE_TOKENS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ModelServerProcess:
    """`maro model serve` as a child process, ready when its health check answers."""

    def __init__(self, model_dir: Path, adapters_dir: Path, log_path: Path, port: int | None = None,
                 served_name: str = "smollm2", prefix_cache_tokens: int = PREFIX_CACHE_TOKENS,
                 dtype: str = "float32"):
        self.port = port or free_port()
        self.served_name = served_name
        self.log_path = log_path
        self.args = [sys.executable, "-m", "maro.learner.cli", "model", "serve", "--model-dir", str(model_dir),
                     "--adapters", str(adapters_dir), "--port", str(self.port), "--served-name", served_name,
                     "--prefix-cache-tokens", str(prefix_cache_tokens), "--dtype", dtype]
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 180.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"model server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"model server not ready after {timeout_s:.0f}s; see {self.log_path}")

    @property
    def config(self) -> ModelServerConfig:
        """How clients reach this server and publish adapters to it."""
        return ModelServerConfig(kind="local", base_url=self.base_url, served_name=self.served_name)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> ModelServerProcess:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
