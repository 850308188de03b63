"""Firewall: is an LLM port open to any source? From `nft -j list ruleset`, `iptables-save`, `ufw status`.

The question asked of a ruleset is narrow: "a NEW TCP connection to port P arrives on a non-loopback
interface from an arbitrary address: is it accepted?" Each rule is judged against that packet:

* yes     - it matches every such packet (e.g. ``tcp dport 11434``),
* no      - it matches none (``iif lo``, ``ct state established,related``, another port, other family),
* some    - it matches only some sources (``ip saddr 10.0.0.0/8``, an ipset): an accept there opens the
            port to those sources only; a drop there leaves everyone else to the next rule,
* unknown - an expression we cannot judge (opaque ``xt`` matches of iptables-nft without iptables-save).

Base chains at the input hook are walked in order, following jump/goto/return; a verdict of one base
chain is final only when it drops (accepted packets go on to the next base chain at that hook), which
is also how iptables-nft tables and native nftables tables combine. IPv4 and IPv6 are judged
separately; the port is "open" when either family lets the packet in.

Docker publishes ports by DNAT in PREROUTING and forwards them, so INPUT (and ufw, which lives there)
never sees those packets: a DNAT to an LLM port is reported on its own.

Nothing here changes the firewall: the listings are read-only commands (or saved files).
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from llm_upkeep.redact import redact
from llm_upkeep.security.findings import Finding

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


# ---------------------------------------------------------------- model


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


# ---------------------------------------------------------------- port sets


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


# ---------------------------------------------------------------- nftables JSON


def _render(v) -> str:
    if isinstance(v, dict):
        if "prefix" in v:
            return f"{v['prefix']['addr']}/{v['prefix']['len']}"
        if "range" in v:
            return f"{v['range'][0]}-{v['range'][1]}"
        if "set" in v:
            return "{ " + ", ".join(_render(x) for x in v["set"]) + " }"
        if "payload" in v:
            return f"{v['payload'].get('protocol', '')} {v['payload'].get('field', '')}".strip()
        if "meta" in v:
            return f"meta {v['meta'].get('key')}"
        if "ct" in v:
            return f"ct {v['ct'].get('key')}"
        k = next(iter(v), "?")
        return k
    if isinstance(v, list):
        return "{ " + ", ".join(_render(x) for x in v) + " }"
    return json.dumps(v) if isinstance(v, str) and " " in v else str(v)


def _set_values(right) -> list:
    """An nft match's right side as a list: a literal, a list, or an anonymous {"set": [...]}."""
    if isinstance(right, list):
        return right
    if isinstance(right, dict):
        return right.get("set", [])
    return [right]


def _nft_match(m: dict, sets: dict[str, list]) -> Match:
    left, right, op = m.get("left"), m.get("right"), m.get("op", "==")
    neg = op == "!="
    text = f"{_render(left)} {'' if op in ('==', 'in') else op + ' '}{_render(right)}".replace("  ", " ")
    if not isinstance(left, dict):
        return Match("unknown", text=text)
    if "payload" in left:
        proto, fld = left["payload"].get("protocol"), left["payload"].get("field")
        if proto in ("tcp", "udp", "th", "sctp") and fld == "dport":
            ports = _ports_of(right)
            fam = None
            if ports is None:
                return Match("unknown", text=text)
            m_ = Match("dport", ports, neg, fam, text)
            if proto in ("udp", "sctp"):
                return Match("proto", [proto], False, None, text)  # a udp/sctp port never matches tcp
            return m_
        if proto in ("tcp", "th") and fld != "sport":
            return Match("neutral", text=text)  # tcp flags etc.
        if proto in ("tcp", "udp", "th") and fld == "sport":
            return Match("some", text=text)
        if proto in ("ip", "ip6") and fld in ("saddr", "daddr"):
            nets = _nets_of(right, sets)
            if nets is None:
                return Match("some" if fld == "saddr" else "unknown", text=text, family=proto)
            return Match(fld, nets, neg, proto, text)
        if (proto, fld) in (("ip", "protocol"), ("ip6", "nexthdr")):
            vals = _set_values(right)
            return Match("proto", [str(x) for x in vals], neg, proto, text)
        return Match("unknown", text=text)
    if "meta" in left:
        key = left["meta"].get("key")
        if key in ("iif", "iifname"):
            vals = _set_values(right)
            return Match("iif", [str(x) for x in vals], neg, None, text)
        if key == "l4proto":
            vals = _set_values(right)
            return Match("proto", [str(x) for x in vals], neg, None, text)
        if key == "nfproto":
            vals = right if isinstance(right, list) else [right]
            fams = ["ip" if str(x) == "ipv4" else "ip6" for x in vals]
            return Match("family", fams, neg, None, text)
        if key in ("oif", "oifname", "pkttype", "mark", "skuid", "skgid", "cpu"):
            return Match("neutral", text=text)
        return Match("unknown", text=text)
    if "ct" in left:
        key = left["ct"].get("key")
        if key == "state":
            vals = _set_values(right)
            return Match("ctstate", [str(x).lower() for x in vals], neg, None, text)
        if key == "status":
            return Match("never" if not neg else "neutral", text=text)  # e.g. 'ct status dnat'
        return Match("unknown", text=text)
    if "fib" in left:
        return Match("neutral", text=text)
    return Match("unknown", text=text)


