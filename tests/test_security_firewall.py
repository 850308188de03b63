"""Firewall judgement on real listings captured from rulesets loaded into a throw-away network namespace
(tests/fixtures/firewall/capture.sh). The tests only parse files: no root, no tools needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_upkeep.security.firewall import (
    FirewallParseError,
    Listings,
    assess_firewall,
    build_rulesets,
    evaluate_port,
    evaluate_ufw,
    find_docker_publishes,
    parse_iptables_save,
    parse_nft_json,
    parse_ufw_status,
)

FIX = Path(__file__).parent / "fixtures" / "firewall"


def listing(name: str, *, nft=True, ipt=True, ufw=True) -> Listings:
    d = FIX / name

    def rd(f, want):
        p = d / f
        return p.read_text() if want and p.exists() else None

    return Listings(nft=rd("nft.json", nft), iptables=rd("iptables-save.txt", ipt),
                    ufw=rd("ufw-status-verbose.txt", ufw))  # fmt: skip


def state(name: str, port: int, families=None, **which) -> str:
    rulesets, ufw, _ = build_rulesets(listing(name, **which))
    if rulesets:
        return evaluate_port(rulesets, port, families).state
    return evaluate_ufw(ufw, port).state


def test_captured_fixtures_are_real_tool_output():
    nft = (FIX / "nft-open" / "nft.json").read_text()
    assert '"metainfo"' in nft and '"json_schema_version": 1' in nft
    assert (FIX / "ufw-open" / "iptables-save.txt").read_text().startswith("*filter")
    assert "ufw-user-input" in (FIX / "ufw-open" / "iptables-save.txt").read_text()


@pytest.mark.parametrize(
    "name,port,expected",
    [
        ("nft-open", 11434, "open"),
        ("nft-open", 8000, "closed"),
        ("nft-restrictive", 11434, "restricted"),
        ("nft-restrictive", 8080, "restricted"),
        ("nft-restrictive", 9999, "closed"),
        ("nft-policy-accept", 11434, "open"),  # policy accept; only 198.51.100.0/24 is dropped
        ("nft-policy-accept", 8000, "closed"),  # range 8000-8001 dropped in the jumped-to chain
        ("empty", 11434, "open"),
        ("ufw-open", 11434, "open"),
        ("ufw-open", 8000, "closed"),
        ("ufw-restrictive", 11434, "restricted"),
        ("ufw-restrictive", 8080, "closed"),
        ("iptables-restrictive", 11434, "restricted"),
        ("iptables-restrictive", 22, "restricted"),
        ("iptables-open", 11434, "open"),
        ("iptables-open", 8000, "open"),
        ("iptables-open", 8080, "closed"),
        ("iptables-docker", 11434, "closed"),  # INPUT drops it; Docker's DNAT is judged separately
    ],
)
def test_port_states_ipv4(name, port, expected):
    assert state(name, port, {"ip"}) == expected


def test_each_source_alone_agrees_on_ufw_rulesets():
    for name, exp in (("ufw-open", "open"), ("ufw-restrictive", "restricted")):
        assert state(name, 11434, {"ip"}, ipt=False, ufw=False) == exp  # nft -j of iptables-nft
        assert state(name, 11434, {"ip"}, nft=False, ufw=False) == exp  # iptables-save
        assert state(name, 11434, None, nft=False, ipt=False) == exp  # ufw status


def test_ipv6_left_open_by_an_iptables_only_ruleset_is_reported():
    # ip6tables was never loaded in that namespace: IPv6 traffic is not filtered at all.
    assert state("iptables-restrictive", 11434, {"ip", "ip6"}, ipt=False) == "open"
    assert state("nft-restrictive", 11434, {"ip", "ip6"}) == "restricted"  # inet table covers both


def test_opaque_xt_match_without_iptables_save_is_uncertain_not_closed():
    # nft shows iptables-nft's multiport match as an opaque xt expression.
    assert state("iptables-open", 8080, {"ip"}, ipt=False) == "uncertain"
    assert state("iptables-open", 8080, {"ip"}) == "closed"  # with iptables-save it is judged exactly


def test_open_evidence_names_the_rule():
    rulesets, _, _ = build_rulesets(listing("nft-open"))
    v = evaluate_port(rulesets, 11434, {"ip"})
    assert any("tcp dport 11434 accept" in e and "any source" in e for e in v.evidence), v.evidence
    rulesets, _, _ = build_rulesets(listing("nft-policy-accept"))
    v = evaluate_port(rulesets, 22, {"ip"})
    assert any("jump services" in e for e in v.evidence) and any(
        "tcp dport 22 accept" in e for e in v.evidence
    )


def test_restricted_sources_are_listed():
    rulesets, _, _ = build_rulesets(listing("nft-restrictive"))
    v = evaluate_port(rulesets, 11434, {"ip"})
    assert any("@llm_clients" in s for s in v.sources)


def test_ufw_status_parsing():
    st = parse_ufw_status((FIX / "ufw-open" / "ufw-status-verbose.txt").read_text())
    assert st.active and st.default_incoming == "deny"
    assert [(r.to, r.action, r.source, r.v6) for r in st.rules][:2] == [
        ("22/tcp", "ALLOW", "Anywhere", False), ("11434/tcp", "ALLOW", "Anywhere", False)]  # fmt: skip
    plain = parse_ufw_status((FIX / "ufw-open" / "ufw-status.txt").read_text())
    assert plain.default_incoming is None and plain.rules[1].direction == "IN"
    assert not parse_ufw_status((FIX / "ufw-inactive" / "ufw-status-verbose.txt").read_text()).active
    assert state("ufw-inactive", 11434) == "unknown"


def test_docker_publish_detected_from_either_listing():
    for which in ({"nft": False}, {"ipt": False}):
        rulesets, _, _ = build_rulesets(listing("iptables-docker", **which))
        present, pubs = find_docker_publishes(rulesets, {11434, 8000})
        assert present and [p.port for p in pubs] == [11434]
        assert not pubs[0].restricted_by_docker_user


def test_assess_firewall_findings():
    rulesets, ufw, _ = build_rulesets(listing("nft-open"))
    findings, _ = assess_firewall(
        rulesets, ufw, {11434, 8000}, {11434: True, 8000: True}, families={11434: {"ip"}}
    )
    assert [f.id for f in findings] == ["firewall.open:11434"]
    f = findings[0]
    assert f.severity == "high" and any("11434" in e for e in f.evidence) and "saddr" in f.fix
    # the same open port with the server on loopback only: still reported, as defense in depth
    findings, _ = assess_firewall(rulesets, ufw, {11434}, {11434: False})
    assert findings[0].severity == "low"


def test_docker_bypasses_ufw_finding():
    rulesets, ufw, _ = build_rulesets(listing("ufw-docker"))
    findings, _ = assess_firewall(rulesets, ufw, {11434, 8000}, {11434: None, 8000: None}, families={})
    ids = {f.id: f for f in findings}
    assert "firewall.open:11434" not in ids  # ufw itself restricts it ...
    d = ids["firewall.docker-publish:11434"]  # ... but Docker's DNAT goes around ufw
    assert d.severity == "high"
    assert any("DNAT" in e for e in d.evidence) and any("ufw is active" in e for e in d.evidence)
    assert "127.0.0.1:11434:11434" in d.fix


def test_restrictive_rulesets_give_no_findings():
    for name in ("nft-restrictive", "ufw-restrictive", "iptables-restrictive"):
        rulesets, ufw, _ = build_rulesets(listing(name))
        fams = {11434: {"ip"}, 8000: {"ip"}}
        findings, notes = assess_firewall(
            rulesets, ufw, {11434, 8000}, {11434: True, 8000: True}, families=fams
        )
        assert findings == [], (name, findings)
        assert "port 11434: restricted" in notes


def test_garbage_is_a_clear_parse_error():
    with pytest.raises(FirewallParseError, match="not JSON"):
        parse_nft_json("Error: Could not process rule: Operation not permitted")
    with pytest.raises(FirewallParseError, match="outside a"):
        parse_iptables_save("-A INPUT -j ACCEPT\n")
    with pytest.raises(FirewallParseError, match="Status"):
        parse_ufw_status("ERROR: You need to be root to run this script")
    rulesets, ufw, notes = build_rulesets(Listings(nft="{", iptables=None, ufw="nope"))
    assert rulesets == [] and ufw is None and len(notes) == 2
