"""The monthly cost review flow: GPU energy from the history, tokens served, hosting and hardware,
cost per 1M tokens against cloud API prices; markdown, a table and a plot of daily cost and tokens.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Literal

from prefect import flow, get_run_logger

from llm_upkeep.configbase import ConfigError
from llm_upkeep.cost.fleet import EnergyPart, collect_energies, energy_part, token_sources_of
from llm_upkeep.cost.review import CostReview, month_window
from llm_upkeep.cost.tokens import token_coverage_notes
from llm_upkeep.fleet import checked_host, runs_on_hosts
from llm_upkeep.fleet_parts import part_checks
from llm_upkeep.redact import install_log_redaction
from tasks.cost import (
    compute_review_task,
    count_tokens_task,
    gpu_energy_task,
    plot_task,
    publish_cost_report_task,
    record_token_counters_task,
)
from tasks.fleet import dispatching, publish_if_part, run_host_parts
from tasks.health import send_alert_task
from tasks.run_config import load_run_config


@flow(name="cost-review", log_prints=False)
async def cost_review(
    config_path: str | None = None,
    month: str | None = None,
    scope: Literal["all", "central", "host"] = "all",
    host: str | None = None,
) -> CostReview | EnergyPart:
    """Review one calendar month ('YYYY-MM'; default: the previous full month).

    scope/host on a fleet: each host's part (scope "host") measures only its own GPU energy and
    returns it; the central run (scope "central") collects every host's energy with a deadline,
    names a missing host in the report and alerts, and prices the whole fleet once."""
    install_log_redaction()
    logger = get_run_logger()
    cfg = load_run_config(config_path)
    ccfg = cfg.cost
    state_dir = str(cfg.state_path)
    start, end, period = month_window(month, datetime.now(UTC))
    if scope == "host":
        host = checked_host(cfg, host)
        if host is None:
            raise ConfigError("scope 'host' needs a host name", key="host")
        mine = token_sources_of(ccfg.token_sources, {e.name: e.host for e in cfg.endpoints}, host)
        counter_eps = [cfg.endpoint(s.endpoint) for s in mine if s.kind == "metrics"]
        if counter_eps:
            with contextlib.suppress(Exception):  # sampled again next hour; the part goes on
                await record_token_counters_task(state_dir, counter_eps)
        part = energy_part(host, gpu_energy_task(ccfg, state_dir, start, end),
                           count_tokens_task(mine, state_dir, start, end))  # fmt: skip
        logger.info("cost review %s, host %s: %.3f kWh on %d GPU(s)", period, host, part.kwh, len(part.gpus))
        publish_if_part(host, part)
        return part
    parts = []
    if scope == "central" and dispatching(cfg) and runs_on_hosts(cfg.fleet, "cost-review"):
        per_host = {h.name: {"scope": "host", "host": h.name, "month": period,
                             **({"config_path": config_path} if config_path else {})}
                    for h in cfg.fleet.hosts}  # fmt: skip
        parts = await run_host_parts(cfg, "cost-review", per_host)

    counter_eps = [cfg.endpoint(s.endpoint) for s in ccfg.token_sources if s.kind == "metrics"]
    notes: list[str] = []
    if counter_eps and not parts:
        try:
            notes = await record_token_counters_task(state_dir, counter_eps)
        except Exception as exc:  # counters are sampled again next run; the review goes on
            notes = [f"token counters not sampled: {type(exc).__name__}"]
    if parts:  # each host measured its own energy and counted its own tokens
        energies, tokens, missing = collect_energies(parts)
        notes += missing
    else:
        energies = gpu_energy_task(ccfg, state_dir, start, end)
        tokens = count_tokens_task(ccfg.token_sources, state_dir, start, end)
    review = compute_review_task(ccfg, start, end, energies, tokens, period)
    review.notes += notes + token_coverage_notes(cfg.endpoints, ccfg.token_sources)  # Ollama: what was used
    review.hosts = parts
    if any(not p.ran for p in parts):
        review.status = "degraded"
        send_alert_task(cfg.alerts, state_dir, f"Cost review {period}: host part missing",
                        part_checks(parts, "cost_review"), cfg.health.alert_suppress_minutes, "")  # fmt: skip
    if review.status != "skipped":
        try:
            review.plot_path = plot_task(review, str(cfg.state_path / "reports"))
        except Exception as exc:
            review.notes.append(f"plot not written: {type(exc).__name__}: {exc}")
    publish_cost_report_task(review)
    logger.info("cost review %s: %s, total %.2f %s, %d input / %d output tokens", period, review.status,
                review.total_cost, review.currency, review.input_tokens, review.output_tokens)  # fmt: skip
    return review
