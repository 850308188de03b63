"""Config section [server_metrics]: what the servers' own /metrics must show, and the memory-leak
rule for servers that pre-allocate their GPU memory."""

from __future__ import annotations

from pydantic import Field, model_validator

from llm_upkeep.configbase import PositiveFloat, Section


class ServerMetricsConfig(Section):
    enabled: bool = Field(
        default=True, description="Scrape /metrics of every OpenAI-compatible endpoint in daily health."
    )
    timeout_s: PositiveFloat = Field(
        default=5.0, description="Time budget of one /metrics scrape, in seconds."
    )
    max_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0, description="Largest /metrics body read; a larger one is an error."
    )
    kv_cache_warn_percent: float = Field(
        default=90.0,
        gt=0,
        le=100,
        description="Warn when a server's KV-cache usage is at or above this percent.",
    )
    kv_cache_alert_percent: float = Field(
        default=99.0, gt=0, le=100,
        description="Alert when KV-cache usage is at or above this percent (requests will be preempted).",
    )  # fmt: skip
    waiting_warn: float = Field(
        default=10, ge=0, description="Warn when this many requests wait in the queue."
    )
    waiting_alert: float = Field(
        default=100, ge=0, description="Alert when this many requests wait in the queue."
    )
    preemptions_warn: float = Field(
        default=10,
        ge=0,
        description="Warn when the preemption counter grew by more than this since the previous reading "
        "(a counter that dropped is a restart, counted from 0).",
    )
    preallocating_endpoints: list[str] = Field(
        default_factory=list,
        description="Endpoints whose server pre-allocates GPU memory although /metrics does not say so "
        "(vLLM, SGLang and TGI are recognized from /metrics).",
    )
    leak_growth_percent_per_day: PositiveFloat = Field(
        default=1.0,
        description="A GPU process whose memory grows by this many percent of the device per day, at "
        "comparable load, is leaking (replaces the device-total rule on pre-allocating hosts).",
    )
    leak_window_days: PositiveFloat = Field(
        default=7.0, description="History the growth trend is fitted over, in days."
    )
    leak_min_samples: int = Field(
        default=4, ge=3, description="Fewest comparable samples of one process before a trend is judged."
    )
    leak_min_span_hours: PositiveFloat = Field(
        default=36.0, description="Shortest time the comparable samples must span before a trend is judged."
    )
    leak_load_tolerance: float = Field(
        default=2.0,
        ge=0,
        description="Samples count as comparable load when their running requests differ from the "
        "latest by at most this many.",
    )

    @model_validator(mode="after")
    def _order(self) -> ServerMetricsConfig:
        if self.kv_cache_warn_percent > self.kv_cache_alert_percent:
            raise ValueError("kv_cache_warn_percent must not exceed kv_cache_alert_percent")
        if self.waiting_warn > self.waiting_alert:
            raise ValueError("waiting_warn must not exceed waiting_alert")
        return self
