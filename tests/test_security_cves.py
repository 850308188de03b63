"""The shipped, dated CVE table and version matching."""

from __future__ import annotations

import json
from datetime import date

import pytest

from llm_upkeep.security.cves import (
    CveTableError,
    assess_version,
    load_cve_table,
    match_cves,
    parse_version,
)


def ids(table, product, version):
    return {e.id for e in match_cves(table, product, version)}


def test_shipped_table_is_dated_and_covers_the_three_servers():
    t = load_cve_table()
    assert t.as_of <= date(2026, 11, 28) and t.source.endswith("known_cves.json")
    assert {e.product for e in t.entries} == {"ollama", "vllm", "llamacpp"}
    assert len({e.id for e in t.entries}) == len(t.entries)


def test_ollama_versions():
    t = load_cve_table()
    old = ids(t, "ollama", "0.1.33")
    assert {"CVE-2024-37032", "CVE-2024-39721", "CVE-2024-39720", "CVE-2024-39722"} <= old
    assert "CVE-2024-37032" not in ids(t, "ollama", "0.1.34")  # Probllama fixed in 0.1.34
    assert ids(t, "ollama", "0.1.46") & {"CVE-2024-39720", "CVE-2024-39722"} == set()
    assert "CVE-2024-39719" in ids(t, "ollama", "0.3.14") and "CVE-2024-39719" not in ids(
        t, "ollama", "0.3.15"
    )
    assert ids(t, "ollama", "0.17.1") == set()


def test_vllm_and_llamacpp_versions():
    t = load_cve_table()
    assert "CVE-2025-47277" in ids(t, "vllm", "0.8.4") and "CVE-2025-47277" not in ids(t, "vllm", "0.8.5")
    assert "CVE-2025-47277" not in ids(t, "vllm", "0.6.4")  # introduced in 0.6.5
    assert "CVE-2025-48956" in ids(t, "vllm", "0.10.1") and "CVE-2025-48956" not in ids(t, "vllm", "0.10.1.1")
    assert "CVE-2025-59425" in ids(t, "vllm", "0.10.2rc1")
    assert "CVE-2024-42479" in ids(t, "llamacpp", "b3560") and "CVE-2024-42479" not in ids(
        t, "llamacpp", "b3561"
    )
    assert ids(t, "llamacpp", "b5721-abcdef0") == set()


def test_version_parsing():
    assert str(parse_version("llamacpp", "b5721-abc")) == "5721"
    assert str(parse_version("ollama", "v0.12.6")) == "0.12.6"
    assert str(parse_version("ollama", "0.12.6-rocm")) == "0.12.6"
    assert parse_version("vllm", "nightly") is None
    assert match_cves(load_cve_table(), "vllm", "nightly") is None


def test_finding_groups_cves_and_names_the_fix():
    t = load_cve_table()
    [f] = assess_version("ollama-prod", "ollama", "0.1.30", "GET /api/version", t)
    assert f.severity == "critical" and f.id == "versions.cve:ollama-prod"
    assert any(e.startswith("CVE-2024-37032 [critical]") for e in f.evidence)
    assert f.fix.startswith("Upgrade ollama to 0.17.1 or later")
    assert assess_version("x", "ollama", "0.17.1", "config", t) == []


def test_override_table_and_clear_errors(tmp_path):
    p = tmp_path / "cves.json"
    p.write_text(json.dumps({"as_of": "2026-11-20", "entries": [
        {"id": "CVE-2099-0001", "product": "vllm", "severity": "low", "fixed": "0.30.0", "summary": "x"}]}))  # fmt: skip
    t = load_cve_table(p)
    assert t.as_of == date(2026, 11, 20) and ids(t, "vllm", "0.29.9") == {"CVE-2099-0001"}
    p.write_text(json.dumps({"as_of": "2026-11-20", "entries": [{"id": "X", "product": "tgi", "severity": "low",
                                                                  "summary": "x"}]}))  # fmt: skip
    with pytest.raises(CveTableError, match=str(p)):
        load_cve_table(p)
    with pytest.raises(CveTableError, match="cannot read"):
        load_cve_table(tmp_path / "nope.json")
    p.write_text(json.dumps({"as_of": "2026-11-20", "entries": [
        {"id": "X", "product": "vllm", "severity": "low", "fixed": "soon", "summary": "x"}]}))  # fmt: skip
    with pytest.raises(CveTableError, match="not a vllm version"):
        load_cve_table(p)
