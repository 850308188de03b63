"""Findings: LLM ports open to any source, and Docker publishing them past ufw/INPUT.
"""

from __future__ import annotations

from llm_upkeep.security.findings import Finding
from llm_upkeep.security.firewall.docker import find_docker_publishes
from llm_upkeep.security.firewall.evaluate import evaluate_port
from llm_upkeep.security.firewall.model import Ruleset
from llm_upkeep.security.firewall.ufw import UfwStatus, evaluate_ufw


def assess_firewall(
    rulesets: list[Ruleset], ufw: UfwStatus | None, ports: set[int], exposed: dict[int, bool | None],
    *, families: dict[int, set[str]] | None = None, docker_iface: bool = False,
) -> tuple[list[Finding], list[str]]:  # fmt: skip
    """Findings for LLM ports open to any source, and for Docker publishing them past ufw/INPUT."""
    findings: list[Finding] = []
    notes: list[str] = []
    ufw_active = bool(ufw and ufw.active)
    for port in sorted(ports):
        if rulesets:
            v = evaluate_port(rulesets, port, (families or {}).get(port))
            if ufw is not None:
                uv = evaluate_ufw(ufw, port)
                v.evidence += [e for e in uv.evidence if uv.state != "unknown"]
        elif ufw is not None:
            v = evaluate_ufw(ufw, port)
        else:
            notes.append(f"port {port}: no firewall listing readable; not judged")
            continue
        notes.append(f"port {port}: {v.state}")
        exp = exposed.get(port)
        if v.state == "open":
            sev = "high" if exp else "medium" if exp is None else "low"
            bind = ("the server listens beyond loopback" if exp else "bind address unknown" if exp is None
                    else "the server itself listens on loopback only")  # fmt: skip
            findings.append(Finding(
                id=f"firewall.open:{port}", category="firewall", severity=sev,
                title=f"tcp/{port} is accepted from any source by the host firewall ({bind})",
                target=f"port {port}", evidence=v.evidence,
                fix=(f"Allow tcp/{port} only from the client networks, e.g. nft: 'tcp dport {port} ip saddr "
                     f"10.0.0.0/8 accept' before a final drop; ufw: 'ufw delete allow {port}/tcp' then "
                     f"'ufw allow from 10.0.0.0/8 to any port {port} proto tcp'."),
            ))  # fmt: skip
        elif v.state == "uncertain":
            findings.append(Finding(
                id=f"firewall.uncertain:{port}", category="firewall", severity="low",
                title=f"tcp/{port}: the firewall has rules the audit cannot judge",
                target=f"port {port}", evidence=v.evidence,
                fix="Provide iptables-save output too (security.iptables_save_path) or check these rules by hand.",
            ))  # fmt: skip
    present, pubs = find_docker_publishes(rulesets, ports)
    for pub in pubs:
        sev = "medium" if pub.restricted_by_docker_user else "high"
        ev = [pub.rule]
        if ufw_active:
            ev.append(
                "ufw is active, but it filters INPUT; Docker's DNAT sends these packets through FORWARD"
            )
        findings.append(Finding(
            id=f"firewall.docker-publish:{pub.port}", category="firewall", severity=sev,
            title=f"Docker publishes tcp/{pub.port} to every address; INPUT and ufw rules do not apply to it",
            target=f"port {pub.port}", evidence=ev,
            fix=(f"Publish on loopback only (docker run -p 127.0.0.1:{pub.port}:{pub.port}) or filter it in "
                 "the DOCKER-USER chain (e.g. iptables -I DOCKER-USER ! -s 10.0.0.0/8 -p tcp -m conntrack "
                 f"--ctorigdstport {pub.port} -j DROP)."),
        ))  # fmt: skip
    if (present or docker_iface) and not pubs:
        if ufw_active:
            findings.append(Finding(
                id="firewall.docker-ufw", category="firewall", severity="low",
                title="Docker and ufw are both active: ports Docker publishes bypass ufw",
                target="docker", evidence=["DOCKER chains present" if present else "docker0 interface present",
                                           "ufw Status: active"],
                fix="Publish containers on 127.0.0.1 or filter them in DOCKER-USER; ufw rules do not cover them.",
            ))  # fmt: skip
        else:
            notes.append(
                "Docker present: ports it publishes bypass INPUT rules (none of the LLM ports is published)"
            )
    return findings, notes
