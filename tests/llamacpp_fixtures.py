"""Pytest plugin: the real llama.cpp server (llama-cpp-python[server]) serving a tiny random GGUF.

Why a subprocess and a process group: the server is a real uvicorn process with its own
threads; killing its whole group at teardown leaves nothing behind, and a test can crash it
(``kill()``), stop it or restart it on the same port to exercise the runbook and model lifecycle.

Fixtures:
- ``tiny_gguf`` (session): path of a tiny random llama GGUF (seed 0).
- ``tiny_gguf_factory`` (session): ``make(seed) -> path``; two seeds give two different models.
- ``llamacpp_factory``: ``make(model=None, *, n_ctx=512, alias="tiny", extra_args=()) -> LlamaCppServer``
  (started and ready); every server it made is stopped at teardown.
- ``llamacpp_server``: one started server on ``tiny_gguf``.

Tests using them are marked ``llamacpp`` automatically; they skip, with the reason, only
when ``llama_cpp.server`` cannot be imported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from llm_upkeep.config import EndpointConfig
from llm_upkeep.sim.tiny_gguf import write_tiny_llama_gguf

_FIXTURES = {"llamacpp_server", "llamacpp_factory"}
READY_TIMEOUT_S = 30.0


def llamacpp_missing() -> str | None:
    """Why the real server cannot run here, or None when it can."""
    for mod in ("llama_cpp", "uvicorn", "sse_starlette", "starlette_context", "fastapi"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not importable: install llama-cpp-python[server]==0.3.36 (see .ci/run)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaCppServer:
    """One `python -m llama_cpp.server` process; .url stays the same across restart()."""

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        port: int | None = None,
        n_ctx: int = 512,
        alias: str = "tiny",
        extra_args: Sequence[str] = (),
        log_path: str | os.PathLike | None = None,
    ):
        self.model_path = Path(model)
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.alias = alias
        self.extra_args = list(extra_args)
        self.log_path = Path(log_path) if log_path else Path(f"/tmp/llamacpp-{self.port}.log")
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def model(self) -> str:
        return self.alias

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path),
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
            "--model_alias", self.alias, *self.extra_args,
        ]  # fmt: skip

    def endpoint(self, name: str = "llamacpp", **kw) -> EndpointConfig:
        """An EndpointConfig (OpenAI dialect) for this server; keyword arguments override fields."""
        kw.setdefault("model", self.alias)
        kw.setdefault("timeout_s", 60.0)
        return EndpointConfig(name=name, api="openai", url=self.url, **kw)

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> LlamaCppServer:
        if self.running:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env,
        )  # fmt: skip
        self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll GET /v1/models (llama.cpp's /health is 404) until it answers 200."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=httpx.Timeout(2.0), trust_env=False) as c:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(
                        f"llama.cpp server exited with {self.proc.returncode}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if c.get(self.url + "/v1/models").status_code == 200:
                        return
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"llama.cpp server not ready within {timeout_s:g} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def _signal(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """Crash it (SIGKILL, no clean shutdown): what 'the process died' looks like."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL after timeout_s; idempotent."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(10)
        # Whatever the group left behind (it should be nothing) goes too.
        self._signal(signal.SIGKILL)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self, model: str | os.PathLike | None = None, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Stop and start again on the same port, optionally with another model file."""
        self.stop()
        if model is not None:
            self.model_path = Path(model)
        self.start(timeout_s)

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.llamacpp)


@pytest.fixture(scope="session")
def tiny_gguf_factory(tmp_path_factory) -> Callable[..., Path]:
    d = tmp_path_factory.mktemp("gguf")
    made: dict[int, Path] = {}

    def make(seed: int = 0) -> Path:
        if seed not in made:
            made[seed] = write_tiny_llama_gguf(d / f"tiny-seed{seed}.gguf", seed=seed)
        return made[seed]

    return make


@pytest.fixture(scope="session")
def tiny_gguf(tiny_gguf_factory) -> Path:
    return tiny_gguf_factory(0)


@pytest.fixture
def llamacpp_factory(tiny_gguf, tmp_path) -> Iterator[Callable[..., LlamaCppServer]]:
    why = llamacpp_missing()
    if why:
        pytest.skip(why)
    servers: list[LlamaCppServer] = []

    def make(
        model: str | os.PathLike | None = None,
        *,
        n_ctx: int = 512,
        alias: str = "tiny",
        extra_args: Sequence[str] = (),
    ) -> LlamaCppServer:
        s = LlamaCppServer(
            model or tiny_gguf, n_ctx=n_ctx, alias=alias, extra_args=extra_args,
            log_path=tmp_path / f"llamacpp-{len(servers)}.log",
        )  # fmt: skip
        servers.append(s)
        return s.start()

    try:
        yield make
    finally:
        for s in servers:
            s.stop()


@pytest.fixture
def llamacpp_server(llamacpp_factory) -> LlamaCppServer:
    return llamacpp_factory()
