"""The same facts under each server's own names.

Why a table: vLLM renamed its KV-cache gauge (``gpu_cache_usage_perc`` -> ``kv_cache_usage_perc``),
TGI counts tokens in histogram sums, llama.cpp calls its queue "deferred". Everything downstream
reads the normalized fact (``kv_cache_usage`` as a 0..1 ratio, ``waiting`` requests, ...), never a
server's name.
"""

from __future__ import annotations

from dataclasses import dataclass

FACTS = ("kv_cache_usage", "running", "waiting", "preemptions", "prompt_tokens", "generation_tokens")


@dataclass(frozen=True)
class Dialect:
    name: str
    prefix: str  # sample names of this server start with it
    samples: dict[str, tuple[str, ...]]  # fact -> sample names, first present wins
    preallocates: bool  # reserves its GPU memory at start (device total says nothing about leaks)


DIALECTS: tuple[Dialect, ...] = (
    Dialect(
        "vllm",
        "vllm:",
        {
            # Newer servers export both during the deprecation; the new name wins.
            "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
            "running": ("vllm:num_requests_running",),
            "waiting": ("vllm:num_requests_waiting",),
            "preemptions": ("vllm:num_preemptions_total",),
            "prompt_tokens": ("vllm:prompt_tokens_total",),
            "generation_tokens": ("vllm:generation_tokens_total",),
        },
        preallocates=True,
    ),
    Dialect(
        "sglang",
        "sglang:",
        {
            "kv_cache_usage": ("sglang:token_usage",),
            "running": ("sglang:num_running_reqs",),
            "waiting": ("sglang:num_queue_reqs",),
            # Retraction is SGLang's preemption; the counter's name differs between releases.
            "preemptions": ("sglang:num_retracted_requests_total", "sglang:num_retracted_reqs_total"),
            "prompt_tokens": ("sglang:prompt_tokens_total",),
            "generation_tokens": ("sglang:generation_tokens_total",),
        },
        preallocates=True,
    ),
    Dialect(
        "tgi",
        "tgi_",
        {
            "running": ("tgi_batch_current_size",),
            "waiting": ("tgi_queue_size",),
            # Histogram sums only grow while the server runs: token counters in all but name.
            "prompt_tokens": ("tgi_request_input_length_sum",),
            "generation_tokens": ("tgi_request_generated_tokens_sum",),
        },
        preallocates=True,
    ),
    Dialect(
        "llamacpp",
        "llamacpp:",
        {
            "kv_cache_usage": ("llamacpp:kv_cache_usage_ratio",),
            "running": ("llamacpp:requests_processing",),
            "waiting": ("llamacpp:requests_deferred",),
            "prompt_tokens": ("llamacpp:prompt_tokens_total",),
            "generation_tokens": ("llamacpp:tokens_predicted_total",),
        },
        preallocates=False,
    ),
)

BY_NAME = {d.name: d for d in DIALECTS}


def names_of(fact: str) -> tuple[str, ...]:
    """Every server's sample names for one fact, in table order (for readers of raw dicts)."""
    return tuple(n for d in DIALECTS for n in d.samples.get(fact, ()))


def detect_dialect(sample_names: set[str]) -> Dialect | None:
    """The dialect whose prefix most sample names carry; None for an unknown exporter."""
    best, count = None, 0
    for d in DIALECTS:
        n = sum(1 for s in sample_names if s.startswith(d.prefix))
        if n > count:
            best, count = d, n
    return best
