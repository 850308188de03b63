"""The cost review on a fleet: each host measures its own GPU energy (only its NVML history holds
it) and hands it to the central review as an :class:`EnergyPart`; the central review adds every
host's energy, and a host whose part did not come back is named in the notes and degrades it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from llm_upkeep.cost.config import TokenSource
from llm_upkeep.cost.energy import GpuEnergy
from llm_upkeep.cost.tokens import TokenCount
from llm_upkeep.fleet_parts import HostPart


class EnergyPart(BaseModel):
    """One host's GPU energy for the review window."""

    flow: str = Field(default="cost-review", description="Flow name, for JSON consumers.")
    status: str = Field(default="ok", description="ok, or degraded when the host has no samples.")
    host: str = Field(description="Fleet host the energy was measured on.")
    gpus: list[dict[str, Any]] = Field(default_factory=list, description="GpuEnergy per GPU, as JSON.")
    kwh: float = Field(default=0.0, description="Sum over the host's GPUs, kWh.")
    tokens: list[dict[str, Any]] = Field(
        default_factory=list, description="TokenCount per token source read on this host, as JSON."
    )


def energy_part(host: str, energies: list[GpuEnergy], tokens: list[TokenCount] | None = None) -> EnergyPart:
    rows = []
    for e in energies:
        d = asdict(e)
        d["daily_kwh"] = {k.isoformat(): v for k, v in e.daily_kwh.items()}
        rows.append(d)
    counts = []
    for t in tokens or []:
        d = asdict(t)
        d["daily"] = {k.isoformat(): v for k, v in t.daily.items()}
        counts.append(d)
    return EnergyPart(host=host, gpus=rows, kwh=round(sum(e.kwh for e in energies), 6), tokens=counts,
                      status="ok" if energies else "degraded")  # fmt: skip


def token_sources_of(sources: list[TokenSource], endpoint_hosts: dict[str, str], host: str) -> list[TokenSource]:
    """The token sources a host reads: counters of its own endpoints (sampled into its history),
    and every request-log source (each host reads its own log at that path)."""
    return [s for s in sources if s.kind == "log" or endpoint_hosts.get(s.endpoint or "") == host]


def tokens_from(part: EnergyPart) -> list[TokenCount]:
    out = []
    for d in part.tokens:
        d = dict(d)
        d["daily"] = {date.fromisoformat(k): list(v) for k, v in (d.get("daily") or {}).items()}
        d["source"] = f"{part.host}: {d['source']}"
        out.append(TokenCount(**d))
    return out


def energies_from(part: EnergyPart) -> list[GpuEnergy]:
    out = []
    for d in part.gpus:
        d = dict(d)
        d["daily_kwh"] = {date.fromisoformat(k): float(v) for k, v in (d.get("daily_kwh") or {}).items()}
        out.append(GpuEnergy(**d))
    return out


def collect_energies(parts: list[HostPart]) -> tuple[list[GpuEnergy], list[TokenCount], list[str]]:
    """Every host's GPU energy and tokens, and one note per host whose part is missing or failed."""
    energies: list[GpuEnergy] = []
    tokens: list[TokenCount] = []
    notes: list[str] = []
    for p in parts:
        got = p.parse(EnergyPart)
        if got is None:
            notes.append(f"host {p.host}: energy {p.status.upper()} ({p.detail}); its GPUs and tokens are not counted")
            continue
        energies += energies_from(got)
        tokens += tokens_from(got)
        if not got.gpus:
            notes.append(f"host {p.host}: no GPU samples in the window")
    return energies, tokens, notes
