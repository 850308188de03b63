"""Server versions against a shipped, dated table of known CVEs (editable; overridable by path)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Literal

from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, Field

from llm_upkeep.datafiles import load_table
from llm_upkeep.security.findings import SEVERITY_RANK, Finding

SHIPPED = "known_cves.json"


class CveTableError(Exception):
    """The CVE table cannot be read or has the wrong shape; the message names the file."""


class CveEntry(BaseModel):
    id: str = Field(description="CVE (or advisory) identifier.")
    product: Literal["ollama", "vllm", "llamacpp"] = Field(description="Affected server software.")
    severity: Literal["low", "medium", "high", "critical"] = Field(description="Advisory severity.")
    introduced: str | None = Field(default=None, description="First affected version (inclusive).")
    fixed: str | None = Field(default=None, description="First fixed version (exclusive bound).")
    last_affected: str | None = Field(default=None, description="Last affected version when no fix is known.")
    summary: str = Field(description="What the vulnerability allows.")
    url: str | None = Field(default=None, description="Advisory link.")


class CveTable(BaseModel):
    as_of: date = Field(description="Date the table was last brought up to date.")
    description: str = Field(default="", description="Where the entries come from.")
    entries: list[CveEntry] = Field(description="Known vulnerabilities.")
    source: str = Field(default="", exclude=True, description="File the table was read from.")

    def age_days(self, today: date | None = None) -> int:
        return ((today or date.today()) - self.as_of).days


def load_cve_table(path: str | Path | None = None) -> CveTable:
    """The table at `path`, else the one shipped in llm_upkeep/data."""
    table = load_table(CveTable, SHIPPED, path, "CVE table", CveTableError)
    src = table.source
    for e in table.entries:
        for v in (e.introduced, e.fixed, e.last_affected):
            if v is not None and parse_version(e.product, v) is None:
                raise CveTableError(f"{src}: entry {e.id}: version {v!r} is not a {e.product} version")
    return table


def parse_version(product: str, text: str) -> Version | None:
    """Comparable version: llama.cpp build numbers (b5721, 'b5721-abc123') or PEP 440 versions."""
    s = text.strip()
    if product == "llamacpp":
        m = re.match(r"^b?(\d+)", s)
        return Version(m.group(1)) if m else None
    s = s.lstrip("vV")
    try:
        return Version(s)
    except InvalidVersion:
        m = re.match(r"^(\d+(?:\.\d+)*)", s)  # '0.12.6-rocm', '0.8.5+cu124' style suffixes
        return Version(m.group(1)) if m else None


def is_affected(entry: CveEntry, version: Version) -> bool:
    p = entry.product
    if entry.introduced and version < parse_version(p, entry.introduced):
        return False
    if entry.fixed and version >= parse_version(p, entry.fixed):
        return False
    if entry.last_affected and version > parse_version(p, entry.last_affected):
        return False
    return True


def match_cves(table: CveTable, product: str, version: str) -> list[CveEntry] | None:
    """The entries affecting this version; None when the version cannot be compared."""
    v = parse_version(product, version)
    if v is None:
        return None
    return [e for e in table.entries if e.product == product and is_affected(e, v)]


def assess_version(endpoint: str, product: str, version: str, source: str, table: CveTable) -> list[Finding]:
    hits = match_cves(table, product, version)
    if not hits:
        return []
    worst = max(hits, key=lambda e: SEVERITY_RANK[e.severity])
    fixes = [parse_version(product, e.fixed) for e in hits if e.fixed]
    unfixed = [e.id for e in hits if not e.fixed]
    need = max(fixes) if fixes else None
    need_s = (f"b{need}" if product == "llamacpp" else str(need)) if need else None
    fix = f"Upgrade {product} to {need_s} or later" if need_s else f"No fixed {product} version is known"
    if unfixed:
        fix += (
            f"; no fix is listed for {', '.join(unfixed)}: keep the server unreachable from untrusted clients"
        )
    ev = [f"{product} {version} (from {source}); table {table.source} as of {table.as_of}"]
    ev += [f"{e.id} [{e.severity}] {e.summary}" + (f" fixed in {e.fixed}" if e.fixed else "") for e in hits]
    return [Finding(
        id=f"versions.cve:{endpoint}", category="versions", severity=worst.severity,
        title=f"{endpoint}: {product} {version} has {len(hits)} known vulnerabilit{'y' if len(hits) == 1 else 'ies'}",
        target=endpoint, evidence=ev, fix=fix + ".",
    )]  # fmt: skip
