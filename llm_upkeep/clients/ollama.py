"""Client for Ollama's native API (/api/*): NDJSON streams, nanosecond durations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llm_upkeep.clients.base import (
    GenRequest,
    LLMClient,
    StreamEvent,
    count_field,
    stream_error,
    stream_object,
    text_field,
)
from llm_upkeep.clients.errors import LLMError

_NS = 1e9


def ollama_server_timings(obj: dict) -> dict:
    """Final-chunk metrics normalized to seconds; absent metrics (Ollama omits zeros) become 0 / None."""
    out: dict[str, Any] = {}
    for key in ("load_duration", "prompt_eval_duration", "eval_duration", "total_duration"):
        v = obj.get(key)
        out[f"{key}_s"] = (v / _NS) if count_field(v) is not None else 0.0
    for key in ("eval_count", "prompt_eval_count"):
        v = obj.get(key)
        out[key] = count_field(v)
    out["done_reason"] = obj.get("done_reason")
    return out


def same_model(a: str | None, b: str | None) -> bool:
    """Ollama treats 'llama3' and 'llama3:latest' as one model."""

    def norm(n: str) -> str:
        return n if ":" in n.rsplit("/", 1)[-1] else f"{n}:latest"

    return bool(a) and bool(b) and norm(a) == norm(b)


class OllamaClient(LLMClient):
    api = "ollama"

    def _gen_body(self, req: GenRequest) -> tuple[str, dict]:
        options: dict[str, Any] = {"temperature": req.temperature, "num_predict": req.max_tokens}
        if req.seed is not None:
            options["seed"] = req.seed
        body: dict[str, Any] = {"model": self.endpoint.model, "options": options}
        if req.chat:
            body["messages"] = req.messages()
            return "/api/chat", body
        body["prompt"] = req.prompt
        if req.system:
            body["system"] = req.system
        return "/api/generate", body

    async def _stream(self, req: GenRequest) -> AsyncIterator[StreamEvent]:
        path, body = self._gen_body(req)
        chat = req.chat
        body["stream"] = True
        where = self._where(path)
        done = False
        async for t, line in self.stream_lines("POST", path, body):
            if not line.strip() or done:
                continue
            obj = stream_object(where, line, "stream line")
            if chat:
                msg = obj.get("message") or {}
                if not isinstance(msg, dict):
                    raise LLMError("malformed", f"{where}: 'message' is not an object: {line[:60]!r}")
                text, reasoning = (
                    text_field(where, msg.get("content")),
                    text_field(where, msg.get("thinking")),
                )
            else:
                text, reasoning = (
                    text_field(where, obj.get("response")),
                    text_field(where, obj.get("thinking")),
                )
            if obj.get("done") is True:
                if text or reasoning:
                    yield StreamEvent(t=t, text=text, reasoning=reasoning)
                server = ollama_server_timings(obj)
                usage = None
                if server["eval_count"] is not None or server["prompt_eval_count"] is not None:
                    usage = {
                        "prompt_tokens": server["prompt_eval_count"],
                        "completion_tokens": server["eval_count"],
                    }
                done = True
                yield StreamEvent(t=t, done=True, usage=usage, server=server)
            elif "done" not in obj:
                raise LLMError("malformed", f"{where}: stream object without 'done': {line[:60]!r}")
            elif text or reasoning:
                yield StreamEvent(t=t, text=text, reasoning=reasoning)
        if not done:
            raise LLMError("truncated", f"{where}: stream ended without the final done:true object")

    async def _complete(self, req: GenRequest) -> dict:
        path, body = self._gen_body(req)
        chat = req.chat
        body["stream"] = False
        obj = await self.request_json("POST", path, body)
        if not isinstance(obj, dict):
            raise LLMError("malformed", f"{self._where(path)}: answer is not a JSON object")
        if obj.get("error"):
            raise stream_error(self._where(path), obj["error"])
        if chat:
            msg = obj.get("message") or {}
            text, reasoning = msg.get("content") or "", msg.get("thinking") or ""
        else:
            text, reasoning = obj.get("response") or "", obj.get("thinking") or ""
        server = ollama_server_timings(obj)
        return {
            "text": text,
            "reasoning": reasoning,
            "usage": {
                "prompt_tokens": server["prompt_eval_count"],
                "completion_tokens": server["eval_count"],
            },
            "server": server,
            "finish_reason": obj.get("done_reason"),
        }

    async def tags(self) -> list[dict]:
        obj = await self.request_json("GET", "/api/tags")
        models = obj.get("models") if isinstance(obj, dict) else None
        if not isinstance(models, list):
            raise LLMError("malformed", f"{self._where('/api/tags')}: no 'models' list")
        return [m for m in models if isinstance(m, dict)]

    async def list_models(self) -> list[str]:
        return [str(m.get("name") or m.get("model")) for m in await self.tags()]

    async def version(self) -> str | None:
        status, data = await self.request("GET", "/api/version", ok_statuses=(404,))
        if status == 404:
            return None
        obj = self.parse_json(data, "/api/version")
        return str(obj.get("version")) if isinstance(obj, dict) and obj.get("version") else None

    async def ps(self, *, timeout_s: float | None = None) -> list[dict]:
        """Loaded models with size and size_vram (size_vram < size means part runs on the CPU)."""
        obj = await self.request_json("GET", "/api/ps", timeout_s=timeout_s)
        models = obj.get("models") if isinstance(obj, dict) else None
        if not isinstance(models, list):
            raise LLMError("malformed", f"{self._where('/api/ps')}: no 'models' list")
        return [m for m in models if isinstance(m, dict)]

    async def show(self, model: str | None = None) -> dict:
        obj = await self.request_json("POST", "/api/show", {"model": model or self.endpoint.model})
        if not isinstance(obj, dict):
            raise LLMError("malformed", f"{self._where('/api/show')}: answer is not a JSON object")
        return obj

    async def embed(self, texts: list[str]) -> list[list[float]] | None:
        served, obj = await self.request_json_if_served(
            "POST", "/api/embed", {"model": self.endpoint.model, "input": list(texts)}
        )
        if not served:
            return None
        embs = obj.get("embeddings") if isinstance(obj, dict) else None
        if not isinstance(embs, list):
            raise LLMError("malformed", f"{self._where('/api/embed')}: no 'embeddings' list")
        return [[float(x) for x in e] for e in embs]

    async def pull(self, model: str | None = None, *, timeout_s: float = 3600.0) -> AsyncIterator[dict]:
        """Progress objects of a pull; raises LLMError when the server reports an error line."""
        where = self._where("/api/pull")
        success = False
        async for _t, line in self.stream_lines(
            "POST", "/api/pull", {"model": model or self.endpoint.model, "stream": True}, timeout_s=timeout_s
        ):
            if not line.strip():
                continue
            obj = stream_object(where, line, "progress line")
            if obj.get("status") == "success":
                success = True
            yield obj
        if not success:
            raise LLMError("truncated", f"{where}: pull stream ended without 'success'")

    async def delete(self, model: str) -> bool:
        """True when deleted, False when the model was not there."""
        status, _ = await self.request("DELETE", "/api/delete", {"model": model}, ok_statuses=(404,))
        return status == 200

    async def copy(self, source: str, destination: str) -> None:
        await self.request("POST", "/api/copy", {"source": source, "destination": destination})
