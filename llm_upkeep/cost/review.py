"""The month's self-hosting cost against cloud API prices.

cost      = energy + hosting + amortized hardware, where
energy    = (GPU kWh from the NVML counters + other_power_w x hours) x PUE x price_per_kwh
hosting   = hosting_monthly x months + hosting_hourly x hours
hardware  = hardware_price / amortization_months x months      (months = window / its calendar month)

Per-token prices split the cost between input and output tokens with ``output_weight`` w (one output
token costs w input tokens' worth): per input token c = cost / (input + w x output), per output token
w x c. The cloud bill for the same traffic is input x p_in + output x p_out; saving = cloud - self.
Break-even treats this month's self-hosted cost as fixed (idle GPUs draw much of the power and the
hosting does not shrink): the traffic must grow by cost / cloud bill, and with a known capacity that
multiple times today's utilization is the break-even utilization.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field

from llm_upkeep.cost.config import CostConfig
from llm_upkeep.cost.energy import GpuEnergy, gpu_energy
from llm_upkeep.cost.tokens import TokenCount, count_tokens
from llm_upkeep.datafiles import load_table
from llm_upkeep.fleet_parts import HostPart

SHIPPED = "cloud_prices.json"


class PriceTableError(Exception):
    """The price table cannot be read or has the wrong shape; the message names the file."""


class PriceEntry(BaseModel):
    provider: str = Field(description="API provider.")
    model: str = Field(description="Model name as the provider lists it.")
    input_per_1m: float = Field(ge=0, description="Price of 1M input tokens.")
    output_per_1m: float = Field(ge=0, description="Price of 1M output tokens.")
    note: str = Field(default="", description="Conditions of the price.")

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"


class PriceTable(BaseModel):
    as_of: date = Field(description="Date the prices were taken.")
    currency: str = Field(default="USD", description="Currency of the prices.")
    unit: str = Field(default="per 1M tokens", description="Unit of the prices.")
    description: str = Field(default="", description="Where the prices come from.")
    models: list[PriceEntry] = Field(description="Cloud models and their prices.")
    source: str = Field(default="", exclude=True, description="File the table was read from.")


def load_price_table(path: str | Path | None = None) -> PriceTable:
    return load_table(PriceTable, SHIPPED, path, "price table", PriceTableError)


# ---------------------------------------------------------------- result


class GpuEnergyRow(BaseModel):
    host: str = Field(description="Host of the GPU.")
    gpu: int = Field(description="GPU index.")
    kwh: float = Field(description="Energy in the window, kWh (GPU board only).")
    method: str = Field(description="counter, power, counter+power or none.")
    resets: int = Field(description="Energy-counter restarts seen.")
    coverage: float = Field(description="Share of the window covered by samples (0..1).")


class Comparison(BaseModel):
    provider: str = Field(description="Cloud API provider.")
    model: str = Field(description="Cloud model.")
    input_per_1m: float = Field(description="Cloud price per 1M input tokens, in the review currency.")
    output_per_1m: float = Field(description="Cloud price per 1M output tokens, in the review currency.")
    cloud_cost: float = Field(description="What this month's tokens would have cost there.")
    saving: float = Field(description="cloud_cost - self-hosted cost (negative: self-hosting costs more).")
    break_even_factor: float | None = Field(description="Traffic multiple at which both cost the same.")
    break_even_utilization: float | None = Field(
        description="Utilization (0..1+) at which both cost the same."
    )


class DailyRow(BaseModel):
    day: date = Field(description="UTC day.")
    energy_kwh: float = Field(description="GPU energy that day, kWh.")
    cost: float = Field(description="Energy cost plus the day's share of fixed costs.")
    input_tokens: float = Field(description="Input tokens that day.")
    output_tokens: float = Field(description="Output tokens that day.")


class CostReview(BaseModel):
    status: str = Field(description="ok | degraded (data missing) | skipped (nothing configured).")
    period: str = Field(description="Label of the window, e.g. 2026-10.")
    start: datetime = Field(description="Window start (inclusive, UTC).")
    end: datetime = Field(description="Window end (exclusive, UTC).")
    currency: str = Field(description="Currency of every amount.")
    gpus: list[GpuEnergyRow] = Field(default_factory=list, description="Energy per GPU.")
    gpu_kwh: float = Field(default=0.0, description="GPU energy, kWh.")
    other_kwh: float = Field(default=0.0, description="Non-GPU energy (other_power_w), kWh.")
    facility_kwh: float = Field(default=0.0, description="(GPU + other) x PUE, kWh.")
    energy_cost: float = Field(default=0.0, description="facility_kwh x price_per_kwh.")
    hosting_cost: float = Field(default=0.0, description="Hosting in the window.")
    hardware_cost: float = Field(default=0.0, description="Amortized hardware in the window.")
    total_cost: float = Field(default=0.0, description="energy + hosting + hardware.")
    input_tokens: float = Field(default=0.0, description="Input (prompt) tokens served.")
    output_tokens: float = Field(default=0.0, description="Output (generated) tokens served.")
    requests: int = Field(default=0, description="Requests counted from logs.")
    cost_per_1m_input: float | None = Field(default=None, description="Self-hosted price of 1M input tokens.")
    cost_per_1m_output: float | None = Field(
        default=None, description="Self-hosted price of 1M output tokens."
    )
    cost_per_1m_blended: float | None = Field(default=None, description="Cost / all tokens x 1M.")
    utilization: float | None = Field(default=None, description="Output tokens / capacity in the window.")
    comparisons: list[Comparison] = Field(default_factory=list, description="Against each cloud model.")
    daily: list[DailyRow] = Field(default_factory=list, description="Per-day energy, cost and tokens.")
    price_table: str = Field(default="", description="Price table used and its date.")
    plot_path: str | None = Field(default=None, description="PNG of daily cost and tokens.")
    notes: list[str] = Field(default_factory=list, description="Assumptions, gaps, stale data.")
    hosts: list[HostPart] = Field(
        default_factory=list, description="Fleet: each host's energy part (missing ones included)."
    )

    def to_json(self) -> dict:
        d = self.model_dump(mode="json")
        d = {"flow": "cost-review", **d}
        return d


def month_window(month: str | None = None, now: datetime | None = None) -> tuple[datetime, datetime, str]:
    """[start, end) of a calendar month 'YYYY-MM' in UTC; default: the previous full month."""
    if month:
        try:
            y, m = (int(x) for x in month.split("-"))
            start = datetime(y, m, 1, tzinfo=UTC)
        except ValueError:
            raise ValueError(f"month must be YYYY-MM, got {month!r}") from None
    else:
        now = now or datetime.now(UTC)
        first = datetime(now.year, now.month, 1, tzinfo=UTC)
        prev = first - timedelta(days=1)
        start = datetime(prev.year, prev.month, 1, tzinfo=UTC)
    days = calendar.monthrange(start.year, start.month)[1]
    return start, start + timedelta(days=days), f"{start:%Y-%m}"


def _months(start: datetime, end: datetime) -> float:
    """The window as a fraction of its starting calendar month (exactly 1.0 for a calendar month)."""
    days = calendar.monthrange(start.year, start.month)[1]
    return (end - start).total_seconds() / (days * 86400)


def compute_review(
    cfg: CostConfig, start: datetime, end: datetime, energies: list[GpuEnergy], tokens: list[TokenCount],
    table: PriceTable | None, *, period: str = "", today: date | None = None,
) -> CostReview:  # fmt: skip
    """The arithmetic of the review, from measured energy and tokens (no I/O)."""
    r = CostReview(status="ok", period=period or f"{start:%Y-%m-%d}..{end:%Y-%m-%d}", start=start, end=end,
                   currency=cfg.currency)  # fmt: skip
    window_s = (end - start).total_seconds()
    hours = window_s / 3600
    months = _months(start, end)

    for g in energies:
        r.gpus.append(GpuEnergyRow(host=g.host, gpu=g.gpu, kwh=g.kwh, method=g.method, resets=g.resets,
                                   coverage=min(1.0, g.covered_s / window_s)))  # fmt: skip
        if g.resets:
            r.notes.append(f"{g.host} GPU {g.gpu}: energy counter restarted {g.resets} time(s); handled")
        if g.covered_s < 0.9 * window_s:
            r.notes.append(f"{g.host} GPU {g.gpu}: samples cover {g.covered_s / window_s:.0%} of the period; "
                           "energy is under-counted")  # fmt: skip
        if g.power_kwh:
            r.notes.append(f"{g.host} GPU {g.gpu}: {g.power_kwh:.3f} kWh estimated from power samples "
                           "(no energy counter)")  # fmt: skip
    r.gpu_kwh = sum(g.kwh for g in energies)
    r.other_kwh = cfg.other_power_w * hours / 1000
    r.facility_kwh = (r.gpu_kwh + r.other_kwh) * cfg.pue
    degraded = False
    if cfg.price_per_kwh is None:
        r.notes.append("cost.price_per_kwh is not set: energy is not priced")
        degraded = True
    else:
        r.energy_cost = r.facility_kwh * cfg.price_per_kwh
        if not energies:
            r.notes.append(
                "no GPU samples in the history for this period (is the hourly GPU sampling running?)"
            )
            degraded = True
    r.hosting_cost = cfg.hosting_monthly * months + cfg.hosting_hourly * hours
    r.hardware_cost = cfg.hardware_price / cfg.amortization_months * months
    r.total_cost = r.energy_cost + r.hosting_cost + r.hardware_cost

    for t in tokens:
        r.input_tokens += t.input_tokens
        r.output_tokens += t.output_tokens
        r.requests += t.requests
        r.notes += t.notes
        if t.resets:
            r.notes.append(f"{t.source}: token counters restarted {t.resets} time(s); handled")
    if not tokens:
        r.notes.append("no cost.token_sources configured: no per-token prices")
        degraded = True
    elif r.input_tokens + r.output_tokens == 0:
        r.notes.append("no tokens counted in this period")
        degraded = True

    w = cfg.output_weight
    denom = r.input_tokens + w * r.output_tokens
    if denom > 0:
        per_in = r.total_cost / denom
        r.cost_per_1m_input = per_in * 1e6
        r.cost_per_1m_output = w * per_in * 1e6
        r.cost_per_1m_blended = r.total_cost / (r.input_tokens + r.output_tokens) * 1e6
    if cfg.capacity_output_tokens_per_s:
        r.utilization = r.output_tokens / (cfg.capacity_output_tokens_per_s * window_s)

    if table is not None:
        age = ((today or date.today()) - table.as_of).days
        r.price_table = f"{table.source} (prices as of {table.as_of})"
        if age > cfg.price_table_max_age_days:
            r.notes.append(
                f"the cloud price table is {age} days old: update it (cost.cloud_price_table_path)"
            )
        fx = cfg.currency_per_usd if table.currency.upper() == "USD" else 1.0
        if table.currency.upper() not in ("USD", cfg.currency.upper()):
            r.notes.append(
                f"price table currency {table.currency} differs from {cfg.currency}; not converted"
            )
        chosen = [m for m in table.models if not cfg.compare_models or m.key in cfg.compare_models
                  or m.model in cfg.compare_models]  # fmt: skip
        for m in chosen:
            p_in, p_out = m.input_per_1m * fx, m.output_per_1m * fx
            cloud = (r.input_tokens * p_in + r.output_tokens * p_out) / 1e6
            factor = r.total_cost / cloud if cloud > 0 else None
            r.comparisons.append(Comparison(
                provider=m.provider, model=m.model, input_per_1m=p_in, output_per_1m=p_out, cloud_cost=cloud,
                saving=cloud - r.total_cost, break_even_factor=factor,
                break_even_utilization=factor * r.utilization if factor is not None and r.utilization is not None
                else None,
            ))  # fmt: skip

    # daily rows: energy by day, fixed costs spread evenly over the window's days
    days = sorted({start.date() + timedelta(days=i) for i in range(max(1, round(window_s / 86400)))})
    fixed_per_day = (r.hosting_cost + r.hardware_cost) / len(days)
    other_per_day = r.other_kwh / len(days)
    for d in days:
        kwh = sum(g.daily_kwh.get(d, 0.0) for g in energies)
        ec = ((kwh + other_per_day) * cfg.pue * cfg.price_per_kwh) if cfg.price_per_kwh is not None else 0.0
        ti = sum(t.daily.get(d, [0.0, 0.0])[0] for t in tokens)
        to = sum(t.daily.get(d, [0.0, 0.0])[1] for t in tokens)
        r.daily.append(
            DailyRow(day=d, energy_kwh=kwh, cost=ec + fixed_per_day, input_tokens=ti, output_tokens=to)
        )

    nothing = (cfg.price_per_kwh is None and not cfg.hosting_monthly and not cfg.hosting_hourly
               and not cfg.hardware_price and not tokens)  # fmt: skip
    r.status = "skipped" if nothing else "degraded" if degraded else "ok"
    return r


def price_and_compute(cfg: CostConfig, start: datetime, end: datetime, energies: list[GpuEnergy],
                      tokens: list[TokenCount], *, period: str = "", today: date | None = None) -> CostReview:  # fmt: skip
    """compute_review with the configured price table; a broken table degrades the review, not aborts it."""
    try:
        table, err = load_price_table(cfg.cloud_price_table_path), None
    except PriceTableError as exc:
        table, err = None, str(exc)
    r = compute_review(cfg, start, end, energies, tokens, table, period=period, today=today)
    if err:
        r.notes.append(err)
        if r.status == "ok":
            r.status = "degraded"
    return r


def review_costs(cfg: CostConfig, state_dir, start: datetime, end: datetime, *, period: str = "",
                 today: date | None = None) -> CostReview:  # fmt: skip
    """Read the history and logs for the window, then compute (the plot is separate)."""
    energies = gpu_energy(state_dir, start, end, max_gap_s=cfg.max_sample_gap_s, hosts=cfg.hosts or None)
    tokens = count_tokens(cfg.token_sources, state_dir, start, end)
    return price_and_compute(cfg, start, end, energies, tokens, period=period, today=today)
