"""Parse `nft -j list ruleset` (nftables JSON) into the firewall model.

Why its own file: nftables' JSON schema is its own (expressions, sets, xt matches of
iptables-nft); it changes with nft releases and nowhere else.
"""

from __future__ import annotations

import json

from llm_upkeep.security.firewall.model import (
    BUILTIN_CHAINS,
    XT_NEUTRAL,
    XT_NEVER_NEW,
    XT_TABLES,
    Chain,
    FirewallParseError,
    Match,
    Rule,
    Ruleset,
    _nets_of,
    _ports_of,
)


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
