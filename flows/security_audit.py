"""The monthly security audit flow: exposure and versions of every endpoint, the host firewall,
file permissions and access logs; one report, a findings table, Slack on high severity.
The audit changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Literal

from prefect import flow, get_run_logger

from llm_upkeep.configbase import ConfigError
from llm_upkeep.fleet import checked_host, endpoints_of, host_slug, runs_on_hosts
from llm_upkeep.fleet_parts import part_checks
from llm_upkeep.redact import install_log_redaction
from llm_upkeep.security.audit import AuditResult, SectionResult, finish_audit, section_failed
from tasks.fleet import dispatching, publish_if_part, run_host_parts
from tasks.health import send_alert_task
from tasks.run_config import load_run_config
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
async def security_audit(
    config_path: str | None = None,
    scope: Literal["all", "central", "host"] = "all",
    host: str | None = None,
) -> AuditResult:
    """scope/host on a fleet: each host's part audits what only that host can see (its
    endpoints' listening sockets and its firewall, file permissions, access logs); the central run
    checks exposure and versions of every endpoint, collects each host's part with a deadline
    and reports the fleet once (a missing host is a section in error, and alerted)."""
    install_log_redaction()
    logger = get_run_logger()
    t0 = time.monotonic()
    started = datetime.now(UTC)
    cfg = load_run_config(config_path)
    if scope == "host":
        if checked_host(cfg, host) is None:
            raise ConfigError("scope 'host' needs a host name", key="host")
        cfg = cfg.model_copy(update={"endpoints": endpoints_of(cfg, host)})
    fleet = scope == "central" and dispatching(cfg) and runs_on_hosts(cfg.fleet, "security-audit")
    parts_f = None
    if fleet:
        per_host = {h.name: {"scope": "host", "host": h.name, **({"config_path": config_path} if config_path else {})}
                    for h in cfg.fleet.hosts}  # fmt: skip
        parts_f = asyncio.ensure_future(run_host_parts(cfg, "security-audit", per_host))

    # Host-local reads run in the task runner's threads while the endpoints are probed.
    files_f = audit_files_task.submit(cfg) if not fleet else None
    access_f = audit_access_task.submit(cfg) if not fleet else None
    try:
        exposure, exps = await audit_exposure_task(cfg)
    except Exception as exc:  # one broken section must not hide the others
        exposure, exps = section_failed("exposure", exc), []
    sections = [exposure]
    steps = [("versions", lambda: audit_versions_task(cfg, exps))] if scope != "host" else []
    if not fleet:
        steps += [
            ("firewall", lambda: audit_firewall_task(cfg, exps)),
            ("files", lambda: files_f.result()),
            ("access", lambda: access_f.result()),
        ]
    for name, call in steps:
        try:
            sections.append(call())
        except Exception as exc:
            sections.append(section_failed(name, exc))
    parts = await parts_f if parts_f is not None else []
    for p in parts:
        sub = p.parse(AuditResult)
        if sub is None:
            sections.append(SectionResult(name=f"{p.host}/host-part", status="error",
                                          notes=[f"host {p.host}: {p.status.upper()}: {p.detail}"]))  # fmt: skip
            continue
        for s in sub.sections:
            if s.name != "exposure":  # the central section covers exposure over HTTP
                sections.append(s.model_copy(update={"name": f"{p.host}/{s.name}"}))
    result = finish_audit(sections, started, t0)
    result.hosts = parts
    if any(not p.ran for p in parts):
        send_alert_task(cfg.alerts, str(cfg.state_path), "Security audit: host part missing",
                        part_checks(parts, "security_audit"), cfg.health.alert_suppress_minutes, "")  # fmt: skip
    delivery = (send_audit_alert_task(cfg.alerts, result, cfg.security.slack_min_severity)
                if scope != "host" else None)  # the central run alerts for the fleet  # fmt: skip
    if delivery is not None:
        result.alerts.append(delivery)
        if delivery.status == "failed":
            logger.error("Slack alert was not delivered: %s", delivery.error)
    result.duration_s = round(time.monotonic() - t0, 3)
    publish_audit_report_task(result, key_suffix=f"-host-{host_slug(host)}" if scope == "host" and host else "")
    c = result.counts()
    logger.info("security audit: %s (%d critical, %d high, %d medium, %d low, %.2f s)", result.status,
                c["critical"], c["high"], c["medium"], c["low"], result.duration_s)  # fmt: skip
    publish_if_part(host if scope == "host" else None, result)
    return result
