"""The simulator's own HTTP/1.1: request parsing, fixed and chunked responses, keep-alive.

Why raw asyncio and not a framework: the time each chunk leaves is ours, so a test can assert
TTFT and inter-token latency to the millisecond. Mixed into SimServer, which supplies
``behavior``, ``requests``, ``_writers``, ``_tasks``, ``_server``, ``_go_down`` and ``_dispatch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("llm_upkeep.sim.llm_server")

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
}

MAX_HEAD = 64 * 1024
MAX_BODY = 32 * 1024 * 1024


class Request:
    __slots__ = ("method", "path", "query", "headers", "body", "json", "t0", "keep_alive", "finished", "record")

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
        self.record: dict[str, Any] = {}


class Gone(Exception):
    """The client went away; stop generating for it."""



class HttpMixin:
    """HTTP/1.1 framing for SimServer."""

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
        except (Gone, ConnectionError, asyncio.IncompleteReadError):
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
    ) -> Request | None:
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
                if total > MAX_BODY:
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
            if n > MAX_BODY:
                await self._send(writer, 413, b"body too large", "text/plain", keep_alive=False)
                return None
            body = await reader.readexactly(n) if n else b""
        req = Request(method.upper(), target, headers, body, asyncio.get_running_loop().time())
        conn = headers.get("connection", "").lower()
        req.keep_alive = version.upper() == "HTTP/1.1" and conn != "close" or conn == "keep-alive"
        req.record = {
            "method": req.method,
            "path": req.path,
            "json": req.json,
            "headers": dict(headers),
            "time": time.time(),
        }
        self.requests.append(req.record)
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
            raise Gone()
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()

    async def _stream_end(self, writer) -> None:
        if writer.is_closing():
            raise Gone()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _sleep_until(self, when: float, writer: asyncio.StreamWriter) -> None:
        """Sleep to an absolute loop time (no drift), noticing a client that left."""
        loop = asyncio.get_running_loop()
        while True:
            if writer.is_closing():
                raise Gone()
            left = when - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.25))
