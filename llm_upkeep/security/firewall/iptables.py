"""Parse `iptables-save` / `ip6tables-save` into the firewall model.

Why its own file: the iptables command-line syntax (options with and without arguments,
negation, match modules) changes with iptables, not with the evaluation.
"""

from __future__ import annotations

import shlex

from llm_upkeep.security.firewall.model import (
    BUILTIN_CHAINS,
    IPTABLES_HOOKS,
    Chain,
    FirewallParseError,
    Match,
    Rule,
    Ruleset,
    _ports_of,
)

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
