"""Orchestration of the monthly security audit: one function per section, each returning a
SectionResult, and the fold into one AuditResult. No Prefect here; flows/security_audit.py wraps
each section in a task. Every section only reads.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import psutil
from pydantic import BaseModel, Field

from llm_upkeep.alerts import Delivery
from llm_upkeep.config import Config
from llm_upkeep.fleet_parts import HostPart
from llm_upkeep.redact import redact
from llm_upkeep.security import accesslog, cves, exposure, files, firewall
from llm_upkeep.security.exposure import EndpointExposure
from llm_upkeep.security.findings import SEVERITY_RANK, Finding, SectionResult, sort_findings

__all__ = [
    "AuditResult",
    "Finding",
    "SectionResult",
    "audit_access",
    "audit_exposure",
    "audit_files",
    "audit_firewall",
    "audit_versions",
    "finish_audit",
    "llm_ports",
    "run_audit",
]


class AuditResult(BaseModel):
    """The audit's verdict: ok, or degraded when a finding is medium or worse or a section failed."""

    status: str = Field(description="ok | degraded")
    findings: list[Finding] = Field(default_factory=list, description="All findings, worst first.")
    sections: list[SectionResult] = Field(default_factory=list, description="Per-section status and notes.")
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC), description="When it started.")
    duration_s: float = Field(default=0.0, description="Wall time of the audit.")
    alerts: list[Delivery] = Field(default_factory=list, description="Slack deliveries.")
    hosts: list[HostPart] = Field(
        default_factory=list, description="Fleet: each host's part (sockets, firewall, files, access logs)."
    )

    def counts(self) -> dict[str, int]:
        c = {s: 0 for s in ("critical", "high", "medium", "low")}
        for f in self.findings:
            c[f.severity] += 1
        return c

    def to_json(self) -> dict:
        return {
            "flow": "security-audit",
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "duration_s": self.duration_s,
            "counts": self.counts(),
            "findings": [f.public() for f in self.findings],
            "sections": [
                {"name": s.name, "status": s.status, "notes": [redact(n) for n in s.notes]}
                for s in self.sections
            ],
            "alerts": [a.model_dump(mode="json") for a in self.alerts],
        }


def llm_ports(cfg: Config) -> set[int]:
    """Ports of local endpoints plus security.extra_ports."""
    local = exposure.local_addresses()
    ports = set(cfg.security.extra_ports)
    for ep in cfg.endpoints:
        if exposure.endpoint_is_local(ep, local):
            ports.add(exposure.url_host_port(ep.url)[1])
    return ports


async def audit_exposure(
    cfg: Config, http: httpx.AsyncClient
) -> tuple[SectionResult, list[EndpointExposure]]:
    sec = cfg.security
    res = SectionResult(name="exposure", status="ok")
    if not cfg.endpoints and not sec.extra_ports:
        res.status = "skipped"
        res.notes.append("no endpoints and no security.extra_ports configured")
        return res, []
    ports = llm_ports(cfg)
    try:
        sockets = exposure.list_listening_sockets(ports)
    except (psutil.Error, OSError) as exc:
        sockets = []
        res.notes.append(f"socket table not readable: {redact(exc)}; bind addresses not checked")
    local = exposure.local_addresses()
    exps: list[EndpointExposure] = []
    for ep in cfg.endpoints:
        exp = await exposure.probe_endpoint_exposure(
            ep, http, timeout=sec.probe_timeout_s, dangerous=sec.probe_dangerous_routes,
            sockets=sockets, local=local,
        )  # fmt: skip
        exps.append(exp)
        res.notes += exp.notes
        if exp.inference is not None and exp.inference.verdict == "unreachable":
            res.notes.append(f"{ep.name}: not reachable ({exp.inference.excerpt}); its exposure is unknown")
            continue
        res.findings += exposure.assess_exposure(exp, ep)
        state = {True: "reachable beyond loopback", False: "loopback only", None: "bind not visible"}
        res.notes.append(
            f"{ep.name}: {state[exp.exposed]}; inference without credentials: "
            f"{exp.inference.verdict if exp.inference else 'not probed'}"
        )
    known = {e.port for e in exps}
    res.findings += exposure.assess_unconfigured_ports(set(sec.extra_ports), sockets, known)
    return res, exps


