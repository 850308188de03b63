"""Parse `ufw status verbose` and judge a port from its rules and default incoming policy.

Why its own file: ufw is read from its own status text, not from a ruleset.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from llm_upkeep.security.firewall.evaluate import PortVerdict
from llm_upkeep.security.firewall.model import FirewallParseError, _port_in, _ports_of


@dataclass
class UfwRule:
    to: str
    action: str
    direction: str
    source: str
    v6: bool


@dataclass
class UfwStatus:
    active: bool
    default_incoming: str | None = None
    rules: list[UfwRule] = field(default_factory=list)


def parse_ufw_status(text: str) -> UfwStatus:
    """`ufw status [verbose]` -> UfwStatus."""
    lines = text.splitlines()
    status_line = next((ln for ln in lines if ln.startswith("Status:")), None)
    if status_line is None:
        raise FirewallParseError("ufw status output has no 'Status:' line")
    st = UfwStatus(active=status_line.split(":", 1)[1].strip().lower() == "active")
    for ln in lines:
        m = re.match(r"Default:\s*(\w+)\s*\(incoming\)", ln)
        if m:
            st.default_incoming = m.group(1).lower()
    try:
        start = next(i for i, ln in enumerate(lines) if re.match(r"^--\s+-+\s+--", ln.strip()))
    except StopIteration:
        return st
    for ln in lines[start + 1 :]:
        s = re.sub(r"\s+#.*$", "", ln).strip()
        if not s:
            continue
        cols = re.split(r"\s{2,}", s)
        if len(cols) < 3:
            raise FirewallParseError(f"ufw rule line not understood: {s[:80]}")
        to, action, src = cols[0], cols[1], cols[2]
        parts = action.split()
        direction = parts[1] if len(parts) > 1 else "IN"
        v6 = "(v6)" in to or "(v6)" in src
        st.rules.append(UfwRule(to.replace("(v6)", "").strip(), parts[0].upper(), direction.upper(),
                                src.replace("(v6)", "").strip(), v6))  # fmt: skip
    return st


def _ufw_to_ports(to: str) -> list[tuple[int, int]] | None:
    """Port ranges a ufw 'To' column covers; [] for all ports; None for app profiles we cannot resolve."""
    toks = re.sub(r"\s+on\s+\S+$", "", to).split()
    spec = toks[-1] if toks else ""
    m = re.fullmatch(r"([\d,:]+)(?:/(tcp|udp))?", spec)
    if m:
        return [(-1, -1)] if m.group(2) == "udp" else _ports_of(m.group(1))
    if spec == "Anywhere":
        return []
    try:
        ipaddress.ip_network(spec, strict=False)
        return []  # a destination address, all ports
    except ValueError:
        return None


def evaluate_ufw(st: UfwStatus, port: int) -> PortVerdict:
    if not st.active:
        return PortVerdict(port, "unknown", ["ufw: Status: inactive (not filtering)"])
    ev: list[str] = []
    state = None
    sources: list[str] = []
    for v6 in (False, True):
        fam = "IPv6" if v6 else "IPv4"
        decided = False
        for r in st.rules:
            if r.v6 != v6 or r.direction != "IN":
                continue
            ports = _ufw_to_ports(r.to)
            line = f"ufw {fam}: {r.to} {r.action} {r.direction} {r.source}"
            if ports is None:
                ev.append(f"{line}: application profile not resolved")
                continue
            if ports and not _port_in(port, ports):
                continue
            any_src = r.source.split()[0] == "Anywhere"
            if r.action in ("ALLOW", "LIMIT"):
                if any_src:
                    ev.append(f"{line} -> accepts tcp/{port} from any source")
                    state = "open"
                    decided = True
                    break
                sources.append(line)
            elif r.action in ("DENY", "REJECT") and any_src:
                ev.append(f"{line} -> blocks tcp/{port}")
                decided = True
                break
        if not decided:
            pol = st.default_incoming or "deny"
            ev.append(f"ufw {fam}: default {pol} (incoming)" + ("" if st.default_incoming else " (assumed)"))
            if pol == "allow":
                state = "open"
    if state is None:
        state = "restricted" if sources else "closed"
    return PortVerdict(port, state, ev, sources)
