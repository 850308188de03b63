"""The OpenAI-compatible API as vLLM serves it: SSE ``data: {...}`` chunks, a role-only first
chat chunk, ``stream_options.include_usage`` usage chunk with empty choices, ``data: [DONE]``,
plus /v1/models, /v1/embeddings, /health and /version.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from llm_upkeep.sim.generation import noop_emit
from llm_upkeep.sim.http11 import Gone


class OpenAIMixin:
    """OpenAI-compatible (vLLM) routes for SimServer."""

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
                await self._tokens(req, plan, writer, noop_emit)
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
                    raise Gone()
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
                    raise Gone()
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
                raise Gone()
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



def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