def _nft_rule(r: dict, sets: dict[str, list]) -> Rule:
    matches: list[Match] = []
    verdict = target = None
    vmap = None
    texts: list[str] = []
    for e in r.get("expr", []):
        if not isinstance(e, dict) or not e:
            continue
        k = next(iter(e))
        v = e[k]
        if k == "match":
            mm = _nft_match(v, sets)
            matches.append(mm)
            texts.append(mm.text)
        elif k in ("accept", "drop", "return", "continue"):
            verdict = None if k == "continue" else k
            texts.append(k)
        elif k == "reject":
            verdict = "reject"
            texts.append("reject")
        elif k in ("jump", "goto"):
            verdict, target = k, v.get("target")
            texts.append(f"{k} {target}")
        elif k == "dnat":
            verdict = "dnat"
            texts.append(f"dnat to {_render(v.get('addr', ''))}" + (f":{v['port']}" if v.get("port") else ""))
        elif k == "vmap":
            key = v.get("key", {})
            payload = key.get("payload", {}) if isinstance(key, dict) else {}
            if payload.get("field") == "dport" and payload.get("protocol") in ("tcp", "th"):
                data = v.get("data", {})
                pairs = data.get("set", []) if isinstance(data, dict) else []
                vmap = []
                for pair in pairs:
                    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], dict)):
                        continue
                    ports = _ports_of(pair[0])
                    vk = next(iter(pair[1]))
                    vt = pair[1][vk].get("target") if isinstance(pair[1][vk], dict) else None
                    if ports is not None:
                        vmap.append((ports, vk, vt))
                texts.append(f"tcp dport vmap {_render(data)}")
            else:
                matches.append(Match("unknown", text="vmap"))
                texts.append("vmap")
        elif k == "xt":
            name, xtype = v.get("name", "?"), v.get("type")
            if xtype == "target":
                verdict = {"REJECT": "reject", "DNAT": "dnat"}.get(name, verdict)
                texts.append(f"xt target {name}")
            else:
                kind = "never" if name in XT_NEVER_NEW else "neutral" if name in XT_NEUTRAL else "unknown"
                matches.append(Match(kind, text=f"xt match {name}"))
                texts.append(f"xt match {name}")
        elif k in ("counter", "log", "limit", "comment", "notrack", "mangle", "meter", "set", "quota"):
            if k == "log":
                texts.append("log")
            continue
        else:
            matches.append(Match("unknown", text=k))
            texts.append(k)
    handle = r.get("handle")
    text = " ".join(texts) + (f"  # handle {handle}" if handle is not None else "")
    return Rule(matches, verdict, target, text, vmap)


