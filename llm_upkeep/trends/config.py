"""The [trends] section: how much history the weekly review reads for trends, and what counts
as a drift or a leak (a change must be both significant and large enough to matter)."""

from __future__ import annotations

from pydantic import Field

from llm_upkeep.configbase import PositiveFloat, Section


class TrendsConfig(Section):
    enabled: bool = Field(default=True, description="Add the trends section to the weekly review.")
    weeks: int = Field(default=4, ge=1, le=26, description="Weeks of history the trend tests read.")
    min_days: int = Field(
        default=7, ge=4, description="A series with fewer days of data gets no verdict (too short to say)."
    )
    alpha: float = Field(
        default=0.01, gt=0, lt=0.5, description="Mann-Kendall significance level a trend must reach."
    )
    ttft_drift_percent: PositiveFloat = Field(
        default=20.0, description="A significant TTFT rise at least this large over the window is a drift."
    )
    tokens_per_second_drop_percent: PositiveFloat = Field(
        default=20.0, description="A significant decode tokens/s fall at least this large is a drift."
    )
    memory_growth_percent: PositiveFloat = Field(
        default=10.0,
        description="A significant rise of GPU memory used (at comparable load) at least this large, relative "
        "to where it started, is the playbook's memory leak.",
    )
    load_band_percent: float = Field(
        default=15.0, ge=0, description="Comparable load: GPU utilization within this many points of its median."
    )
    temperature_band_c: float = Field(
        default=5.0, ge=0, description="Comparable temperature: within this many °C of the GPU's median."
    )
