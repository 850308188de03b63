"""What a simulated LLM server does: the knobs a test turns (timing, faults, models, keys).

Why its own file: every dialect and the scheduler read it, and tests build it without a server.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

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


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def norm_name(name: str) -> str:
    """Ollama treats 'llama3' as 'llama3:latest'."""
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def now_rfc3339() -> str:
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
    digest: str = field(default_factory=lambda: sha256_hex("llama3:8b"))
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
    metrics_text: str | None = None  # a recorded /metrics exposition served instead (sim/metrics_text.py)
    metrics_values: dict[str, float] = field(default_factory=dict)  # sample name -> value rewritten in it
    truncate_after: int = 3  # content chunks sent before a "truncated" fault cuts the stream
    context_length: int = 8192
    route_status: dict[str, int] = field(
        default_factory=dict
    )  # path -> error status it answers (404: no route)

    def all_models(self) -> list[str]:
        out = [self.model]
        for m in self.models:
            if norm_name(m) not in {norm_name(x) for x in out}:
                out.append(m)
        return out

    def has_model(self, name: str | None) -> bool:
        return bool(name) and norm_name(name) in {norm_name(m) for m in self.all_models()}

    def digest_of(self, name: str) -> str:
        if norm_name(name) == norm_name(self.model):
            return self.digest
        for k, v in self.digests.items():
            if norm_name(k) == norm_name(name):
                return v
        return sha256_hex(norm_name(name))
