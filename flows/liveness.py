"""Liveness between the daily runs (every 5 minutes in prefect.yaml): a one-token generation per
endpoint, one message when an endpoint goes down, one "resolved" when it is back, nothing else.

Built to be cheap, since it runs 288 times a day: no Prefect tasks (a task run is rows and
events), no result persistence, no artifact and no log line on a quiet run, the probes run
concurrently, and the state lives in a small JSON file in state_dir. docs/monitoring.md gives
the measured cost.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from llm_upkeep.liveness.check import (
    LivenessResult,
    check_liveness,
    deliver_transitions,
    events_markdown,
    liveness_metrics,
)
from llm_upkeep.prom.export import export_run
from llm_upkeep.redact import install_log_redaction
from tasks.run_config import load_run_config


@flow(name="liveness", log_prints=False, persist_result=False)
async def liveness(config_path: str | None = None) -> LivenessResult:
    install_log_redaction()
    t0 = time.monotonic()
    cfg = load_run_config(config_path)
    if not cfg.liveness.enabled:
        return LivenessResult(status="skipped")
    result = await check_liveness(cfg)
    if result.transitions:
        logger = get_run_logger()
        deliveries = deliver_transitions(cfg, result)
        for t, d in zip(result.transitions, deliveries, strict=True):
            logger.warning("liveness %s: %s (%s%s)", t.endpoint, t.kind, d.status, f": {d.error}" if d.error else "")
        from prefect.artifacts import acreate_markdown_artifact

        await acreate_markdown_artifact(key="liveness-events", markdown=events_markdown(result, deliveries),
                                        description="Liveness: an endpoint went down or came back")  # fmt: skip
    if cfg.prometheus.enabled:
        export_run(cfg.prometheus, cfg.state_path, "liveness", "local", [], duration_s=time.monotonic() - t0,
                   ok=result.status == "ok", extra=liveness_metrics(result))  # fmt: skip
    return result
