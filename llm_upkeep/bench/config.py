"""The [benchmark] config table: load profile, repeats, suite, and the regression thresholds."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from llm_upkeep.configbase import ConfigError, PositiveFloat, Section

PROFILES = ("sequential", "concurrent", "constant_rate", "poisson")
APIS = ("chat", "completions")


class RegressionThresholds(Section):
    """When a difference from the baseline is a regression (a latency must also be significant)."""

    ttft_p50_pct: PositiveFloat = Field(
        default=20.0, description="TTFT median up by more than this percent (and significant)."
    )
    e2e_p50_pct: PositiveFloat = Field(
        default=20.0, description="End-to-end latency median up by more than this percent (and significant)."
    )
    tpot_p50_pct: PositiveFloat = Field(
        default=20.0,
        description="Time per output token median up by more than this percent (and significant).",
    )
    tokens_per_s_pct: PositiveFloat = Field(
        default=20.0,
        description="Per-request output tokens/s median down by more than this percent (and significant).",
    )
    pass_rate_drop: float = Field(
        default=0.10,
        ge=0,
        le=1,
        description="Quality pass rate (0..1) down by more than this, absolute (0.10 = 10 points).",
    )
    error_rate_increase: float = Field(
        default=0.05, ge=0, le=1, description="Error rate (0..1) up by more than this, absolute."
    )
    alpha: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="Significance level of the one-sided Mann-Whitney U test on per-request samples.",
    )


class BenchmarkConfig(Section):
    profile: Literal["sequential", "concurrent", "constant_rate", "poisson"] = Field(
        default="sequential",
        description="Load profile: sequential (one at a time), concurrent (fixed concurrency, closed loop), "
        "constant_rate or poisson (open loop at `rate` requests/s).",
    )
    concurrency: int = Field(
        default=4,
        ge=1,
        le=1024,
        description="Requests in flight for 'concurrent'; the cap on in-flight requests for the rate profiles.",
    )
    rate: PositiveFloat = Field(
        default=2.0, description="Requests per second for constant_rate and poisson (mean rate)."
    )
    ramp_up_s: float = Field(
        default=0.5,
        ge=0,
        le=600,
        description="'concurrent' profile: start the workers evenly over this many seconds (a burst of "
        "simultaneous sends would queue in the client and inflate the first TTFTs).",
    )
    repeats: int = Field(
        default=3, ge=1, le=1000, description="How many times every prompt of the suite is sent (measured)."
    )
    warmup: int = Field(
        default=2, ge=0, le=100, description="Warm-up requests sent first and excluded from every metric."
    )
    suite: str | None = Field(
        default=None, description="Path of the YAML prompt suite (default: the shipped suites/default.yaml)."
    )
    max_tokens: int = Field(
        default=128, gt=0, le=32768, description="Output token cap of a prompt that does not set its own."
    )
    seed: int = Field(
        default=42, description="Sampling seed sent where the API takes one (with temperature 0)."
    )
    apis: list[Literal["chat", "completions"]] = Field(
        default_factory=lambda: ["chat"],
        min_length=1,
        description="Generation APIs to benchmark: chat (/v1/chat/completions, /api/chat) and/or "
        "completions (/v1/completions, /api/generate).",
    )
    endpoints: list[str] = Field(
        default_factory=list,
        description="Names of the endpoints to benchmark (default: all, except staging).",
    )
    embedding_model: str | None = Field(
        default=None,
        description="Model for the similarity checks' embeddings (default: the endpoint's own model).",
    )
    auto_baseline: bool = Field(
        default=True,
        description="Pin the first run of an endpoint/suite that has no baseline at all. A run with a new "
        "model digest is never pinned automatically (use --save-baseline).",
    )
    thresholds: RegressionThresholds = Field(
        default_factory=RegressionThresholds,
        description="When a difference from the baseline is a regression.",
    )

    @model_validator(mode="after")
    def _unique_apis(self) -> BenchmarkConfig:
        if len(set(self.apis)) != len(self.apis):
            raise ValueError("apis: each API may appear once")
        return self


def with_overrides(cfg: BenchmarkConfig, **overrides: Any) -> BenchmarkConfig:
    """The [benchmark] table with command-line overrides (None = not given), validated the same way."""
    data = cfg.model_dump()
    given = {k: v for k, v in overrides.items() if v is not None}
    data.update(given)
    try:
        return BenchmarkConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(x) for x in err["loc"]) or "benchmark"
        origin = "command line" if key.split(".")[0] in given else None
        raise ConfigError(err["msg"], file=origin, key=f"benchmark.{key}") from None
