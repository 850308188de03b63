"""Config section [cost] of the monthly cost review."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llm_upkeep.configbase import PositiveFloat, Section


class TokenSource(Section):
    kind: Literal["log", "metrics"] = Field(
        description="'log': a JSONL request log with token counts (OpenAI usage or Ollama eval_count); "
        "'metrics': an endpoint's Prometheus counters (vLLM, llama.cpp), sampled into state_dir."
    )
    path: str | None = Field(default=None, description="For kind='log': the log file or glob (.gz read too).")
    endpoint: str | None = Field(default=None, description="For kind='metrics': the endpoint name.")
    ts_field: str | None = Field(
        default=None, description="For kind='log': the time field when it is not ts/time/timestamp."
    )

    @model_validator(mode="after")
    def _needs(self) -> TokenSource:
        if self.kind == "log" and not self.path:
            raise ValueError("a 'log' token source needs path")
        if self.kind == "metrics" and not self.endpoint:
            raise ValueError("a 'metrics' token source needs endpoint")
        return self


class CostConfig(Section):
    price_per_kwh: float | None = Field(
        default=None, ge=0, description="Electricity price per kWh, in `currency` (unset: no energy cost)."
    )
    pue: float = Field(
        default=1.0,
        ge=1.0,
        description="Power usage effectiveness: facility energy / IT energy (1.0 at home).",
    )
    currency: str = Field(
        default="USD", min_length=1, description="Currency of every amount in this section."
    )
    currency_per_usd: PositiveFloat = Field(
        default=1.0, description="Units of `currency` one US dollar buys (the cloud price table is in USD)."
    )
    hosting_monthly: float = Field(
        default=0.0, ge=0, description="Fixed hosting cost per month (rack, colo)."
    )
    hosting_hourly: float = Field(default=0.0, ge=0, description="Hourly hosting cost (rented GPU server).")
    hardware_price: float = Field(default=0.0, ge=0, description="Purchase price of the hardware, amortized.")
    amortization_months: int = Field(
        default=36, ge=1, description="Months over which the hardware is written off."
    )
    other_power_w: float = Field(
        default=0.0, ge=0, description="Constant non-GPU draw of the server (CPU, RAM, fans), in watts."
    )
    hosts: list[str] = Field(
        default_factory=list, description="Hosts whose GPUs are counted (history 'host' column); empty: all."
    )
    max_sample_gap_s: PositiveFloat = Field(
        default=7200.0,
        description="Power samples further apart than this are not integrated across (energy counters are).",
    )
    token_sources: list[TokenSource] = Field(
        default_factory=list, description="Where tokens served are counted."
    )
    cloud_price_table_path: str | None = Field(
        default=None,
        description="JSON price table replacing the shipped llm_upkeep/data/cloud_prices.json (same format).",
    )
    compare_models: list[str] = Field(
        default_factory=list,
        description="Cloud models to compare with ('provider/model'); empty: all in the table.",
    )
    output_weight: PositiveFloat = Field(
        default=4.0,
        description="How many input tokens' worth of cost one output token carries when the self-hosted cost "
        "is split into per-input and per-output prices (decode is slower than prefill).",
    )
    capacity_output_tokens_per_s: float | None = Field(
        default=None,
        gt=0,
        description="Output tokens/s the deployment sustains at saturation (from the benchmark); enables "
        "utilization and break-even utilization.",
    )
    price_table_max_age_days: int = Field(
        default=180,
        ge=1,
        description="Say in the report that the cloud price table needs updating after this.",
    )
