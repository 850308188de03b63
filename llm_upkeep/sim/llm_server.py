"""A protocol-faithful simulator of Ollama's API and the OpenAI-compatible API (vLLM style).

Why: no Ollama and no GPU server can run here, yet probes, benchmarks and flows must be
tested against a real HTTP peer with exact token timing and injectable faults. It is a raw
asyncio HTTP/1.1 server (chunked streams, keep-alive) on its own thread and loop, so a test
can start many instances in-process and the timing of every chunk is ours, not a framework's.

Ollama side follows docs/api.md: NDJSON streams, durations in nanoseconds, metric fields
omitted when zero, a final ``done: true`` object. OpenAI side: SSE ``data: {...}`` chunks, a
role-only first chat chunk, ``stream_options.include_usage`` usage chunk with empty choices,
``data: [DONE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

FAULTS = (
    None,
    "refused",
    "hang",
    "http_500",
    "oom",
    "malformed",
    "truncated",
    "gibberish",
    "slow_first_token",
)

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
}

_FILLER = (
    "The quick brown fox jumps over the lazy dog while the model keeps streaming tokens at a "
    "steady pace so that latency and throughput can be measured precisely by the maintenance probe"
).split()

_GIBBERISH = [
    "Ã¤",
    "ж",
    "漢",
    "\ufffd",
    "▁",
    "Ġ",
    "<0x0A>",
    "ðŁĺ",
    "ق",
    "ψ",
    "ค",
    "##",
    "्",
    "Ð½Ð°",
    "\u200b",
    "ﾟ",
    "⊕",
    "ß",
    "ę",
    "<unk>",
]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 32 * 1024 * 1024


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _norm(name: str) -> str:
    """Ollama treats 'llama3' as 'llama3:latest'."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class SimBehavior:
    """How the simulated server behaves; mutable at runtime, read on every request."""

    ttft_s: float = 0.05
    itl_s: float = 0.01
    tokens: int = 20
    fault: str | None = None
    slow_first_token_s: float = 15.0
    load_duration_s: float = 0.0
    vram_fraction: float = 1.0
    answers: dict[str, str] = field(default_factory=dict)
    model: str = "llama3:8b"
    models: list[str] = field(default_factory=list)
    digest: str = field(default_factory=lambda: _sha256_hex("llama3:8b"))
    version: str = "0.12.6"
    api_key: str | None = None
    thinking: bool = False
    role_chunk: bool = True
    usage: bool = True
    embedding_dim: int = 16
    slowdown: float = 1.0
    # Beyond the core contract:
    thinking_tokens: int = 8
    reasoning_field: str = "reasoning_content"  # OpenAI delta key for thinking ("reasoning" in newer vLLM)
    model_size: int = 4_661_224_676
    digests: dict[str, str] = field(default_factory=dict)  # local digests of models other than `model`
    registry: dict[str, str] | None = None  # pullable models -> remote digest; None: any model pulls
    pull_error: str | None = None  # error line sent by /api/pull after downloading (e.g. digest mismatch)
    pull_duration_s: float = 0.1
    kv_cache_usage: float | None = None  # vllm:gpu_cache_usage_perc override (0..1)
    truncate_after: int = 3  # content chunks sent before a "truncated" fault cuts the stream
    context_length: int = 8192
    route_status: dict[str, int] = field(
        default_factory=dict
    )  # path -> error status it answers (404: no route)

    def all_models(self) -> list[str]:
        out = [self.model]
        for m in self.models:
            if _norm(m) not in {_norm(x) for x in out}:
                out.append(m)
        return out

    def has_model(self, name: str | None) -> bool:
        return bool(name) and _norm(name) in {_norm(m) for m in self.all_models()}

    def digest_of(self, name: str) -> str:
        if _norm(name) == _norm(self.model):
            return self.digest
        for k, v in self.digests.items():
            if _norm(k) == _norm(name):
                return v
        return _sha256_hex(_norm(name))


class _Request:
    __slots__ = ("method", "path", "query", "headers", "body", "json", "t0", "keep_alive", "finished")

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes, t0: float):
        parts = urlsplit(target)
        self.method = method
        self.path = parts.path or "/"
        self.query = parse_qs(parts.query)
        self.headers = headers
        self.body = body
        self.t0 = t0
        self.json: Any = None
        if body:
            try:
                self.json = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                self.json = None
        self.keep_alive = True
        self.finished = False


class _Gone(Exception):
    """The client went away; stop generating for it."""


@dataclass
class _Plan:
    thinking: list[str]
    content: list[str]
    done_reason: str
    prompt_tokens: int


