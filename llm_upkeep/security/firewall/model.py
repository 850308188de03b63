"""The firewall model every tool's listing is parsed into (rulesets, chains, rules, matches), and
the port and address sets a match may carry.

Why its own file: nftables and iptables-save parse into it and the evaluation walks it; a new
listing format adds a parser, not a model.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

BUILTIN_CHAINS = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}
IPTABLES_HOOKS = {
    "INPUT": "input", "FORWARD": "forward", "OUTPUT": "output",
    "PREROUTING": "prerouting", "POSTROUTING": "postrouting",
}  # fmt: skip
XT_TABLES = {"filter", "nat", "mangle", "raw", "security"}
# xt matches that cannot decide acceptance of a new connection from an arbitrary source.
XT_NEUTRAL = {"comment", "addrtype", "limit", "recent", "hashlimit", "pkttype", "icmp", "icmp6", "rt", "hl"}
XT_NEVER_NEW = {"conntrack", "state"}
LOCAL_IFACES = (
    "docker",
    "br-",
    "veth",
    "virbr",
    "cni",
    "podman",
    "lxc",
)  # in practice RELATED,ESTABLISHED accept / INVALID drop rules


class FirewallParseError(Exception):
    """A listing that is not what its tool prints; the message says which and why."""


@dataclass
class Match:
    kind: str  # dport | proto | saddr | daddr | iif | ctstate | family | neutral | never | unknown
    values: list = field(default_factory=list)
    negate: bool = False
    family: str | None = None  # 'ip' / 'ip6' for address and protocol matches bound to one family
    text: str = ""


@dataclass
class Rule:
    matches: list[Match]
    verdict: str | None  # accept | drop | reject | jump | goto | return | dnat | None (no verdict)
    target: str | None = None
    text: str = ""
    vmap: list[tuple[list, str, str | None]] | None = None  # dport verdict map: (ports, verdict, target)


@dataclass
class Chain:
    family: str  # ip | ip6 | inet
    table: str
    name: str
    hook: str | None = None
    type: str | None = None
    policy: str | None = None
    priority: int = 0
    rules: list[Rule] = field(default_factory=list)


@dataclass
class Ruleset:
    source: str  # 'nft' or 'iptables'
    chains: dict[tuple[str, str, str], Chain] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def chain(self, family: str, table: str, name: str) -> Chain | None:
        return self.chains.get((family, table, name))

    def base_chains(self, hook: str, ctype: str = "filter") -> list[Chain]:
        cs = [c for c in self.chains.values() if c.hook == hook and (c.type or "filter") == ctype]
        return sorted(cs, key=lambda c: c.priority)


def _ports_of(v) -> list[tuple[int, int]] | None:
    """nft right-hand side or iptables port spec -> list of (lo, hi); None when not a port value."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return [(v, v)]
    if isinstance(v, str):
        out = []
        for part in v.split(","):
            part = part.strip()
            m = re.fullmatch(r"(\d+)(?:[:-](\d+))?", part)
            if not m:
                return None
            lo = int(m.group(1))
            out.append((lo, int(m.group(2) or lo)))
        return out
    if isinstance(v, dict):
        if "range" in v:
            a, b = v["range"]
            return [(int(a), int(b))] if isinstance(a, int) and isinstance(b, int) else None
        if "set" in v:
            out = []
            for el in v["set"]:
                p = _ports_of(el)
                if p is None:
                    return None
                out += p
            return out
    if isinstance(v, list):
        return _ports_of({"set": v})
    return None


def _port_in(port: int, ranges: list[tuple[int, int]]) -> bool:
    return any(lo <= port <= hi for lo, hi in ranges)


def _nets_of(v, sets: dict[str, list]) -> list[str] | None:
    """Address values as CIDR strings; None when unknown (e.g. an unresolvable named set)."""
    if isinstance(v, str):
        if v.startswith("@"):
            elems = sets.get(v[1:])
            return None if elems is None else _nets_of({"set": elems}, sets)
        return [v]
    if isinstance(v, dict):
        if "prefix" in v:
            return [f"{v['prefix']['addr']}/{v['prefix']['len']}"]
        if "range" in v:
            return [f"{v['range'][0]}-{v['range'][1]}"]
        if "set" in v:
            out = []
            for el in v["set"]:
                n = _nets_of(el, sets)
                if n is None:
                    return None
                out += n
            return out
        if "elem" in v:
            return _nets_of(v["elem"].get("val"), sets)
    if isinstance(v, list):
        return _nets_of({"set": v}, sets)
    return None


def _is_any_net(net: str) -> bool:
    try:
        return ipaddress.ip_network(net, strict=False).prefixlen == 0
    except ValueError:
        return False


def _all_loopback(nets: list[str]) -> bool:
    try:
        return all(ipaddress.ip_network(n, strict=False).is_loopback for n in nets)
    except ValueError:
        return False
