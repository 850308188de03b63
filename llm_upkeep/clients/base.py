"""Shared plumbing of the LLM clients: one pooled httpx client, per-endpoint timeouts, error mapping.

Why a total deadline on top of httpx's timeouts: httpx's read timeout bounds only the silence
between two reads, so a server that trickles one token every few seconds would never time out.
Every await on the network is therefore also bounded by ``endpoint.timeout_s`` from the start of
the call (``asyncio.timeout_at`` around each await, so a deadline never fires in caller code
between two yielded stream events).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from llm_upkeep.clients.errors import LLMError, classify_status, mentions_oom, short_detail
from llm_upkeep.clients.sendtrace import trace_extensions
from llm_upkeep.clients.tls import shared_verify_context
from llm_upkeep.config import EndpointConfig

# httpcore imports its anyio backend lazily on the first request; that ~25-50 ms would land in
# the first probe's TTFT, so pay it at import time instead.
with contextlib.suppress(ImportError):
    import anyio._backends._asyncio  # noqa: F401
    import httpcore._backends.anyio  # noqa: F401

_NET_ERRORS = (httpx.HTTPError, httpx.StreamError, TimeoutError, OSError)

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest non-streamed answer read (model lists, /api/show with a long template, embeddings)."""
MAX_ERROR_BODY_BYTES = 64 * 1024
"""An error answer is read up to this much: enough for its message, never a flood."""
MAX_LINE_CHARS = 1024 * 1024
"""Longest stream line (one NDJSON object or SSE field): a token chunk is a few hundred bytes."""


async def read_capped(resp: httpx.Response, cap: int, where: str, *, truncate: bool = False) -> bytes:
    """The body, read chunk by chunk and never past ``cap`` (decoded bytes, so a compressed bomb
    stops too). Past the cap: LLMError, or the first ``cap`` bytes when ``truncate``."""
    size = resp.headers.get("content-length", "")
    if not truncate and size.isdigit() and int(size) > cap:
        raise LLMError("malformed", f"{where}: answer of {int(size)} bytes is over the {cap}-byte limit")
    buf = bytearray()
    async for chunk in resp.aiter_bytes():
        buf += chunk
        if len(buf) > cap:
            if truncate:
                return bytes(buf[:cap])
            raise LLMError("malformed", f"{where}: answer is over the {cap}-byte limit; reading stopped")
    return bytes(buf)


