"""The monthly cost review flow: GPU energy from the history, tokens served, hosting and hardware,
cost per 1M tokens against cloud API prices; markdown, a table and a plot of daily cost and tokens.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger

from llm_upkeep.config import load_config
from llm_upkeep.cost.review import CostReview, month_window
from llm_upkeep.redact import install_log_redaction
from tasks.cost import (
    compute_review_task,
    count_tokens_task,
    gpu_energy_task,
    plot_task,
    publish_cost_report_task,
    record_token_counters_task,
)


@flow(name="cost-review", log_prints=False)
async def cost_review(config_path: str | None = None, month: str | None = None) -> CostReview:
    """Review one calendar month ('YYYY-MM'; default: the previous full month)."""
    install_log_redaction()
    logger = get_run_logger()
    cfg = load_config(config_path)
    ccfg = cfg.cost
    state_dir = str(cfg.state_path)
    start, end, period = month_window(month, datetime.now(UTC))

    counter_eps = [cfg.endpoint(s.endpoint) for s in ccfg.token_sources if s.kind == "metrics"]
    notes: list[str] = []
    if counter_eps:
        try:
            notes = await record_token_counters_task(state_dir, counter_eps)
        except Exception as exc:  # counters are sampled again next run; the review goes on
            notes = [f"token counters not sampled: {type(exc).__name__}"]
    energies = gpu_energy_task(ccfg, state_dir, start, end)
    tokens = count_tokens_task(ccfg.token_sources, state_dir, start, end)
    review = compute_review_task(ccfg, start, end, energies, tokens, period)
    review.notes += notes
    if review.status != "skipped":
        try:
            review.plot_path = plot_task(review, str(cfg.state_path / "reports"))
        except Exception as exc:
            review.notes.append(f"plot not written: {type(exc).__name__}: {exc}")
    publish_cost_report_task(review)
    logger.info("cost review %s: %s, total %.2f %s, %d input / %d output tokens", period, review.status,
                review.total_cost, review.currency, review.input_tokens, review.output_tokens)  # fmt: skip
    return review
