"""Prometheus text exposition -> the normalized facts of one server.

Parsing is prometheus_client's (``text_string_to_metric_families``), not ours: label values with
spaces, escaped quotes, ``+Inf``, exponents and ``_created`` samples are its business. Values are
summed over label sets (a vLLM with two engines or two LoRA models is one endpoint's load), except
the KV-cache ratio, where the fullest engine is the one that preempts.
"""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, Field

from llm_upkeep.servermetrics.dialects import BY_NAME, FACTS, detect_dialect


class MetricsParseError(ValueError):
    """The body is not Prometheus text format (an HTML error page, a truncated answer)."""


class ServerMetrics(BaseModel):
    """One reading of one server's /metrics, in server-independent terms; None: not exported."""

    dialect: str | None = Field(default=None, description="vllm, sglang, tgi, llamacpp; None when unknown.")
    kv_cache_usage: float | None = Field(default=None, description="KV-cache usage, 0..1.")
    running: float | None = Field(default=None, description="Requests being decoded now.")
    waiting: float | None = Field(default=None, description="Requests queued, not yet scheduled.")
    preemptions: float | None = Field(default=None, description="Preemptions since the server started.")
    prompt_tokens: float | None = Field(default=None, description="Prompt tokens since the server started.")
    generation_tokens: float | None = Field(
        default=None, description="Generated tokens since the server started."
    )
    sources: dict[str, str] = Field(default_factory=dict, description="Fact -> the sample name it came from.")
    samples: dict[str, float] = Field(
        default_factory=dict, description="Every sample name summed over its label sets (buckets left out)."
    )

    @property
    def preallocates(self) -> bool:
        d = BY_NAME.get(self.dialect or "")
        return bool(d and d.preallocates)


def sum_samples(text: str) -> tuple[dict[str, float], dict[str, float]]:
    """({sample name: sum over label sets}, {sample name: max over label sets}); raises MetricsParseError."""
    sums: dict[str, float] = {}
    maxes: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name.endswith("_bucket") or s.name.endswith("_created"):
                    continue
                v = float(s.value)
                if math.isnan(v):
                    continue
                sums[s.name] = sums.get(s.name, 0.0) + v
                maxes[s.name] = max(maxes.get(s.name, v), v)
    except (ValueError, TypeError, IndexError) as exc:
        raise MetricsParseError(f"not Prometheus text format: {exc}") from None
    return sums, maxes


def parse_exposition(text: str) -> ServerMetrics:
    """Normalize one exposition; an exporter of unknown dialect yields only ``samples``."""
    sums, maxes = sum_samples(text)
    dialect = detect_dialect(set(sums))
    out = ServerMetrics(samples=sums)
    if dialect is None:
        return out
    out.dialect = dialect.name
    for fact in FACTS:
        for name in dialect.samples.get(fact, ()):
            if name in sums:
                value = maxes[name] if fact == "kv_cache_usage" else sums[name]
                setattr(out, fact, value)
                out.sources[fact] = name
                break
    return out