def parse_nft_json(text: str) -> Ruleset:
    """`nft -j list ruleset` output -> Ruleset."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FirewallParseError(f"nft -j output is not JSON: {exc}") from None
    items = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise FirewallParseError("nft -j output has no 'nftables' list")
    rs = Ruleset("nft")
    sets: dict[tuple[str, str], dict[str, list]] = {}
    for it in items:
        if isinstance(it, dict) and "set" in it:
            s = it["set"]
            sets.setdefault((s.get("family"), s.get("table")), {})[s.get("name")] = s.get("elem", [])
    for it in items:
        if not isinstance(it, dict):
            continue
        if "chain" in it:
            c = it["chain"]
            rs.chains[(c["family"], c["table"], c["name"])] = Chain(
                family=c["family"], table=c["table"], name=c["name"], hook=c.get("hook"),
                type=c.get("type"), policy=c.get("policy"), priority=int(c.get("prio", 0) or 0),
            )  # fmt: skip
    for it in items:
        if isinstance(it, dict) and "rule" in it:
            r = it["rule"]
            ch = rs.chains.get((r["family"], r["table"], r["chain"]))
            if ch is not None:
                ch.rules.append(_nft_rule(r, sets.get((r["family"], r["table"]), {})))
    return rs


def iptables_managed_tables(rs: Ruleset) -> set[tuple[str, str]]:
    """(family, table) pairs that iptables-nft created: xtables names with upper-case built-in chains."""
    out = set()
    for (fam, table, name), _c in rs.chains.items():
        if fam in ("ip", "ip6") and table in XT_TABLES and name in BUILTIN_CHAINS:
            out.add((fam, table))
    return out


# ---------------------------------------------------------------- iptables-save


_ARITY0 = {"--syn", "--rsource", "--rdest", "--set", "--update", "--rcheck", "--remove", "--log-uid",
           "--log-tcp-sequence", "--log-tcp-options", "--log-ip-options", "--random", "--persistent",
           "--random-fully", "--reap"}  # fmt: skip


def _ipt_rule(args: list[str]) -> Rule:
    matches: list[Match] = []
    verdict = target = None
    extra: list[str] = []
    neg = False
    i = 0
    proto: str | None = None

    def val() -> str:
        nonlocal i
        i += 1
        if i >= len(args):
            raise FirewallParseError(f"option {args[i - 1]} without a value in: {' '.join(args)}")
        return args[i]

    while i < len(args):
        a = args[i]
        if a == "!":
            neg = True
            i += 1
            continue
        if a in ("-p", "--protocol"):
            proto = val()
            matches.append(Match("proto", [proto.lower()], neg, None, f"{'! ' if neg else ''}-p {proto}"))
        elif a in ("-s", "--source"):
            nets = val().split(",")
            matches.append(Match("saddr", nets, neg, "ip", f"{'! ' if neg else ''}-s {','.join(nets)}"))
        elif a in ("-d", "--destination"):
            nets = val().split(",")
            matches.append(Match("daddr", nets, neg, "ip", f"{'! ' if neg else ''}-d {','.join(nets)}"))
        elif a in ("-i", "--in-interface"):
            v = val()
            matches.append(Match("iif", [v], neg, None, f"{'! ' if neg else ''}-i {v}"))
        elif a in ("-o", "--out-interface"):
            val()
        elif a in ("-m", "--match"):
            val()
        elif a in ("--dport", "--destination-port", "--dports", "--destination-ports", "--ports"):
            v = val()
            ports = _ports_of(v)
            if ports is None or (proto or "").lower() not in ("tcp", ""):
                kind = "proto" if proto and proto.lower() != "tcp" else "unknown"
                matches.append(Match(kind, [proto or "?"], False, None, f"{a} {v}"))
            else:
                matches.append(Match("dport", ports, neg, None, f"{'! ' if neg else ''}{a} {v}"))
        elif a in ("--sport", "--source-port", "--sports", "--source-ports"):
            matches.append(Match("some", text=f"{a} {val()}"))
        elif a in ("--ctstate", "--state"):
            v = val()
            matches.append(Match("ctstate", [s.lower() for s in v.split(",")], neg, None,
                                 f"{'! ' if neg else ''}{a} {v}"))  # fmt: skip
        elif a == "--match-set":
            name = val()
            direction = val()
            kind = "some" if "src" in direction else "neutral"
            matches.append(Match(kind, text=f"{'! ' if neg else ''}--match-set {name} {direction}"))
        elif a in ("--src-range",):
            matches.append(Match("some", text=f"--src-range {val()}"))
        elif a in ("--dst-range",):
            matches.append(Match("neutral", text=f"--dst-range {val()}"))
        elif a in ("-j", "--jump", "-g", "--goto"):
            t = val()
            if t in ("ACCEPT", "DROP", "REJECT", "RETURN"):
                verdict = t.lower()
            elif t == "DNAT":
                verdict = "dnat"
            elif t in ("LOG", "NFLOG", "MASQUERADE", "SNAT", "MARK", "CONNMARK", "CT", "TCPMSS", "NOTRACK",
                       "AUDIT", "ULOG", "TRACE"):  # fmt: skip
                verdict = None
            else:
                verdict, target = ("goto" if a in ("-g", "--goto") else "jump"), t
        elif a == "--to-destination":
            extra.append(f"--to-destination {val()}")
        elif a in ("--tcp-flags",):
            val()
            val()
        elif a in _ARITY0:
            pass
        elif a.startswith("-"):
            # Options we don't model (--comment, --limit, --log-prefix, --icmp-type, --dst-type, ...):
            # consume a value when one follows.
            if (
                i + 1 < len(args)
                and not args[i + 1].startswith("-")
                or (i + 1 < len(args) and args[i + 1] == "-")
            ):
                i += 1
        neg = False
        i += 1
    text = " ".join(shlex.quote(x) if " " in x else x for x in args)
    return Rule(matches, verdict, target, text)


def parse_iptables_save(text: str) -> Ruleset:
    """`iptables-save` output -> Ruleset (family 'ip'); works for legacy and nft back ends."""
    rs = Ruleset("iptables")
    table: str | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        if line == "COMMIT":
            table = None
            continue
        if table is None:
            raise FirewallParseError(f"iptables-save line {n}: outside a *table section: {line[:80]}")
        if line.startswith(":"):
            parts = line[1:].split()
            name = parts[0]
            policy = parts[1] if len(parts) > 1 and parts[1] != "-" else None
            rs.chains[("ip", table, name)] = Chain(
                family="ip", table=table, name=name,
                hook=IPTABLES_HOOKS.get(name) if name in BUILTIN_CHAINS else None,
                type=("nat" if table == "nat" else "filter" if table == "filter" else table)
                if name in BUILTIN_CHAINS else None,
                policy=policy.lower() if policy else None,
            )  # fmt: skip
            continue
        if line.startswith(("-A ", "-I ")):
            try:
                args = shlex.split(line)
            except ValueError as exc:
                raise FirewallParseError(f"iptables-save line {n}: {exc}") from None
            chain_name = args[1]
            rest = args[2:]
            if args[0] == "-I" and rest and rest[0].isdigit():
                rest = rest[1:]
            ch = rs.chains.get(("ip", table, chain_name))
            if ch is None:
                ch = rs.chains[("ip", table, chain_name)] = Chain("ip", table, chain_name)
            rule = _ipt_rule(rest)
            rule.text = f"-A {chain_name} {rule.text}"
            ch.rules.append(rule)
            continue
        raise FirewallParseError(f"iptables-save line {n}: not understood: {line[:80]}")
    return rs


# ---------------------------------------------------------------- evaluation


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


# ---------------------------------------------------------------- docker


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


# ---------------------------------------------------------------- ufw


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


# ---------------------------------------------------------------- reading the listings


@dataclass
class Listings:
    nft: str | None = None
    iptables: str | None = None
    ufw: str | None = None
    notes: list[str] = field(default_factory=list)


def run_listing(cmd: list[str], timeout: float) -> tuple[str | None, str | None]:
    """(stdout, None) or (None, why): a read-only command with its own timeout."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return None, f"`{' '.join(cmd)}`: not installed"
    except subprocess.TimeoutExpired:
        return None, f"`{' '.join(cmd)}`: timed out after {timeout:g} s"
    except OSError as exc:
        return None, f"`{' '.join(cmd)}`: {exc.strerror}"
    if p.returncode != 0:
        err = (p.stderr or p.stdout).strip().splitlines()
        return None, f"`{' '.join(cmd)}` exited {p.returncode}: {redact(err[-1][:200]) if err else ''}"
    return p.stdout, None


