"""A protocol-faithful simulator of Ollama's API and the OpenAI-compatible API (vLLM style).

Why: no Ollama and no GPU server can run here, yet probes, benchmarks and flows must be
tested against a real HTTP peer with exact token timing and injectable faults. It is a raw
asyncio HTTP/1.1 server (chunked streams, keep-alive) on its own thread and loop, so a test
can start many instances in-process and the timing of every chunk is ours, not a framework's.

This module holds the server's life (thread, loop, listener, the 'refused' fault) and its
route table; the rest lives with what changes together:
- behavior.py: SimBehavior, the knobs a test turns, and FAULTS;
- http11.py: HTTP/1.1 parsing and framing;
- generation.py: what an answer says and the schedule its tokens leave on;
- faults.py: the error answers a broken server gives;
- ollama_api.py / openai_api.py: one file per dialect;
- metrics.py: the Prometheus exposition on /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import threading
import time

from llm_upkeep.sim.behavior import FAULTS, SimBehavior, sha256_hex
from llm_upkeep.sim.faults import FaultMixin
from llm_upkeep.sim.generation import GenerationMixin
from llm_upkeep.sim.http11 import MAX_HEAD, HttpMixin, Request
from llm_upkeep.sim.metrics import MetricsMixin
from llm_upkeep.sim.ollama_api import OllamaMixin
from llm_upkeep.sim.openai_api import OpenAIMixin

__all__ = ["FAULTS", "SimBehavior", "SimServer", "main"]


class SimServer(HttpMixin, GenerationMixin, FaultMixin, OllamaMixin, OpenAIMixin, MetricsMixin):
    """One simulated LLM server on its own thread and event loop."""

    def __init__(self, behavior: SimBehavior | None = None, host: str = "127.0.0.1", port: int = 0):
        self.behavior = behavior or SimBehavior()
        self.host = host
        self.port = port
        self.requests: list[dict] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self._running = 0
        self._prompt_tokens_total = 0
        self._generation_tokens_total = 0
        self._success: dict[str, int] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimServer:
        if self._thread is not None:
            return self
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._listen())
            except BaseException as exc:  # surfaced to start()
                errors.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

        self._thread = threading.Thread(target=run, name=f"llm-sim-{id(self):x}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("simulator did not start within 10 s")
        if errors:
            self._thread.join(5)
            self._thread = None
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        loop = self._loop
        if loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(Exception):
                fut.result(10)
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_fault(self, fault: str | None) -> None:
        """Switch fault; 'refused' really closes the listener, None re-listens on the same port."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        self.behavior.fault = fault
        if self._loop is None or self._thread is None:
            return
        if fault == "refused":
            asyncio.run_coroutine_threadsafe(self._go_down(), self._loop).result(10)
        elif self._server is None:
            asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    @property
    def listening(self) -> bool:
        return self._server is not None

    def counters(self) -> dict[str, float]:
        """The metric values /metrics would report now (for tests)."""
        return {
            "prompt_tokens_total": self._prompt_tokens_total,
            "generation_tokens_total": self._generation_tokens_total,
            "num_requests_running": self._running,
        }

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle_conn, self.host, self.port, reuse_address=True, limit=MAX_HEAD
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _go_down(self) -> None:
        """Like a crashed process: no listener, every open connection dropped."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                w.transport.abort()

    async def _shutdown(self) -> None:
        await self._go_down()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    # ------------------------------------------------------------------ HTTP/1.1
    # ------------------------------------------------------------------ routing
    async def _dispatch(self, req: Request, reader, writer) -> bool:
        b = self.behavior
        if b.fault == "hang":
            await self._wait_for_disconnect(reader, writer)
        routes = {
            "/": self._root,
            "/api/generate": self._ollama_generate,
            "/api/chat": self._ollama_chat,
            "/api/tags": self._ollama_tags,
            "/api/ps": self._ollama_ps,
            "/api/show": self._ollama_show,
            "/api/version": self._ollama_version,
            "/api/embed": self._ollama_embed,
            "/api/embeddings": self._ollama_embeddings,
            "/api/pull": self._ollama_pull,
            "/api/create": self._ollama_create,
            "/api/push": self._ollama_push,
            "/api/delete": self._ollama_delete,
            "/api/copy": self._ollama_copy,
            "/v1/models": self._openai_models,
            "/v1/completions": self._openai_completions,
            "/v1/chat/completions": self._openai_chat,
            "/v1/embeddings": self._openai_embeddings,
            "/health": self._health,
            "/metrics": self._metrics,
            "/version": self._openai_version,
        }
        methods = {
            "/": ("GET", "HEAD"),
            "/api/tags": ("GET", "HEAD"),
            "/api/ps": ("GET",),
            "/api/version": ("GET", "HEAD"),
            "/api/delete": ("DELETE",),
            "/v1/models": ("GET",),
            "/health": ("GET", "HEAD"),
            "/metrics": ("GET",),
            "/version": ("GET",),
        }
        handler = routes.get(req.path)
        forced = b.route_status.get(req.path)
        if forced:
            handler = None if forced == 404 else handler
            if handler is not None:
                body = {"error": f"simulated HTTP {forced} on {req.path}"}
                return await self._json(writer, forced, body)
        if handler is None:
            if req.path.startswith("/api/"):
                return await self._send(writer, 404, b"404 page not found", "text/plain")
            return await self._json(writer, 404, {"detail": "Not Found"})
        allowed = methods.get(req.path, ("POST",))
        if req.method not in allowed:
            return await self._send(writer, 405, b"405 method not allowed", "text/plain")
        if req.path.startswith("/v1/") and b.api_key:
            auth = req.headers.get("authorization", "")
            if auth != f"Bearer {b.api_key}":
                return await self._json(writer, 401, {"error": "Unauthorized"})
        return await handler(req, writer)

    # ------------------------------------------------------------------ helpers


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Simulated Ollama + OpenAI-compatible LLM server.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=11434)
    p.add_argument("--ttft", type=float, default=0.05, help="seconds to the first token")
    p.add_argument("--itl", type=float, default=0.01, help="seconds between tokens")
    p.add_argument("--tokens", type=int, default=20, help="content tokens per response")
    p.add_argument("--model", default="llama3:8b")
    p.add_argument("--fault", choices=[f for f in FAULTS if f], default=None)
    p.add_argument("--thinking", action="store_true", help="emit thinking chunks before content")
    p.add_argument("--api-key-env", default=None, help="environment variable holding a required /v1 API key")
    args = p.parse_args(argv)
    behavior = SimBehavior(
        ttft_s=args.ttft,
        itl_s=args.itl,
        tokens=args.tokens,
        model=args.model,
        digest=sha256_hex(args.model),
        thinking=args.thinking,
    )
    if args.api_key_env:
        behavior.api_key = os.environ.get(args.api_key_env) or None
        if not behavior.api_key:
            p.error(f"environment variable {args.api_key_env} is not set or empty")
    server = SimServer(behavior, host=args.host, port=args.port)
    try:
        server.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror}")
        return 2
    if args.fault:
        server.set_fault(args.fault)
    print(f"LLM simulator listening on {server.url} (model {args.model}); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
