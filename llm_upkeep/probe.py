"""The streaming health probe: one short generation, timed chunk by chunk on the client.

Why streaming and client-side timing: the playbook's curl measured total time of an unstreamed
answer, which hides TTFT and decode speed. TTFT here is what a user waits for: send -> first
chunk that carries text. A role-only first chunk (OpenAI) does not count, a thinking/reasoning
chunk does (the model is producing tokens). The probe never raises for a server fault; it
returns ok=False with the classified error kind.
"""

from __future__ import annotations

import time
from contextlib import aclosing
from typing import Any

import httpx
from pydantic import BaseModel, Field

from llm_upkeep.clients import LLMError, OllamaClient, client_for
from llm_upkeep.clients.errors import short_detail
from llm_upkeep.clients.ollama import same_model
from llm_upkeep.config import EndpointConfig

PS_TIMEOUT_S = 5.0


def answer_limits(max_tokens: int) -> tuple[int, int]:
    """(chunks, characters) a server honouring max_tokens stays within, with room for servers that
    send a token as two chunks or a reasoning chunk apart. Past either, the probe stops reading:
    a server ignoring max_tokens would otherwise be read, and kept in memory, until the deadline."""
    return 2 * max_tokens + 8, 256 * (max_tokens + 8)


class ProbeResult(BaseModel):
    """What one probe of one endpoint measured."""

    endpoint: str = Field(description="Endpoint name.")
    api: str = Field(description="API dialect: ollama or openai.")
    model: str = Field(description="Model requested.")
    ok: bool = Field(description="True when a complete streamed answer arrived.")
    error_kind: str | None = Field(default=None, description="LLMError kind when not ok.")
    error_detail: str | None = Field(default=None, description="Short redacted error text when not ok.")
    ttft_s: float | None = Field(default=None, description="Send to first chunk with content or reasoning.")
    e2e_s: float | None = Field(default=None, description="Send to the last chunk of the answer.")
    output_tokens: int | None = Field(default=None, description="Generated tokens.")
    tokens_source: str = Field(
        default="chunks", description="Where output_tokens came from: usage|eval_count|chunks."
    )
    decode_tokens_per_s: float | None = Field(default=None, description="(output_tokens-1)/(e2e-ttft).")
    itl_s: list[float] = Field(default_factory=list, description="Gaps between consecutive token chunks.")
    text: str = Field(default="", description="The answer's content (reasoning excluded).")
    server: dict[str, Any] = Field(default_factory=dict, description="Server-side timings (Ollama), seconds.")
    ps: list[dict] | None = Field(
        default=None, description="Ollama /api/ps entries of this model, when read."
    )


async def probe_endpoint(
    endpoint: EndpointConfig,
    http: httpx.AsyncClient,
    *,
    prompt: str = "test",
    max_tokens: int = 16,
    chat: bool = True,
) -> ProbeResult:
    """Stream one answer and time it; server faults come back as ok=False, never as exceptions."""
    client = client_for(endpoint, http)
    res = ProbeResult(endpoint=endpoint.name, api=endpoint.api, model=endpoint.model, ok=False)
    times: list[float] = []
    parts: list[str] = []
    usage: dict | None = None
    server: dict | None = None
    t_end: float | None = None
    max_chunks, max_chars = answer_limits(max_tokens)
    chars = 0
    t0 = time.perf_counter()
    try:
        async with aclosing(client.stream_generate(prompt, max_tokens=max_tokens, chat=chat)) as events:
            async for ev in events:
                if ev.text or ev.reasoning:
                    times.append(ev.t)
                    chars += len(ev.text) + len(ev.reasoning)
                    if len(times) > max_chunks or chars > max_chars:
                        raise LLMError(
                            "malformed",
                            f"{endpoint.name}: answer goes on past max_tokens={max_tokens} "
                            f"({len(times)} chunks, {chars} characters); reading stopped",
                        )
                    parts.append(ev.text)
                if ev.done:
                    t_end = ev.t
                    usage, server = ev.usage, ev.server
        res.ok = True
    except LLMError as exc:
        res.error_kind, res.error_detail = exc.kind, exc.detail
    except Exception as exc:  # a probe must report, never crash the flow
        res.error_kind, res.error_detail = "protocol", short_detail(f"{type(exc).__name__}: {exc}")

    res.text = "".join(parts)
    if times:
        res.ttft_s = times[0] - t0
        res.itl_s = [b - a for a, b in zip(times, times[1:], strict=False)]
    if res.ok and t_end is not None:
        res.e2e_s = t_end - t0
    res.server = dict(server or {})
    if usage and usage.get("completion_tokens") is not None:
        res.output_tokens = int(usage["completion_tokens"])
        res.tokens_source = "eval_count" if endpoint.api == "ollama" else "usage"
    elif times:
        res.output_tokens = len(times)
        res.tokens_source = "chunks"
    if (
        res.ok
        and res.output_tokens is not None
        and res.output_tokens > 1
        and res.ttft_s is not None
        and res.e2e_s is not None
        and res.e2e_s > res.ttft_s
    ):
        res.decode_tokens_per_s = (res.output_tokens - 1) / (res.e2e_s - res.ttft_s)

    if isinstance(client, OllamaClient) and res.error_kind not in (
        "connection_refused",
        "connect_timeout",
        "timeout",
    ):
        try:
            entries = await client.ps(timeout_s=min(PS_TIMEOUT_S, endpoint.timeout_s))
            res.ps = [m for m in entries if same_model(m.get("name") or m.get("model"), endpoint.model)]
        except Exception:  # /api/ps is extra evidence; its failure must not fail the probe
            res.ps = None
    return res
