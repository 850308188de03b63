"""The one shape every audit check reports: a finding with severity, evidence and the fix."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from llm_upkeep.redact import redact

SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}


class Finding(BaseModel):
    """A problem the audit can show evidence for, with the fix a person can apply."""

    id: str = Field(description="Stable identity: '<check>:<target>', e.g. 'exposure.bind:ollama'.")
    category: Literal["exposure", "versions", "firewall", "files", "access"] = Field(
        description="Which part of the audit found it."
    )
    severity: Literal["low", "medium", "high", "critical"] = Field(description="How bad it is.")
    title: str = Field(description="One line saying what is wrong.")
    target: str = Field(default="", description="Endpoint, port, path or log the finding is about.")
    evidence: list[str] = Field(default_factory=list, description="What was observed (never a secret).")
    fix: str = Field(default="", description="What to change.")

    def at_least(self, severity: str) -> bool:
        return SEVERITY_RANK[self.severity] >= SEVERITY_RANK[severity]

    def public(self) -> dict:
        """The JSON contract; evidence is redacted once more in case a secret slipped in."""
        d = self.model_dump(mode="json")
        d["evidence"] = [redact(e) for e in d["evidence"]]
        d["title"] = redact(d["title"])
        return d


class SectionResult(BaseModel):
    """What one part of the audit did: ran (ok), had nothing to examine (skipped), or failed (error)."""

    name: str = Field(description="exposure, versions, firewall, files or access.")
    status: Literal["ok", "skipped", "error"] = Field(description="Whether the section could do its job.")
    findings: list[Finding] = Field(default_factory=list, description="Its findings.")
    notes: list[str] = Field(default_factory=list, description="What was examined, skipped, or assumed.")


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.category, f.id))
