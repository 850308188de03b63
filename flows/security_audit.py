"""The monthly security audit flow: exposure and versions of every endpoint, the host firewall,
file permissions and access logs; one report, a findings table, Slack on high severity.
The audit changes nothing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow, get_run_logger

from llm_upkeep.config import load_config
from llm_upkeep.redact import install_log_redaction
from llm_upkeep.security.audit import AuditResult, finish_audit, section_failed
from tasks.security import (
    audit_access_task,
    audit_exposure_task,
    audit_files_task,
    audit_firewall_task,
    audit_versions_task,
    publish_audit_report_task,
    send_audit_alert_task,
)


@flow(name="security-audit", log_prints=False)
async def security_audit(config_path: str | None = None) -> AuditResult:
    install_log_redaction()
    logger = get_run_logger()
    t0 = time.monotonic()
    started = datetime.now(UTC)
    cfg = load_config(config_path)

    # Host-local reads run in the task runner's threads while the endpoints are probed.
    files_f = audit_files_task.submit(cfg)
    access_f = audit_access_task.submit(cfg)
    try:
        exposure, exps = await audit_exposure_task(cfg)
    except Exception as exc:  # one broken section must not hide the others
        exposure, exps = section_failed("exposure", exc), []
    sections = [exposure]
    for name, call in (
        ("versions", lambda: audit_versions_task(cfg, exps)),
        ("firewall", lambda: audit_firewall_task(cfg, exps)),
        ("files", lambda: files_f.result()),
        ("access", lambda: access_f.result()),
    ):
        try:
            sections.append(call())
        except Exception as exc:
            sections.append(section_failed(name, exc))
    result = finish_audit(sections, started, t0)
    delivery = send_audit_alert_task(cfg.alerts, result, cfg.security.slack_min_severity)
    if delivery is not None:
        result.alerts.append(delivery)
        if delivery.status == "failed":
            logger.error("Slack alert was not delivered: %s", delivery.error)
    result.duration_s = round(time.monotonic() - t0, 3)
    publish_audit_report_task(result)
    c = result.counts()
    logger.info("security audit: %s (%d critical, %d high, %d medium, %d low, %.2f s)", result.status,
                c["critical"], c["high"], c["medium"], c["low"], result.duration_s)  # fmt: skip
    return result
