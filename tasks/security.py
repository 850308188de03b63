"""Thin Prefect tasks of the monthly security audit: one section each. Nothing is cached (NO_CACHE):
an audit that replays last month's answer is worse than none. Every section only reads.
"""

from __future__ import annotations

import httpx
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from llm_upkeep.alerts import Delivery
from llm_upkeep.config import AlertsConfig, Config
from llm_upkeep.notify import deliver
from llm_upkeep.security import audit
from llm_upkeep.security.audit import AuditResult
from llm_upkeep.security.exposure import EndpointExposure
from llm_upkeep.security.findings import SectionResult
from llm_upkeep.security.report import findings_table, render_report, slack_message


@task(name="audit-exposure", cache_policy=NO_CACHE)
async def audit_exposure_task(cfg: Config) -> tuple[SectionResult, list[EndpointExposure]]:
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as http:
        return await audit.audit_exposure(cfg, http)


@task(name="audit-versions", cache_policy=NO_CACHE)
def audit_versions_task(cfg: Config, exposures: list[EndpointExposure]) -> SectionResult:
    return audit.audit_versions(cfg, exposures)


@task(name="audit-firewall", cache_policy=NO_CACHE)
def audit_firewall_task(cfg: Config, exposures: list[EndpointExposure]) -> SectionResult:
    return audit.audit_firewall(cfg, exposures)


@task(name="audit-files", cache_policy=NO_CACHE)
def audit_files_task(cfg: Config) -> SectionResult:
    return audit.audit_files(cfg)


@task(name="audit-access-logs", cache_policy=NO_CACHE)
def audit_access_task(cfg: Config) -> SectionResult:
    return audit.audit_access(cfg)


@task(name="send-audit-alert", cache_policy=NO_CACHE)
def send_audit_alert_task(alerts: AlertsConfig, result: AuditResult, min_severity: str) -> Delivery | None:
    msg = slack_message(result, min_severity)
    if msg is None:
        return None
    return deliver(alerts, msg[0].split(":", 1)[0], msg[0], msg[1], kind="warning")  # Slack and Apprise


@task(name="publish-audit-report", cache_policy=NO_CACHE)
def publish_audit_report_task(result: AuditResult, key_suffix: str = "") -> None:
    create_markdown_artifact(
        key=f"security-audit-report{key_suffix}", markdown=render_report(result),
        description="Monthly security audit",
    )  # fmt: skip
    create_table_artifact(
        key=f"security-audit-findings{key_suffix}", table=findings_table(result),
        description="Findings of the monthly security audit",
    )  # fmt: skip