def audit_versions(cfg: Config, exps: list[EndpointExposure], today=None) -> SectionResult:
    sec = cfg.security
    res = SectionResult(name="versions", status="ok")
    try:
        table = cves.load_cve_table(sec.cve_table_path)
    except cves.CveTableError as exc:
        res.status = "error"
        res.notes.append(str(exc))
        return res
    age = table.age_days(today)
    res.notes.append(
        f"CVE table {table.source}: {len(table.entries)} entries as of {table.as_of} ({age} days old)"
    )
    if age > sec.cve_table_max_age_days:
        res.notes.append(
            f"the CVE table is older than {sec.cve_table_max_age_days} days: update it (security.cve_table_path) "
            "and check the vendors' advisories"
        )
    by_name = {e.endpoint: e for e in exps}
    for ep in cfg.endpoints:
        exp = by_name.get(ep.name)
        product = sec.endpoint_products.get(ep.name) or (exp.product if exp else None)
        version = sec.endpoint_versions.get(ep.name) or (exp.version if exp else None)
        source = "config" if ep.name in sec.endpoint_versions else (exp.version_source if exp else None)
        if not product or not version:
            res.notes.append(f"{ep.name}: server software or version unknown; set security.endpoint_products / "
                             "endpoint_versions")  # fmt: skip
            continue
        if cves.parse_version(product, version) is None:
            res.notes.append(f"{ep.name}: version {version!r} is not a comparable {product} version")
            continue
        res.notes.append(f"{ep.name}: {product} {version}")
        res.findings += cves.assess_version(ep.name, product, version, source or "config", table)
    return res


def audit_firewall(
    cfg: Config, exps: list[EndpointExposure], listings: firewall.Listings | None = None
) -> SectionResult:
    res = SectionResult(name="firewall", status="ok")
    ports = llm_ports(cfg)
    if not ports:
        res.status = "skipped"
        res.notes.append("no local LLM ports to check")
        return res
    listings = listings if listings is not None else firewall.read_listings(cfg.security)
    res.notes += listings.notes
    rulesets, ufw, notes = firewall.build_rulesets(listings)
    res.notes += notes
    if not rulesets and ufw is None:
        res.status = "skipped"
        res.notes.append(
            "no firewall listing readable (run as root, or save the listings to the *_path keys)"
        )
        return res
    exposed: dict[int, bool | None] = {}
    families: dict[int, set[str]] = {}
    for e in exps:
        if not e.local:
            continue
        prev = exposed.get(e.port, False)
        exposed[e.port] = True if (prev or e.exposed) else (None if e.exposed is None else prev)
        fams = {("ip6" if ":" in s.ip else "ip") for s in e.sockets}
        if any(s.ip in ("::", "::0") for s in e.sockets):
            fams.add("ip")  # dual-stack wildcard
        if fams:
            families[e.port] = fams
    docker_iface = any(name.startswith("docker") for name in psutil.net_if_addrs())
    found, notes = firewall.assess_firewall(
        rulesets, ufw, ports, exposed, families=families, docker_iface=docker_iface
    )
    res.findings += found
    res.notes += notes
    return res


def audit_files(cfg: Config) -> SectionResult:
    sec = cfg.security
    res = SectionResult(name="files", status="ok")
    config_files = list(sec.config_files) + ([cfg.source] if cfg.source else [])
    if not (config_files or sec.model_dirs or sec.prompt_templates):
        res.status = "skipped"
        res.notes.append("no model_dirs, config_files or prompt_templates configured")
        return res
    f, n = files.check_config_files(config_files)
    res.findings += f
    res.notes += n
    f, n = files.check_tree(sec.model_dirs, kind="model", limit=sec.max_files_per_dir)
    res.findings += f
    res.notes += n
    f, n = files.check_tree(sec.prompt_templates, kind="prompt", limit=sec.max_files_per_dir)
    res.findings += f
    res.notes += n
    return res


def audit_access(cfg: Config, now: datetime | None = None) -> SectionResult:
    res = SectionResult(name="access", status="ok")
    if not cfg.security.access_logs:
        res.status = "skipped"
        res.notes.append("no security.access_logs configured")
        return res
    res.findings, res.notes = accesslog.audit_access_logs(cfg.security, now)
    return res


def finish_audit(sections: list[SectionResult], started: datetime, t0: float) -> AuditResult:
    findings = sort_findings([f for s in sections for f in s.findings])
    bad = any(f.at_least("medium") for f in findings) or any(s.status == "error" for s in sections)
    return AuditResult(
        status="degraded" if bad else "ok", findings=findings, sections=sections, started_at=started,
        duration_s=round(time.monotonic() - t0, 3),
    )  # fmt: skip


def section_failed(name: str, exc: BaseException) -> SectionResult:
    """A section that raised still reports, so one broken part never hides the rest."""
    return SectionResult(name=name, status="error", notes=[f"{type(exc).__name__}: {redact(exc)}"])


async def run_audit(cfg: Config, *, now: datetime | None = None,
                    listings: firewall.Listings | None = None) -> AuditResult:  # fmt: skip
    """The whole audit without Prefect (tests, library use)."""
    t0 = time.monotonic()
    started = datetime.now(UTC)
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as http:
        exp_res, exps = await audit_exposure(cfg, http)
    sections = [
        exp_res,
        audit_versions(cfg, exps, today=(now or started).date()),
        audit_firewall(cfg, exps, listings),
        audit_files(cfg),
        audit_access(cfg, now),
    ]
    return finish_audit(sections, started, t0)


def worst(findings: list[Finding]) -> str | None:
    return max((f.severity for f in findings), key=SEVERITY_RANK.__getitem__, default=None)
