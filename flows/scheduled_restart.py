"""Off-peak restart (the playbook's FAQ: "once daily during off-peak hours is cheap insurance").

Inactive by default in prefect.yaml; when enabled it goes through the same guard as the
runbook's restarts (dry-run, daily budget, ledger) and verifies each server came back.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from llm_upkeep.alerts import Delivery
from llm_upkeep.fleet import checked_host
from llm_upkeep.notices import restart_failed
from llm_upkeep.redact import install_log_redaction
from llm_upkeep.restart import RestartOutcome
from tasks.fleet import publish_if_part
from tasks.health import restart_server_task, verify_recovery_task
from tasks.notify import send_notice_task
from tasks.run_config import load_run_config


class RestartRunResult(BaseModel):
    flow: str = Field(default="scheduled-restart", description="Flow name.")
    status: str = Field(description="ok when every restart recovered or was a dry run; degraded otherwise.")
    actions: list[RestartOutcome] = Field(default_factory=list, description="One outcome per endpoint.")
    alert: Delivery | None = Field(default=None, description="The failure notice, when a restart failed.")


@flow(name="scheduled-restart")
async def scheduled_restart(
    config_path: str | None = None, endpoints: list[str] | None = None, host: str | None = None
) -> RestartRunResult:
    """host: on a fleet, restart only the endpoints of this host (the one the worker runs on)."""
    install_log_redaction()
    logger = get_run_logger()
    cfg = load_run_config(config_path)
    host = checked_host(cfg, host)
    state_dir = str(cfg.state_path)
    targets = [e for e in cfg.endpoints if not e.staging and (not endpoints or e.name in endpoints)
               and (host is None or e.host == host)]  # fmt: skip
    actions: list[RestartOutcome] = []
    for ep in targets:
        out = restart_server_task(cfg.restart, state_dir, ep.name, "scheduled off-peak restart", ep.model)
        if out.executed:  # the recovery probe runs in a process of its own (llm_upkeep/measure.py)
            out = await verify_recovery_task(
                ep, out, state_dir, cfg.health.probe_prompt, cfg.health.probe_max_tokens,
                cfg.health.ttft_alert_s, cfg.restart.recover_timeout_s,
            )  # fmt: skip
        logger.info("restart %s: %s recovered=%s", ep.name, out.decision, out.recovered)
        actions.append(out)
    bad = any(a.decision in ("failed", "over_budget") or a.recovered is False for a in actions)
    result = RestartRunResult(status="degraded" if bad else "ok", actions=actions)
    notice = restart_failed(actions)
    if notice is not None:
        result.alert = send_notice_task(cfg.alerts, *notice, "failure")
    publish_if_part(host, result)
    return result
