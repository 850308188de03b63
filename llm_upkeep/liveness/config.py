"""The [liveness] section: what the 5-minute check asks and how it decides an endpoint is down."""

from __future__ import annotations

from pydantic import Field

from llm_upkeep.configbase import PositiveFloat, Section


class LivenessConfig(Section):
    enabled: bool = Field(default=True, description="Run the liveness check (the deployment's schedule runs it).")
    endpoints: list[str] = Field(
        default_factory=list, description="Endpoint names to check; empty: every non-staging endpoint."
    )
    prompt: str = Field(default="ok", min_length=1, description="Prompt of the one-token generation.")
    max_tokens: int = Field(
        default=1, ge=1, le=16, description="Tokens the liveness generation asks for (1: the cheapest proof)."
    )
    timeout_s: PositiveFloat = Field(
        default=20.0, description="Most seconds one liveness generation may take (capped by the endpoint's)."
    )
    confirm_retries: int = Field(
        default=1, ge=0, le=5, description="Re-tries, within the run, before a failure counts as down."
    )
    confirm_delay_s: float = Field(default=3.0, ge=0, description="Seconds between those re-tries.")
    down_after_runs: int = Field(
        default=1, ge=1, le=12,
        description="Consecutive failed runs before the endpoint is declared down and the alert goes out.",
    )  # fmt: skip
