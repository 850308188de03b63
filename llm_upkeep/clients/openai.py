"""Client for OpenAI-compatible servers (vLLM, llama.cpp server, Ollama's /v1): SSE streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from llm_upkeep.clients.base import (
    GenRequest,
    LLMClient,
    StreamEvent,
    count_field,
    normalize_usage,
    parse_prometheus,
    stream_error,
    stream_object,
    text_field,
)
from llm_upkeep.clients.errors import LLMError


def _llamacpp_timings(t: Any) -> dict | None:
    """llama.cpp servers put 'timings' (milliseconds) in the last chunk; same shape as Ollama's."""
    if not isinstance(t, dict):
        return None
    ms = 1000.0
    return {
        "prompt_eval_duration_s": (t["prompt_ms"] if count_field(t.get("prompt_ms")) is not None else 0) / ms,
        "eval_duration_s": (t["predicted_ms"] if count_field(t.get("predicted_ms")) is not None else 0) / ms,
        "prompt_eval_count": count_field(t.get("prompt_n")),
        "eval_count": count_field(t.get("predicted_n")),
    }


class OpenAIClient(LLMClient):
    api = "openai"

    def _gen_body(self, req: GenRequest) -> tuple[str, dict]:
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
        }
        if req.seed is not None:
            body["seed"] = req.seed
        if req.chat:
            body["messages"] = req.messages()
            return "/v1/chat/completions", body
        body["prompt"] = f"{req.system}\n\n{req.prompt}" if req.system else req.prompt
        return "/v1/completions", body

    async def _stream(self, req: GenRequest) -> AsyncIterator[StreamEvent]:
        path, body = self._gen_body(req)
        chat = req.chat
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        where = self._where(path)
        usage: dict | None = None
        server: dict[str, Any] = {}
        done = False
        async for t, line in self.stream_lines("POST", path, body):
            if done or not line or line.startswith(":"):
                continue  # blank separators and SSE comments (keep-alives)
            if not line.startswith("data:"):
                continue  # other SSE fields (event:, id:, retry:)
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                yield StreamEvent(t=t, done=True, usage=usage, server=server or None)
                continue
            obj = stream_object(where, data, "SSE data")
            if obj.get("object") == "error":
                raise stream_error(where, obj)
            u = normalize_usage(obj.get("usage"))
            if u is not None:
                usage = u
            timings = _llamacpp_timings(obj.get("timings"))
            if timings:
                server.update(timings)
            choices = obj.get("choices")
            if choices is not None and not isinstance(choices, list):
                raise LLMError("malformed", f"{where}: 'choices' is not a list")
            for choice in choices or []:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                if chat:
                    delta = choice.get("delta") or {}
                    if not isinstance(delta, dict):
                        raise LLMError("malformed", f"{where}: 'delta' is not an object")
                    text = text_field(where, delta.get("content"))
                    reasoning = text_field(where, delta.get("reasoning_content") or delta.get("reasoning"))
                else:
                    text, reasoning = text_field(where, choice.get("text")), ""
                if text or reasoning:
                    yield StreamEvent(t=t, text=text, reasoning=reasoning)
                if choice.get("finish_reason"):
                    server["done_reason"] = choice["finish_reason"]
        if not done:
            raise LLMError("truncated", f"{where}: stream ended without data: [DONE]")

    async def _complete(self, req: GenRequest) -> dict:
        path, body = self._gen_body(req)
        chat = req.chat
        obj = await self.request_json("POST", path, body)
        where = self._where(path)
        if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list) or not obj["choices"]:
            raise LLMError("malformed", f"{where}: answer has no choices")
        choice = obj["choices"][0]
        if chat:
            msg = choice.get("message") or {}
            text = msg.get("content") or ""
            reasoning = msg.get("reasoning_content") or msg.get("reasoning") or ""
        else:
            text, reasoning = choice.get("text") or "", ""
        return {
            "text": text,
            "reasoning": reasoning,
            "usage": normalize_usage(obj.get("usage")),
            "finish_reason": choice.get("finish_reason"),
        }

    async def list_models(self) -> list[str]:
        obj = await self.request_json("GET", "/v1/models")
        data = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(data, list):
            raise LLMError("malformed", f"{self._where('/v1/models')}: no 'data' list")
        return [str(m.get("id")) for m in data if isinstance(m, dict)]

    async def version(self) -> str | None:
        """vLLM's /version; None where the server has none (llama.cpp answers 404)."""
        status, data = await self.request("GET", "/version", ok_statuses=(404, 405, 501))
        if status != 200:
            return None
        try:
            obj = json.loads(data)
        except ValueError:
            return None
        return str(obj.get("version")) if isinstance(obj, dict) and obj.get("version") else None

    async def embed(self, texts: list[str]) -> list[list[float]] | None:
        served, obj = await self.request_json_if_served(
            "POST", "/v1/embeddings", {"model": self.endpoint.model, "input": list(texts)}
        )
        if not served:
            return None
        items = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(items, list):
            raise LLMError("malformed", f"{self._where('/v1/embeddings')}: no 'data' list")
        items = sorted((i for i in items if isinstance(i, dict)), key=lambda i: i.get("index", 0))
        return [[float(x) for x in i.get("embedding") or []] for i in items]

    async def health(self) -> bool:
        """True only for a 200 from /health; any failure (refused, 5xx, timeout) is False."""
        try:
            status, _ = await self.request("GET", "/health", ok_statuses=tuple(range(400, 600)))
        except LLMError:
            return False
        return status == 200

    async def metrics(self) -> dict[str, float]:
        """Prometheus /metrics as {name: value summed over labels}; {} where the server has none."""
        status, data = await self.request("GET", "/metrics", ok_statuses=(404,))
        if status == 404:
            return {}
        return parse_prometheus(data.decode("utf-8", "replace"))