class SimServer:
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
            self._handle_conn, self.host, self.port, reuse_address=True, limit=_MAX_HEAD
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
    async def _handle_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                req = await self._read_request(reader, writer)
                if req is None:
                    break
                if self.behavior.fault == "refused" and self._server is not None:
                    await self._go_down()
                    break
                keep = await self._dispatch(req, reader, writer)
                if not keep or not req.keep_alive:
                    break
        except (_Gone, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels; ending normally keeps asyncio's stream callback from logging it.
            pass
        except Exception:
            log.exception("simulator connection handler failed")
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        except asyncio.LimitOverrunError:
            await self._send(writer, 400, b"request header too large", "text/plain", keep_alive=False)
            return None
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            await self._send(writer, 400, b"bad request line", "text/plain", keep_alive=False)
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            total = 0
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                total += size
                if total > _MAX_BODY:
                    await self._send(writer, 413, b"body too large", "text/plain", keep_alive=False)
                    return None
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        elif "content-length" in headers:
            try:
                n = int(headers["content-length"])
            except ValueError:
                await self._send(writer, 400, b"bad content-length", "text/plain", keep_alive=False)
                return None
            if n > _MAX_BODY:
                await self._send(writer, 413, b"body too large", "text/plain", keep_alive=False)
                return None
            body = await reader.readexactly(n) if n else b""
        req = _Request(method.upper(), target, headers, body, asyncio.get_running_loop().time())
        conn = headers.get("connection", "").lower()
        req.keep_alive = version.upper() == "HTTP/1.1" and conn != "close" or conn == "keep-alive"
        self.requests.append(
            {
                "method": req.method,
                "path": req.path,
                "json": req.json,
                "headers": dict(headers),
                "time": time.time(),
            }
        )
        return req

    def _head(
        self, status: int, ctype: str | None, length: int | None, keep_alive: bool, extra=None
    ) -> bytes:
        h = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Date: {formatdate(usegmt=True)}"]
        if ctype:
            h.append(f"Content-Type: {ctype}")
        if length is None:
            h.append("Transfer-Encoding: chunked")
        else:
            h.append(f"Content-Length: {length}")
        for k, v in (extra or {}).items():
            h.append(f"{k}: {v}")
        h.append("Connection: keep-alive" if keep_alive else "Connection: close")
        return ("\r\n".join(h) + "\r\n\r\n").encode("latin-1")

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        ctype: str | None = "application/json; charset=utf-8",
        *,
        keep_alive: bool = True,
        extra: dict | None = None,
        head_only: bool = False,
    ) -> bool:
        writer.write(self._head(status, ctype, len(body), keep_alive, extra) + (b"" if head_only else body))
        await writer.drain()
        return keep_alive

    async def _json(self, writer, status: int, obj: Any, keep_alive: bool = True) -> bool:
        return await self._send(writer, status, json.dumps(obj).encode(), keep_alive=keep_alive)

    async def _stream_start(self, writer, ctype: str, extra: dict | None = None) -> None:
        writer.write(self._head(200, ctype, None, True, extra))
        await writer.drain()

    async def _chunk(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if writer.is_closing():
            raise _Gone()
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()

    async def _stream_end(self, writer) -> None:
        if writer.is_closing():
            raise _Gone()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _sleep_until(self, when: float, writer: asyncio.StreamWriter) -> None:
        """Sleep to an absolute loop time (no drift), noticing a client that left."""
        loop = asyncio.get_running_loop()
        while True:
            if writer.is_closing():
                raise _Gone()
            left = when - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.25))

    async def _wait_for_disconnect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The 'hang' fault: accept, read, never answer, until the client gives up."""
        with contextlib.suppress(Exception):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
        raise _Gone()

    # ------------------------------------------------------------------ routing
    async def _dispatch(self, req: _Request, reader, writer) -> bool:
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
    def _prompt_tokens(self, text: str) -> int:
        return max(1, len(re.findall(r"\w+|[^\w\s]", text)))

    def _plan(self, prompt: str, max_tokens: int | None, *, thinking_ok: bool, seed: int | None) -> _Plan:
        b = self.behavior
        thinking: list[str] = []
        if b.thinking and thinking_ok and b.thinking_tokens > 0:
            words = "Let me think about what is being asked here and answer briefly".split()
            thinking = [(w if i == 0 else " " + w) for i, w in enumerate(_cycle(words, b.thinking_tokens))]
        if b.fault == "gibberish":
            rnd = random.Random(seed if seed is not None else 0)
            content = [
                "".join(rnd.choice(_GIBBERISH) for _ in range(rnd.randint(1, 3))) for _ in range(b.tokens)
            ]
        else:
            answer = None
            low = prompt.lower()
            for key, text in b.answers.items():
                if key.lower() in low:
                    answer = text
                    break
            if answer is not None:
                content = re.findall(r"\s*\S+", answer) or [answer]
            else:
                content = [(w if i == 0 else " " + w) for i, w in enumerate(_cycle(_FILLER, b.tokens))]
        reason = "stop"
        if max_tokens is not None and max_tokens >= 0:
            if len(thinking) >= max_tokens:
                thinking, content = thinking[:max_tokens], []
                reason = "length"
            elif len(thinking) + len(content) > max_tokens:
                content = content[: max_tokens - len(thinking)]
                reason = "length"
        return _Plan(thinking, content, reason, self._prompt_tokens(prompt))

    def _finish(self, req: _Request, plan: _Plan) -> None:
        """Count the request as served before its last bytes go out, so a client that reads
        /metrics right after the answer sees it counted."""
        if not req.finished:
            req.finished = True
            self._running -= 1
            self._success[plan.done_reason] = self._success.get(plan.done_reason, 0) + 1

    def _first_delay(self) -> float:
        b = self.behavior
        if b.fault == "slow_first_token":
            return b.slow_first_token_s + b.load_duration_s
        return b.ttft_s * b.slowdown + b.load_duration_s

    async def _tokens(self, req: _Request, plan: _Plan, writer, emit) -> tuple[float, float]:
        """Emit every planned piece on its absolute schedule; returns (t_first, t_last) loop times."""
        loop = asyncio.get_running_loop()
        b = self.behavior
        start = req.t0 + self._first_delay()
        pieces = [(p, True) for p in plan.thinking] + [(p, False) for p in plan.content]
        t_first = t_last = start
        for i, (piece, is_thinking) in enumerate(pieces):
            await self._sleep_until(start + i * b.itl_s * b.slowdown, writer)
            now = loop.time()
            if i == 0:
                t_first = now
            t_last = now
            await emit(piece, is_thinking)
            self._generation_tokens_total += 1
        if not pieces:
            await self._sleep_until(start, writer)
            t_first = t_last = loop.time()
        return t_first, t_last

    async def _fault_response(self, dialect: str, writer) -> bool | None:
        """Answer with the error a faulty server gives, or None when the request goes on."""
        f = self.behavior.fault
        if f == "http_500":
            if dialect == "ollama":
                body = {"error": "an error was encountered while running the model: unexpected EOF"}
            else:
                body = {
                    "object": "error",
                    "message": "Internal Server Error: EngineCore encountered an issue.",
                    "type": "InternalServerError",
                    "param": None,
                    "code": 500,
                }
            return await self._json(writer, 500, body)
        if f == "oom":
            if dialect == "ollama":
                body = {
                    "error": "llama runner process has terminated: cudaMalloc failed: out of memory "
                    "(model requires more system memory (9.7 GiB) than is available (3.1 GiB))"
                }
            else:
                body = {
                    "object": "error",
                    "message": "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
                    "of 23.64 GiB of which 1.12 GiB is free. No available memory for the KV cache blocks.",
                    "type": "InternalServerError",
                    "param": None,
                    "code": 500,
                }
            return await self._json(writer, 500, body)
        return None

    async def _model_missing(self, dialect: str, name: str | None, writer) -> bool | None:
        if self.behavior.has_model(name):
            return None
        if dialect == "ollama":
            if not name:
                return await self._json(writer, 400, {"error": "model is required"})
            return await self._json(writer, 404, {"error": f"model '{name}' not found"})
        return await self._json(
            writer,
            404,
            {
                "object": "error",
                "message": f"The model `{name}` does not exist.",
                "type": "NotFoundError",
                "param": "model",
                "code": 404,
            },
        )

    # ------------------------------------------------------------------ Ollama
    async def _root(self, req, writer) -> bool:
        return await self._send(
            writer, 200, b"Ollama is running", "text/plain; charset=utf-8", head_only=req.method == "HEAD"
        )

    async def _ollama_version(self, req, writer) -> bool:
        return await self._json(writer, 200, {"version": self.behavior.version})

    def _model_details(self, name: str) -> dict:
        fam = re.split(r"[^a-z]", _norm(name).rsplit("/", 1)[-1].lower())[0] or "llama"
        m = re.search(r":(\d+(?:\.\d+)?)b", _norm(name).lower())
        return {
            "parent_model": "",
            "format": "gguf",
            "family": fam,
            "families": [fam],
            "parameter_size": f"{m.group(1)}B" if m else "8.0B",
            "quantization_level": "Q4_0",
        }

    async def _ollama_tags(self, req, writer) -> bool:
        b = self.behavior
        models = []
        for name in b.all_models():
            n = _norm(name)
            models.append(
                {
                    "name": n,
                    "model": n,
                    "modified_at": "2026-11-01T08:00:00.000000Z",
                    "size": b.model_size,
                    "digest": b.digest_of(name),
                    "details": self._model_details(name),
                }
            )
        return await self._json(writer, 200, {"models": models})

    async def _ollama_ps(self, req, writer) -> bool:
        b = self.behavior
        n = _norm(b.model)
        expires = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        entry = {
            "name": n,
            "model": n,
            "size": b.model_size,
            "digest": b.digest_of(b.model),
            "details": self._model_details(b.model),
            "expires_at": expires,
            "size_vram": int(b.model_size * max(0.0, min(1.0, b.vram_fraction))),
            "context_length": b.context_length,
        }
        return await self._json(writer, 200, {"models": [entry]})

    async def _ollama_show(self, req, writer) -> bool:
        body = req.json if isinstance(req.json, dict) else {}
        name = body.get("model") or body.get("name")
        if not self.behavior.has_model(name):
            return await self._json(writer, 404, {"error": f"model '{name}' not found"})
        caps = ["completion"] + (["thinking"] if self.behavior.thinking else [])
        details = self._model_details(name)
        return await self._json(
            writer,
            200,
            {
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM {_norm(name)}\n',
                "parameters": 'stop                           "<|eot_id|>"',
                "template": "{{ .Prompt }}",
                "details": details,
                "model_info": {
                    "general.architecture": details["family"],
                    "general.parameter_count": 8030261248,
                    f"{details['family']}.context_length": self.behavior.context_length,
                    f"{details['family']}.embedding_length": 4096,
                },
                "capabilities": caps,
                "modified_at": "2026-11-01T08:00:00.000000Z",
            },
        )

    def _embedding(self, text: str) -> list[float]:
        """Bag of hashed words: similar texts share words, so their vectors are near."""
        dim = max(1, self.behavior.embedding_dim)
        vec = [0.0] * dim
        for w in re.findall(r"\w+", text.lower()):
            h = hashlib.sha256(w.encode()).digest()
            vec[int.from_bytes(h[:4], "big") % dim] += 1.0 if h[4] & 1 else -1.0
        norm = math.sqrt(sum(x * x for x in vec))
        if norm == 0:
            vec[0], norm = 1.0, 1.0
        return [round(x / norm, 8) for x in vec]

    async def _ollama_embed(self, req, writer) -> bool:
        body = req.json if isinstance(req.json, dict) else {}
        missing = await self._model_missing("ollama", body.get("model"), writer)
        if missing is not None:
            return missing
        fault = await self._fault_response("ollama", writer)
        if fault is not None:
            return fault
        inp = body.get("input", [])
        texts = [inp] if isinstance(inp, str) else [str(x) for x in inp]
        t = asyncio.get_running_loop().time()
        out = {
            "model": body.get("model"),
            "embeddings": [self._embedding(x) for x in texts],
            "total_duration": max(1, int((t - req.t0) * 1e9)),
            "prompt_eval_count": sum(self._prompt_tokens(x) for x in texts),
        }
        if self.behavior.load_duration_s:
            out["load_duration"] = int(self.behavior.load_duration_s * 1e9)
        return await self._json(writer, 200, out)

    async def _ollama_embeddings(self, req, writer) -> bool:
        body = req.json if isinstance(req.json, dict) else {}
        missing = await self._model_missing("ollama", body.get("model"), writer)
        if missing is not None:
            return missing
        return await self._json(writer, 200, {"embedding": self._embedding(str(body.get("prompt", "")))})

    async def _ollama_generate(self, req, writer) -> bool:
        body = req.json if isinstance(req.json, dict) else None
        if body is None:
            return await self._json(writer, 400, {"error": "invalid request body"})
        prompt = str(body.get("prompt") or "")
        if body.get("system"):
            prompt = f"{body['system']}\n{prompt}"
        return await self._ollama_gen(req, writer, body, prompt, chat=False, empty=not body.get("prompt"))

    async def _ollama_chat(self, req, writer) -> bool:
        body = req.json if isinstance(req.json, dict) else None
        if body is None:
            return await self._json(writer, 400, {"error": "invalid request body"})
        msgs = body.get("messages") or []
        prompt = "\n".join(str(m.get("content", "")) for m in msgs if isinstance(m, dict))
        return await self._ollama_gen(req, writer, body, prompt, chat=True, empty=not msgs)

    async def _ollama_gen(self, req, writer, body: dict, prompt: str, *, chat: bool, empty: bool) -> bool:
        b = self.behavior
        model = body.get("model")
        missing = await self._model_missing("ollama", model, writer)
        if missing is not None:
            return missing
        fault = await self._fault_response("ollama", writer)
        if fault is not None:
            return fault
        opts = body.get("options") or {}
        stream = body.get("stream", True) is not False
        base = {"model": model}

        if empty:  # load / unload request per the docs
            reason = "unload" if body.get("keep_alive") in (0, "0", "0s") else "load"
            msg = {**base, "created_at": _now_rfc3339()}
            if chat:
                msg["message"] = {"role": "assistant", "content": ""}
            else:
                msg["response"] = ""
            msg.update({"done": True, "done_reason": reason})
            return await self._json(writer, 200, msg)

        num_predict = opts.get("num_predict")
        max_tokens = int(num_predict) if isinstance(num_predict, int | float) and num_predict >= 0 else None
        plan = self._plan(prompt, max_tokens, thinking_ok=True, seed=opts.get("seed"))
        self._prompt_tokens_total += plan.prompt_tokens
        self._running += 1
        try:
            if b.fault == "malformed":
                return await self._malformed(req, writer, "ollama", stream)
            if not stream:
                return await self._ollama_nonstream(req, writer, base, plan, chat)
            await self._stream_start(writer, "application/x-ndjson")
            sent = 0

            async def emit(piece: str, is_thinking: bool) -> None:
                nonlocal sent
                msg = {**base, "created_at": _now_rfc3339()}
                key = "thinking" if is_thinking else "content"
                if chat:
                    msg["message"] = {"role": "assistant", "content": "" if is_thinking else piece}
                    if is_thinking:
                        msg["message"]["thinking"] = piece
                else:
                    msg["response"] = "" if is_thinking else piece
                    if is_thinking:
                        msg["thinking"] = piece
                msg["done"] = False
                if b.fault == "truncated" and key == "content" and sent >= b.truncate_after:
                    writer.close()
                    raise _Gone()
                await self._chunk(writer, json.dumps(msg).encode() + b"\n")
                if not is_thinking:
                    sent += 1

            t_first, t_last = await self._tokens(req, plan, writer, emit)
            if b.fault == "truncated":
                writer.close()
                raise _Gone()
            final = {**base, "created_at": _now_rfc3339()}
            if chat:
                final["message"] = {"role": "assistant", "content": ""}
            else:
                final["response"] = ""
            final.update(self._ollama_metrics(req, plan, t_first, t_last))
            if not chat:
                final["context"] = [1, 2, 3]
            self._finish(req, plan)
            await self._chunk(writer, json.dumps(final).encode() + b"\n")
            await self._stream_end(writer)
            return True
        finally:
            if not req.finished:
                self._running -= 1

    def _ollama_metrics(self, req, plan: _Plan, t_first: float, t_last: float) -> dict:
        b = self.behavior
        loop = asyncio.get_running_loop()
        n = len(plan.thinking) + len(plan.content)
        itl = b.itl_s * b.slowdown
        m: dict[str, Any] = {"done": True, "done_reason": plan.done_reason}
        vals = {
            "total_duration": int((loop.time() - req.t0) * 1e9),
            "load_duration": int(b.load_duration_s * 1e9),
            "prompt_eval_count": plan.prompt_tokens,
            "prompt_eval_duration": int(max(0.0, t_first - req.t0 - b.load_duration_s) * 1e9),
            "eval_count": n,
            "eval_duration": int(((t_last - t_first) + itl) * 1e9) if n else 0,
        }
        # Ollama's Go structs use omitempty: zero metrics are absent, not 0.
        m.update({k: v for k, v in vals.items() if v})
        return m

    async def _ollama_nonstream(self, req, writer, base: dict, plan: _Plan, chat: bool) -> bool:
        b = self.behavior
        t_first, t_last = await self._tokens(req, plan, writer, _noop_emit)
        text = "".join(plan.content)
        thinking = "".join(plan.thinking)
        msg = {**base, "created_at": _now_rfc3339()}
        if chat:
            msg["message"] = {"role": "assistant", "content": text}
            if thinking:
                msg["message"]["thinking"] = thinking
        else:
            msg["response"] = text
            if thinking:
                msg["thinking"] = thinking
        msg.update(self._ollama_metrics(req, plan, t_first, t_last))
        if not chat:
            msg["context"] = [1, 2, 3]
        data = json.dumps(msg).encode()
        if b.fault == "truncated":
            writer.write(
                self._head(200, "application/json; charset=utf-8", len(data), True) + data[: len(data) // 2]
            )
            await writer.drain()
            writer.close()
            raise _Gone()
        self._finish(req, plan)
        return await self._send(writer, 200, data)

    async def _malformed(self, req, writer, dialect: str, stream: bool) -> bool:
        await self._sleep_until(req.t0 + self._first_delay(), writer)
        model = self.behavior.model
        if not stream:
            return await self._send(writer, 200, b'{"model": "' + model.encode() + b'", "response": "The sky')
        if dialect == "ollama":
            await self._stream_start(writer, "application/x-ndjson")
            for piece in (b'{"model":"%s","created_at":"' % model.encode(), b"\x00\x1f<html>garbage", b"}{]"):
                await self._chunk(writer, piece + b"\n")
        else:
            await self._stream_start(writer, "text/event-stream; charset=utf-8")
            for piece in (b'data: {"id":"chatcmpl-x","choices":[{"delta":{"content":"The', b"data: }{]"):
                await self._chunk(writer, piece + b"\n\n")
        await self._stream_end(writer)
        return True

    async def _progress_stream(
        self, writer, statuses: list[dict], duration: float, before_success=None
    ) -> None:
        await self._stream_start(writer, "application/x-ndjson")
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, st in enumerate(statuses):
            await self._sleep_until(start + duration * i / max(1, len(statuses)), writer)
            if st.get("status") == "success" and before_success is not None:
                before_success()  # like Ollama: the manifest is written before "success" is sent
            await self._chunk(writer, json.dumps(st).encode() + b"\n")
        await self._stream_end(writer)

    async def _ollama_pull(self, req, writer) -> bool:
        b = self.behavior
        body = req.json if isinstance(req.json, dict) else {}
        name = body.get("model") or body.get("name")
        if not name:
            return await self._json(writer, 400, {"error": "model is required"})
        stream = body.get("stream", True) is not False
        remote = None
        if b.registry is None:
            remote = b.digest_of(name)
        else:
            for k, v in b.registry.items():
                if _norm(k) == _norm(name):
                    remote = v
        if remote is None:
            err = {"error": "pull model manifest: file does not exist"}
            if not stream:
                return await self._json(writer, 500, err)
            await self._progress_stream(writer, [{"status": "pulling manifest"}, err], 0.01)
            return True
        total = b.model_size
        layer = f"sha256:{remote}"
        statuses: list[dict] = [{"status": "pulling manifest"}]
        for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
            st = {"status": f"pulling {remote[:12]}", "digest": layer, "total": total}
            if frac:
                st["completed"] = int(total * frac)
            statuses.append(st)
        statuses.append({"status": "verifying sha256 digest"})
        if b.pull_error:
            statuses.append({"error": b.pull_error})
        else:
            statuses += [{"status": "writing manifest"}, {"status": "success"}]
        ok = not b.pull_error
        if not stream:
            await asyncio.sleep(b.pull_duration_s)
            if ok:
                self._install(name, remote)
                return await self._json(writer, 200, {"status": "success"})
            return await self._json(writer, 500, {"error": b.pull_error})
        await self._progress_stream(
            writer, statuses, b.pull_duration_s, before_success=lambda: self._install(name, remote)
        )
        return True

    def _install(self, name: str, digest: str) -> None:
        b = self.behavior
        if _norm(name) == _norm(b.model):
            b.digest = digest
            return
        b.digests[_norm(name)] = digest
        if not b.has_model(name):
            b.models.append(_norm(name))

    async def _ollama_create(self, req, writer) -> bool:
        body = req.json if isinstance(req.json, dict) else {}
        name = body.get("model") or body.get("name")
        if not name:
            return await self._json(writer, 400, {"error": "model is required"})
        src = body.get("from")
        if src and not self.behavior.has_model(src):
            return await self._json(writer, 404, {"error": f"model '{src}' not found"})
        digest = _sha256_hex(json.dumps(body, sort_keys=True))
        statuses = [
            {"status": "reading model metadata"},
            {"status": f"using existing layer sha256:{self.behavior.digest_of(src or self.behavior.model)}"},
            {"status": f"writing layer sha256:{digest}"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]
        self._install(name, digest)
        if body.get("stream", True) is False:
            return await self._json(writer, 200, {"status": "success"})
        await self._progress_stream(writer, statuses, 0.02)
        return True

    async def _ollama_push(self, req, writer) -> bool:
        body = req.json if isinstance(req.json, dict) else {}
        name = body.get("model") or body.get("name")
        if not self.behavior.has_model(name):
            return await self._json(writer, 404, {"error": f"model '{name}' not found"})
        digest = f"sha256:{self.behavior.digest_of(name)}"
        total = self.behavior.model_size
        statuses = [
            {"status": "retrieving manifest"},
            {"status": "starting upload", "digest": digest, "total": total},
            {"status": "starting upload", "digest": digest, "total": total, "completed": total},
            {"status": "pushing manifest"},
            {"status": "success"},
        ]
        if body.get("stream", True) is False:
            return await self._json(writer, 200, {"status": "success"})
        await self._progress_stream(writer, statuses, 0.02)
        return True

    async def _ollama_delete(self, req, writer) -> bool:
        b = self.behavior
        body = req.json if isinstance(req.json, dict) else {}
        name = body.get("model") or body.get("name")
        if not b.has_model(name):
            return await self._json(writer, 404, {"error": f"model '{name}' not found"})
        if _norm(name) == _norm(b.model):
            return await self._json(writer, 500, {"error": "model is in use by the simulator's loaded model"})
        b.models = [m for m in b.models if _norm(m) != _norm(name)]
        b.digests.pop(_norm(name), None)
        return await self._send(writer, 200, b"", None)

    async def _ollama_copy(self, req, writer) -> bool:
        b = self.behavior
        body = req.json if isinstance(req.json, dict) else {}
        src, dst = body.get("source"), body.get("destination")
        if not b.has_model(src) or not dst:
            return await self._json(writer, 404, {"error": f"model '{src}' not found"})
        self._install(dst, b.digest_of(src))
        return await self._send(writer, 200, b"", None)

    # ------------------------------------------------------------------ OpenAI
    async def _openai_models(self, req, writer) -> bool:
        created = int(time.time())
        data = [
            {
                "id": m,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": m,
                "parent": None,
                "max_model_len": self.behavior.context_length,
            }
            for m in self.behavior.all_models()
        ]
        return await self._json(writer, 200, {"object": "list", "data": data})

    async def _openai_version(self, req, writer) -> bool:
        return await self._json(writer, 200, {"version": self.behavior.version})

    async def _health(self, req, writer) -> bool:
        if self.behavior.fault in ("http_500", "oom"):
            return await self._send(writer, 500, b"", None)
        return await self._send(writer, 200, b"", None, head_only=req.method == "HEAD")

    async def _metrics(self, req, writer) -> bool:
        b = self.behavior
        label = f'{{engine="0",model_name="{b.model}"}}'
        kv = b.kv_cache_usage if b.kv_cache_usage is not None else min(1.0, 0.01 + 0.05 * self._running)
        rows = [
            (
                "vllm:num_requests_running",
                "gauge",
                "Number of requests in model execution batches.",
                [(label, self._running)],
            ),
            (
                "vllm:num_requests_waiting",
                "gauge",
                "Number of requests waiting to be processed.",
                [(label, 0)],
            ),
            (
                "vllm:gpu_cache_usage_perc",
                "gauge",
                "GPU KV-cache usage. 1 means 100 percent usage.",
                [(label, kv)],
            ),
            (
                "vllm:prompt_tokens_total",
                "counter",
                "Number of prefill tokens processed.",
                [(label, self._prompt_tokens_total)],
            ),
            (
                "vllm:generation_tokens_total",
                "counter",
                "Number of generation tokens processed.",
                [(label, self._generation_tokens_total)],
            ),
            (
                "vllm:request_success_total",
                "counter",
                "Count of successfully processed requests.",
                [
                    (f'{{engine="0",finished_reason="{r}",model_name="{b.model}"}}', n)
                    for r, n in sorted(self._success.items())
                ]
                or [(label, 0)],
            ),
        ]
        out = []
        for name, kind, help_, samples in rows:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for lab, val in samples:
                out.append(f"{name}{lab} {float(val)!r}")
        text = "\n".join(out) + "\n"
        return await self._send(writer, 200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")

    async def _openai_embeddings(self, req, writer) -> bool:
        body = req.json if isinstance(req.json, dict) else {}
        missing = await self._model_missing("openai", body.get("model"), writer)
        if missing is not None:
            return missing
        fault = await self._fault_response("openai", writer)
        if fault is not None:
            return fault
        inp = body.get("input", [])
        texts = [inp] if isinstance(inp, str) else [str(x) for x in inp]
        n = sum(self._prompt_tokens(x) for x in texts)
        return await self._json(
            writer,
            200,
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": self._embedding(x)}
                    for i, x in enumerate(texts)
                ],
                "model": body.get("model"),
                "usage": {"prompt_tokens": n, "total_tokens": n},
            },
        )

    async def _openai_chat(self, req, writer) -> bool:
        body = req.json if isinstance(req.json, dict) else None
        if body is None:
            return await self._openai_bad(writer, "Invalid JSON body")
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return await self._openai_bad(writer, "messages: field required")
        prompt = "\n".join(_content_text(m.get("content")) for m in msgs if isinstance(m, dict))
        return await self._openai_gen(req, writer, body, prompt, chat=True)

    async def _openai_completions(self, req, writer) -> bool:
        body = req.json if isinstance(req.json, dict) else None
        if body is None:
            return await self._openai_bad(writer, "Invalid JSON body")
        p = body.get("prompt")
        if p is None:
            return await self._openai_bad(writer, "prompt: field required")
        prompt = p if isinstance(p, str) else " ".join(str(x) for x in p)
        return await self._openai_gen(req, writer, body, prompt, chat=False)

    async def _openai_bad(self, writer, message: str) -> bool:
        return await self._json(
            writer,
            400,
            {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": 400},
        )

    async def _openai_gen(self, req, writer, body: dict, prompt: str, *, chat: bool) -> bool:
        b = self.behavior
        model = body.get("model")
        missing = await self._model_missing("openai", model, writer)
        if missing is not None:
            return missing
        fault = await self._fault_response("openai", writer)
        if fault is not None:
            return fault
        mt = body.get("max_completion_tokens", body.get("max_tokens"))
        if mt is None and not chat:
            mt = 16  # the OpenAI completions default
        max_tokens = int(mt) if isinstance(mt, int | float) else None
        stream = bool(body.get("stream", False))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and b.usage
        plan = self._plan(prompt, max_tokens, thinking_ok=chat, seed=body.get("seed"))
        self._prompt_tokens_total += plan.prompt_tokens
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        created = int(time.time())
        obj = "chat.completion.chunk" if chat else "text_completion"
        n_out = len(plan.thinking) + len(plan.content)
        usage = {
            "prompt_tokens": plan.prompt_tokens,
            "total_tokens": plan.prompt_tokens + n_out,
            "completion_tokens": n_out,
        }
        self._running += 1
        try:
            if b.fault == "malformed":
                return await self._malformed(req, writer, "openai", stream)
            if not stream:
                await self._tokens(req, plan, writer, _noop_emit)
                text = "".join(plan.content)
                if chat:
                    message: dict[str, Any] = {"role": "assistant", "content": text}
                    if plan.thinking:
                        message[b.reasoning_field] = "".join(plan.thinking)
                    choice = {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": plan.done_reason,
                    }
                else:
                    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": plan.done_reason}
                out = {
                    "id": rid,
                    "object": "chat.completion" if chat else "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                }
                data = json.dumps(out).encode()
                if b.fault == "truncated":
                    writer.write(
                        self._head(200, "application/json", len(data), True) + data[: len(data) // 2]
                    )
                    await writer.drain()
                    writer.close()
                    raise _Gone()
                self._finish(req, plan)
                return await self._send(writer, 200, data, "application/json")

            def chunk(choice: dict | None, extra: dict | None = None) -> bytes:
                d: dict[str, Any] = {"id": rid, "object": obj, "created": created, "model": model}
                d["choices"] = [choice] if choice is not None else []
                if extra:
                    d.update(extra)
                return b"data: " + json.dumps(d).encode() + b"\n\n"

            await self._stream_start(writer, "text/event-stream; charset=utf-8")
            if chat and b.role_chunk:
                await self._chunk(
                    writer,
                    chunk(
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ),
                )
            sent = 0

            async def emit(piece: str, is_thinking: bool) -> None:
                nonlocal sent
                if b.fault == "truncated" and not is_thinking and sent >= b.truncate_after:
                    writer.close()
                    raise _Gone()
                if chat:
                    delta = {b.reasoning_field: piece} if is_thinking else {"content": piece}
                    if sent == 0 and not b.role_chunk and not is_thinking:
                        delta["role"] = "assistant"
                    c = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
                else:
                    c = {"index": 0, "text": piece, "logprobs": None, "finish_reason": None}
                await self._chunk(writer, chunk(c))
                if not is_thinking:
                    sent += 1

            await self._tokens(req, plan, writer, emit)
            if b.fault == "truncated":
                writer.close()
                raise _Gone()
            if chat:
                last = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": plan.done_reason}
            else:
                last = {"index": 0, "text": "", "logprobs": None, "finish_reason": plan.done_reason}
            self._finish(req, plan)
            await self._chunk(writer, chunk(last))
            if include_usage:
                await self._chunk(writer, chunk(None, {"usage": usage}))
            await self._chunk(writer, b"data: [DONE]\n\n")
            await self._stream_end(writer)
            return True
        finally:
            if not req.finished:
                self._running -= 1


async def _noop_emit(piece: str, is_thinking: bool) -> None:
    return None


def _cycle(words: list[str] | tuple[str, ...], n: int) -> list[str]:
    return [words[i % len(words)] for i in range(max(0, n))]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


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
        digest=_sha256_hex(args.model),
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
