"""The rollback-model flow: one click in the Prefect UI puts the previous model version back.

Same core as `llm-upkeep models rollback`: swap the active symlink / env file (or copy the kept
Ollama tag back), restart through the configured command, probe until it answers. The result
says how long it took, end to end (the playbook's bar: under 60 s).
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from llm_upkeep.config import load_config
from llm_upkeep.models.promote import SwitchResult
from llm_upkeep.redact import install_log_redaction
from tasks.models import notify_task, rollback_model_task


@flow(name="rollback-model", log_prints=False)
async def rollback_model_flow(
    endpoint: str | None = None, to: str | None = None, config_path: str | None = None, reason: str = ""
) -> SwitchResult:
    install_log_redaction()
    logger = get_run_logger()
    cfg = load_config(config_path)
    res = await rollback_model_task(cfg, endpoint, to, reason or "rollback-model flow")
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
    return res
