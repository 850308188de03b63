"""Is port P open? Walk the base chains at the input hook for a NEW TCP connection from an
arbitrary address on a non-loopback interface, rule by rule, following jump/goto/return.

Each rule is judged yes / no / some / unknown against that packet (see the package docstring).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_upkeep.security.firewall.model import (
    LOCAL_IFACES,
    Chain,
    Match,
    Rule,
    Ruleset,
    _all_loopback,
    _is_any_net,
    _port_in,
)


@dataclass
class Walk:
    """What happened to the packet in one family: the final decision and the evidence path."""

    decision: str  # accept | drop
    evidence: list[str] = field(default_factory=list)
    restricted: list[str] = field(default_factory=list)  # accepts that only some sources reach
    uncertain: list[str] = field(default_factory=list)


def _judge(m: Match, port: int, fam: str) -> str:
    """yes / no / some / unknown for one match against the probe packet."""
    if m.family and m.family != fam and m.kind in ("saddr", "daddr", "proto"):
        return "no"  # an 'ip saddr' match never matches an IPv6 packet (and vice versa)
    k = m.kind
    if k == "neutral":
        return "yes"
    if k == "never":
        return "no"
    if k in ("some",):
        return "some"
    if k == "unknown":
        return "unknown"
    if k == "family":
        hit = fam in m.values
        return "yes" if hit != m.negate else "no"
    if k == "dport":
        hit = _port_in(port, m.values)
        return "yes" if hit != m.negate else "no"
    if k == "proto":
        hit = any(v in ("tcp", "6", "all") for v in m.values)
        return "yes" if hit != m.negate else "no"
    if k == "iif":
        names = [v.rstrip("+") for v in m.values]
        if m.negate:
            return "yes"  # the outside interface is not in a '! iif' list in any sane ruleset
        if all(n == "lo" for n in names):
            return "no"
        if all(n == "lo" or n.startswith(LOCAL_IFACES) for n in names):
            return "some"  # container/VM bridges: local clients only
        return "yes"
    if k == "ctstate":
        hit = "new" in m.values
        return "yes" if hit != m.negate else "no"
    if k == "saddr":
        if m.negate:
            return "no" if any(_is_any_net(n) for n in m.values) else "some"
        return "yes" if any(_is_any_net(n) for n in m.values) else "some"
    if k == "daddr":
        if not m.negate and _all_loopback(m.values):
            return "no"  # nothing from outside is addressed to 127.0.0.0/8
        return "yes"
    return "unknown"


def _rule_status(rule: Rule, port: int, fam: str) -> str:
    states = [_judge(m, port, fam) for m in rule.matches]
    if "no" in states:
        return "no"
    if "unknown" in states:
        return "unknown"
    if "some" in states:
        return "some"
    return "yes"


def _walk_chain(rs: Ruleset, ch: Chain, port: int, fam: str, w: Walk, restricted: str | None,
                depth: int = 0) -> str | None:  # fmt: skip
    """accept / drop when the chain decides; None when it returns or falls off a non-base chain."""
    if depth > 32:
        w.uncertain.append(f"{ch.name}: jump depth exceeded")
        return None
    label = f"{rs.source}: {ch.family} {ch.table} {ch.name}"
    for rule in ch.rules:
        status = _rule_status(rule, port, fam)
        verdict, target = rule.verdict, rule.target
        if rule.vmap is not None and status in ("yes", "some"):
            hit = next(((v, t) for ports, v, t in rule.vmap if _port_in(port, ports)), None)
            if hit is None:
                continue
            verdict, target = hit
        if status == "no" or verdict is None or verdict == "dnat":
            continue
        where = f"{label}: {rule.text}"
        if status == "unknown":
            if verdict == "accept" or verdict in ("jump", "goto"):
                w.uncertain.append(where)
            continue
        ctx = restricted if status == "yes" else (restricted or where)
        if verdict == "accept":
            if ctx is None:
                w.evidence.append(f"{where}  -> accepts tcp/{port} from any source")
                return "accept"
            w.restricted.append(ctx if ctx == where else f"{ctx} -> {where}")
            continue
        if verdict in ("drop", "reject"):
            if ctx is None:
                w.evidence.append(f"{where}  -> {verdict}s tcp/{port}")
                return "drop"
            continue
        if verdict == "return":
            if ctx is None:
                return None
            continue
        if verdict in ("jump", "goto"):
            sub = rs.chain(ch.family, ch.table, target) if target else None
            if sub is None:
                w.uncertain.append(f"{where}: chain {target} not in the listing")
                continue
            n = len(w.evidence)
            res = _walk_chain(rs, sub, port, fam, w, ctx, depth + 1)
            if res is not None:
                w.evidence.insert(n, where)
                return res
            if verdict == "goto" and ctx is None:
                return None
    return None


def _walk_family(rulesets: list[Ruleset], port: int, fam: str) -> Walk | None:
    """Every filter base chain at the input hook that sees this family; None when there is none."""
    w = Walk("accept")
    chains = [
        (rs, c) for rs in rulesets for c in rs.base_chains("input")
        if c.family in ("inet", fam)
    ]  # fmt: skip
    if not chains:
        return None
    for rs, c in sorted(chains, key=lambda rc: rc[1].priority):
        res = _walk_chain(rs, c, port, fam, w, None)
        if res is None:
            res = c.policy or "accept"
            w.evidence.append(f"{rs.source}: {c.family} {c.table} {c.name}: policy {res}")
        if res in ("drop", "reject"):
            w.decision = "drop"
            return w
    return w


@dataclass
class PortVerdict:
    port: int
    state: str  # open | restricted | closed | uncertain | unknown
    evidence: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def evaluate_port(rulesets: list[Ruleset], port: int, families: set[str] | None = None) -> PortVerdict:
    """Is a new TCP connection to `port` from an arbitrary address accepted (IPv4 or IPv6)?

    `families`: the address families the server listens on ('ip', 'ip6'); IPv6 is judged only from an
    nft listing, since iptables-save says nothing about ip6tables.
    """
    if not rulesets:
        return PortVerdict(port, "unknown", ["no firewall listing available"])
    fams = set(families or {"ip", "ip6"})
    if not any(rs.source == "nft" for rs in rulesets):
        fams.discard("ip6")
    walks = {fam: _walk_family(rulesets, port, fam) for fam in ("ip", "ip6") if fam in fams}
    if not walks:
        return PortVerdict(port, "unknown", ["IPv6-only server and no nft listing"])
    if all(w is None for w in walks.values()):
        return PortVerdict(
            port, "open", [f"{rs.source}: no filter chain at the input hook" for rs in rulesets]
        )
    ev: list[str] = []
    state = "closed"
    sources: list[str] = []
    for fam, w in walks.items():
        name = "IPv4" if fam == "ip" else "IPv6"
        if w is None:
            ev.append(f"{name}: no filter chain at the input hook: accepted")
            state = "open"
            continue
        if w.decision == "accept":
            ev += [f"{name}: {e}" for e in w.evidence]
            state = "open"
        else:
            if w.uncertain and state != "open":
                state = "uncertain"
                ev += [f"{name}: cannot judge: {u}" for u in w.uncertain]
            if w.restricted:
                sources += w.restricted
    if state == "closed" and sources:
        state = "restricted"
    if state in ("closed", "restricted", "uncertain"):
        for fam, w in walks.items():
            if w is not None and w.decision == "drop":
                ev += [f"{'IPv4' if fam == 'ip' else 'IPv6'}: {e}" for e in w.evidence[-1:]]
    return PortVerdict(port, state, ev, sorted(set(sources)))