def read_listings(cfg) -> Listings:
    """Saved files named in config, else the read-only commands (when allowed)."""
    out = Listings()
    for attr, path_attr, cmd in (
        ("nft", "nft_json_path", ["nft", "-j", "list", "ruleset"]),
        ("iptables", "iptables_save_path", ["iptables-save"]),
        ("ufw", "ufw_status_path", ["ufw", "status", "verbose"]),
    ):
        path = getattr(cfg, path_attr)
        if path:
            try:
                setattr(out, attr, Path(path).expanduser().read_text(encoding="utf-8"))
                out.notes.append(f"{attr}: read from {path}")
            except OSError as exc:
                out.notes.append(f"{attr}: cannot read {path}: {exc.strerror}")
        elif cfg.firewall_commands:
            text, why = run_listing(cmd, cfg.command_timeout_s)
            if text is not None:
                setattr(out, attr, text)
                out.notes.append(f"{attr}: ran `{' '.join(cmd)}`")
            else:
                out.notes.append(f"{attr}: {why}")
    return out


def build_rulesets(listings: Listings) -> tuple[list[Ruleset], UfwStatus | None, list[str]]:
    """Parse what was read; iptables-nft tables are taken from iptables-save when both are present."""
    notes: list[str] = []
    rulesets: list[Ruleset] = []
    ipt = None
    if listings.iptables is not None:
        try:
            ipt = parse_iptables_save(listings.iptables)
        except FirewallParseError as exc:
            notes.append(f"iptables-save: {exc}")
    if listings.nft is not None:
        try:
            nft = parse_nft_json(listings.nft)
        except FirewallParseError as exc:
            notes.append(f"nft: {exc}")
            nft = None
        if nft is not None:
            if ipt is not None and ipt.chains:
                ipt_tables = {t for (_f, t, _n) in ipt.chains}
                skip = {ft for ft in iptables_managed_tables(nft) if ft[0] == "ip" and ft[1] in ipt_tables}
                nft.chains = {k: v for k, v in nft.chains.items() if (k[0], k[1]) not in skip}
                if skip:
                    notes.append(
                        "iptables-nft tables judged from iptables-save (nft shows their matches opaquely)"
                    )
            rulesets.append(nft)
    if ipt is not None and ipt.chains:
        rulesets.append(ipt)
    ufw = None
    if listings.ufw is not None:
        try:
            ufw = parse_ufw_status(listings.ufw)
        except FirewallParseError as exc:
            notes.append(f"ufw: {exc}")
    return rulesets, ufw, notes


# ---------------------------------------------------------------- findings


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
