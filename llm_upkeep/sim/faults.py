"""The error answers a broken server gives: hang, HTTP 500, out of memory, malformed streams,
and each dialect's "model not found".

Why its own file: the fault catalogue grows as the maintenance checks learn new failure
shapes; the dialects stay about the working protocol.
"""

from __future__ import annotations

import asyncio
import contextlib

from llm_upkeep.sim.http11 import Gone


class FaultMixin:
    """Fault answers for SimServer."""

    async def _wait_for_disconnect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The 'hang' fault: accept, read, never answer, until the client gives up."""
        with contextlib.suppress(Exception):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
        raise Gone()

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
