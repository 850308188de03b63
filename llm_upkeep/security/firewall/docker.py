"""Docker publishes ports by DNAT in PREROUTING and forwards them, so INPUT (and ufw, which lives
there) never sees those packets: find the DNATs to an LLM port in the parsed rulesets.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_upkeep.security.firewall.model import Ruleset, _all_loopback, _is_any_net, _port_in


@dataclass
class DockerPublish:
    port: int
    rule: str
    restricted_by_docker_user: bool


def find_docker_publishes(rulesets: list[Ruleset], ports: set[int]) -> tuple[bool, list[DockerPublish]]:
    """(docker chains present, DNATs of LLM ports that skip INPUT/ufw)."""
    present = False
    out: list[DockerPublish] = []
    for rs in rulesets:
        names = {name for (_f, _t, name) in rs.chains}
        if any(n.startswith("DOCKER") for n in names):
            present = True
        user_rules = [
            r for (f, t, n), c in rs.chains.items() if n == "DOCKER-USER" for r in c.rules
            if r.verdict not in ("return", None)
        ]  # fmt: skip
        for (_f, table, _name), ch in rs.chains.items():
            if table != "nat":
                continue
            for rule in ch.rules:
                if rule.verdict != "dnat":
                    continue
                dports = [m for m in rule.matches if m.kind == "dport" and not m.negate]
                daddrs = [m for m in rule.matches if m.kind == "daddr" and not m.negate]
                if daddrs and all(_all_loopback(m.values) for m in daddrs):
                    continue  # published on 127.0.0.1 only
                if any(m.kind == "saddr" and not m.negate and not any(_is_any_net(n) for n in m.values)
                       for m in rule.matches):  # fmt: skip
                    continue
                for p in sorted(ports):
                    if any(_port_in(p, m.values) for m in dports):
                        out.append(
                            DockerPublish(
                                p, f"{rs.source}: {ch.table} {ch.name}: {rule.text}", bool(user_rules)
                            )
                        )
    return present, out
