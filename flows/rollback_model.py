"""The rollback-model flow: one click in the Prefect UI puts the previous model version back.

Same core as `llm-upkeep models rollback`: swap the active symlink / env file (or copy the kept
Ollama tag back), restart through the configured command, probe until it answers. The result
says how long it took, end to end (the playbook's bar: under 60 s).
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from llm_upkeep.models.endpoints import managed_endpoint
from llm_upkeep.models.promote import SwitchResult
from llm_upkeep.redact import install_log_redaction
from tasks.fleet import on_endpoint_host, publish_if_part
from tasks.models import notify_task, rollback_model_task
from tasks.run_config import load_run_config


@flow(name="rollback-model", log_prints=False)
async def rollback_model_flow(
    endpoint: str | None = None,
    to: str | None = None,
    config_path: str | None = None,
    reason: str = "",
    host: str | None = None,
) -> SwitchResult:
    """host: on a fleet, the host this copy runs on; the central copy forwards the rollback to the
    endpoint's host and returns its result (the swap and the restart happen there)."""
    install_log_redaction()
    logger = get_run_logger()
    cfg = load_run_config(config_path)
    m = managed_endpoint(cfg, endpoint)
    params = {"endpoint": m.name, "to": to, "config_path": config_path, "reason": reason}
    forwarded = await on_endpoint_host(cfg, "rollback-model", m.endpoint, host, params, SwitchResult)
    if forwarded is not None:
        logger.info("rollback-model %s ran on host %s: ok=%s", m.name, m.endpoint.host, forwarded.ok)
        return forwarded
    res = await rollback_model_task(cfg, m.name, to, reason or "rollback-model flow")
    state = "OK" if res.ok else "FAILED"
    text = f"Model rollback on {res.endpoint}: {state} in {res.seconds:.1f} s, now {res.to_version}"
    blocks = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": text + (f"\n{res.detail}" if res.detail else "")},
        }
    ]
    notify_task(cfg.alerts, text, blocks)
    logger.info("rollback-model %s: %s in %.2f s (to %s)", res.endpoint, state, res.seconds, res.to_version)
    publish_if_part(host, res)
    return res