def text_field(where: str, value: Any) -> str:
    """A text field of a stream object: a string (or absent); anything else is a malformed answer."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise LLMError("malformed", f"{where}: text field is {type(value).__name__}, not a string")
    return value


def make_http_client(
    max_connections: int = 200, *, trust_env: bool = True, verify: Any = True
) -> httpx.AsyncClient:
    """The one AsyncClient every probe and benchmark shares (connection pool sized for fan-out).
    verify: True (the process's shared verifying context, see :mod:`llm_upkeep.clients.tls`), an
    ssl.SSLContext, or False."""
    if verify is True:
        verify = shared_verify_context(trust_env)
    return httpx.AsyncClient(
        verify=verify,
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
        ),
        timeout=httpx.Timeout(30.0),
        follow_redirects=False,
        trust_env=trust_env,
    )


@dataclass
class StreamEvent:
    """One received piece of a streamed answer, stamped on arrival."""

    t: float
    text: str = ""
    reasoning: str = ""
    done: bool = False
    usage: dict | None = None
    server: dict | None = None


@dataclass(frozen=True)
class GenRequest:
    """One generation as the caller asked for it; each dialect turns it into its own request body."""

    prompt: str
    max_tokens: int
    chat: bool = True
    temperature: float = 0.0
    seed: int | None = 42
    system: str | None = None

    def messages(self) -> list[dict[str, str]]:
        """Chat messages: the system prompt (when there is one), then the user's."""
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        msgs.append({"role": "user", "content": self.prompt})
        return msgs


def safe_url(url: str) -> str:
    """URL without user:password@ (credentials must never reach a message)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=host)
    return urlunsplit(parts)


def parse_prometheus(text: str) -> dict[str, float]:
    """Prometheus text -> {sample name: value summed over label sets}; histogram buckets are skipped.

    prometheus_client's parser reads it (llm_upkeep/servermetrics/parse.py); a body that is not the
    text format gives {} here, as a server without metrics does (callers treat metrics as evidence).
    """
    from llm_upkeep.servermetrics.parse import MetricsParseError, sum_samples

    try:
        return sum_samples(text)[0]
    except MetricsParseError:
        return {}


def count_field(v: Any) -> int | None:
    """A token count from a server: a finite, non-negative number, else None (not a crash)."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        return None
    return int(v)


def normalize_usage(usage: Any) -> dict | None:
    if not isinstance(usage, dict):
        return None
    pt, ct = count_field(usage.get("prompt_tokens")), count_field(usage.get("completion_tokens"))
    if pt is None and ct is None:
        return None
    return {"prompt_tokens": pt, "completion_tokens": ct}


class LLMClient(ABC):
    """Common base: subclasses speak one API dialect over the shared AsyncClient."""

    api = "base"

    def __init__(self, endpoint: EndpointConfig, http: httpx.AsyncClient):
        self.endpoint = endpoint
        self.http = http
        self.timeout = httpx.Timeout(
            connect=endpoint.connect_timeout_s,
            read=endpoint.read_timeout_s,
            write=endpoint.read_timeout_s,
            pool=endpoint.timeout_s,
        )

    # -------------------------------------------------------------- the dialect API
    def stream_generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        chat: bool = True,
        temperature: float = 0.0,
        seed: int | None = 42,
        system: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream one generation as StreamEvents; server faults raise LLMError."""
        return self._stream(GenRequest(prompt, max_tokens, chat, temperature, seed, system))

    async def complete(
        self,
        prompt: str,
        *,
        max_tokens: int,
        chat: bool = True,
        temperature: float = 0.0,
        seed: int | None = 42,
        system: str | None = None,
    ) -> dict:
        """One non-streamed generation: text, reasoning, usage, finish_reason."""
        return await self._complete(GenRequest(prompt, max_tokens, chat, temperature, seed, system))

    @abstractmethod
    def _stream(self, req: GenRequest) -> AsyncIterator[StreamEvent]:
        """The dialect's streamed generation (an async generator)."""

    @abstractmethod
    async def _complete(self, req: GenRequest) -> dict:
        """The dialect's non-streamed generation."""

    @abstractmethod
    async def list_models(self) -> list[str]:
        """Names of the models the server serves."""

    @abstractmethod
    async def version(self) -> str | None:
        """Server version, or None when the server does not say."""

    @abstractmethod
    async def embed(self, texts: list[str]) -> list[list[float]] | None:
        """Embeddings, or None when the server has no embeddings endpoint."""

    # -------------------------------------------------------------- plumbing
    def headers(self) -> dict[str, str]:
        h = {"Accept": "application/json"}
        key = self.endpoint.api_key()
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h

    def url(self, path: str) -> str:
        return self.endpoint.url + path

    def _where(self, path: str) -> str:
        return f"{self.endpoint.name} ({safe_url(self.url(path))})"

    def map_exception(self, exc: BaseException, path: str, *, started: bool, deadline_s: float) -> LLMError:
        """httpx / asyncio failure -> classified, redacted LLMError."""
        where = self._where(path)
        if isinstance(exc, LLMError):
            return exc
        if isinstance(exc, httpx.ConnectTimeout):
            return LLMError(
                "connect_timeout", f"{where}: no TCP connection within {self.endpoint.connect_timeout_s:g} s"
            )
        if isinstance(exc, httpx.ConnectError):
            return LLMError("connection_refused", f"{where}: cannot connect: {exc}")
        if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout):
            return LLMError("timeout", f"{where}: no data for {self.endpoint.read_timeout_s:g} s")
        if isinstance(exc, httpx.PoolTimeout):
            return LLMError("timeout", f"{where}: no free connection in the pool")
        if isinstance(exc, TimeoutError):
            return LLMError("timeout", f"{where}: no complete answer within {deadline_s:g} s")
        if isinstance(exc, httpx.DecodingError):
            return LLMError("malformed", f"{where}: undecodable body: {exc}")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            if started:
                return LLMError("truncated", f"{where}: connection closed mid-response: {exc}")
            return LLMError("protocol", f"{where}: connection closed before a response: {exc}")
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return LLMError("protocol", f"{where}: {exc}")
        if isinstance(exc, OSError):
            return LLMError("connection_refused", f"{where}: {exc}")
        return LLMError("protocol", f"{where}: {type(exc).__name__}: {exc}")

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout_s: float | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> tuple[int, bytes]:
        """One non-streamed call under the total deadline; raises LLMError for HTTP errors
        except the statuses in ok_statuses (returned for the caller to interpret)."""
        deadline_s = timeout_s or self.endpoint.timeout_s
        kwargs: dict[str, Any] = {"headers": self.headers(), "timeout": self.timeout}
        if body is not None:
            kwargs["content"] = json.dumps(body).encode()
            kwargs["headers"] = {**kwargs["headers"], "Content-Type": "application/json"}
        req = self.http.build_request(method, self.url(path), **kwargs)
        started = False
        try:
            async with asyncio.timeout(deadline_s):
                resp = await self.http.send(req, stream=True)
                started = True
                try:
                    error = resp.status_code >= 400 and resp.status_code not in ok_statuses
                    cap = MAX_ERROR_BODY_BYTES if error else MAX_BODY_BYTES
                    data = await read_capped(resp, cap, self._where(path), truncate=error)
                finally:
                    await resp.aclose()
        except _NET_ERRORS as exc:
            raise self.map_exception(exc, path, started=started, deadline_s=deadline_s) from None
        if resp.status_code >= 400 and resp.status_code not in ok_statuses:
            raise classify_status(resp.status_code, data.decode("utf-8", "replace"))
        return resp.status_code, data

    async def request_json(self, method: str, path: str, body: Any = None, **kw) -> Any:
        status, data = await self.request(method, path, body, **kw)
        return self.parse_json(data, path)

    async def request_json_if_served(self, method: str, path: str, body: Any = None) -> tuple[bool, Any]:
        """(True, the JSON answer), or (False, None) where the server has no such route (404, 405, 501)."""
        status, data = await self.request(method, path, body, ok_statuses=(404, 405, 501))
        if status in (404, 405, 501):
            return False, None
        return True, self.parse_json(data, path)

    def parse_json(self, data: bytes, path: str) -> Any:
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise LLMError("malformed", f"{self._where(path)}: not JSON: {data[:80]!r}") from None

    async def stream_lines(
        self, method: str, path: str, body: Any = None, *, timeout_s: float | None = None
    ) -> AsyncIterator[tuple[float, str]]:
        """Yield (arrival perf_counter, line) of a streamed body; every await bounded by the deadline."""
        loop = asyncio.get_running_loop()
        deadline_s = timeout_s or self.endpoint.timeout_s
        deadline = loop.time() + deadline_s
        headers = {**self.headers(), "Content-Type": "application/json"}
        req = self.http.build_request(
            method, self.url(path), content=json.dumps(body).encode(), headers=headers, timeout=self.timeout,
            extensions=trace_extensions(),
        )  # fmt: skip
        try:
            async with asyncio.timeout_at(deadline):
                resp = await self.http.send(req, stream=True)
        except _NET_ERRORS as exc:
            raise self.map_exception(exc, path, started=False, deadline_s=deadline_s) from None
        try:
            if resp.status_code >= 400:
                try:
                    async with asyncio.timeout_at(deadline):
                        data = await read_capped(resp, MAX_ERROR_BODY_BYTES, "", truncate=True)
                except _NET_ERRORS:
                    data = b""
                raise classify_status(resp.status_code, data.decode("utf-8", "replace"))
            # Lines split here rather than by httpx's aiter_lines, which buffers a line without
            # end: a server sending one endless line would grow memory until the deadline.
            chunks = resp.aiter_bytes()
            decode = codecs.getincrementaldecoder("utf-8")("replace").decode
            pending = ""
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    pending += decode(b"", True)
                    if pending:
                        yield time.perf_counter(), pending.rstrip("\r")
                    return
                except _NET_ERRORS as exc:
                    raise self.map_exception(exc, path, started=True, deadline_s=deadline_s) from None
                t = time.perf_counter()
                text = decode(chunk)
                if "\n" in text:
                    *lines, pending = (pending + text).split("\n")
                    for line in lines:
                        yield t, line.rstrip("\r")
                else:
                    pending += text
                if len(pending) > MAX_LINE_CHARS:
                    raise LLMError(
                        "malformed",
                        f"{self._where(path)}: stream line longer than {MAX_LINE_CHARS} characters; reading stopped",
                    )
        finally:
            # Closing a broken stream must not mask the real error.
            with contextlib.suppress(Exception):
                await resp.aclose()


def stream_object(where: str, text: str, what: str) -> dict:
    """One JSON object of a stream (an NDJSON line, an SSE data field): anything else is a malformed
    answer, and an error object the server sends inside a 200 stream raises its LLMError."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise LLMError("malformed", f"{where}: unparseable {what} {text[:60]!r}") from None
    if not isinstance(obj, dict):
        raise LLMError("malformed", f"{where}: {what} is not an object: {text[:60]!r}")
    if obj.get("error"):
        raise stream_error(where, obj["error"])
    return obj


def stream_error(where: str, message: Any) -> LLMError:
    """An error object inside a 200 stream (Ollama {"error": ...}, vLLM data: {"error": {...}})."""
    if isinstance(message, dict):
        message = message.get("message") or json.dumps(message)
    text = str(message)
    if mentions_oom(text):
        return LLMError("oom", f"{where}: {text}")
    if re.search(r"not found|does not exist", text, re.IGNORECASE):
        return LLMError("http_4xx", f"{where}: {text}")
    return LLMError("http_5xx", f"{where}: server error in stream: {text}")


__all__ = [
    "LLMClient",
    "LLMError",
    "StreamEvent",
    "make_http_client",
    "count_field",
    "normalize_usage",
    "parse_prometheus",
    "read_capped",
    "safe_url",
    "stream_object",
    "short_detail",
    "stream_error",
    "text_field",
]
