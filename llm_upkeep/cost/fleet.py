"""The cost review on a fleet: each host measures its own GPU energy (only its NVML history holds
it) and hands it to the central review as an :class:`EnergyPart`; the central review adds every
host's energy, and a host whose part did not come back is named in the notes and degrades it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from llm_upkeep.cost.energy import GpuEnergy
from llm_upkeep.fleet_parts import HostPart


class EnergyPart(BaseModel):
    """One host's GPU energy for the review window."""

    flow: str = Field(default="cost-review", description="Flow name, for JSON consumers.")
    status: str = Field(default="ok", description="ok, or degraded when the host has no samples.")
    host: str = Field(description="Fleet host the energy was measured on.")
    gpus: list[dict[str, Any]] = Field(default_factory=list, description="GpuEnergy per GPU, as JSON.")
    kwh: float = Field(default=0.0, description="Sum over the host's GPUs, kWh.")


def energy_part(host: str, energies: list[GpuEnergy]) -> EnergyPart:
    rows = []
    for e in energies:
        d = asdict(e)
        d["daily_kwh"] = {k.isoformat(): v for k, v in e.daily_kwh.items()}
        rows.append(d)
    return EnergyPart(host=host, gpus=rows, kwh=round(sum(e.kwh for e in energies), 6),
                      status="ok" if energies else "degraded")  # fmt: skip


def energies_from(part: EnergyPart) -> list[GpuEnergy]:
    out = []
    for d in part.gpus:
        d = dict(d)
        d["daily_kwh"] = {date.fromisoformat(k): float(v) for k, v in (d.get("daily_kwh") or {}).items()}
        out.append(GpuEnergy(**d))
    return out


def collect_energies(parts: list[HostPart]) -> tuple[list[GpuEnergy], list[str]]:
    """Every host's GPU energy, and one note per host whose part is missing or failed."""
    energies: list[GpuEnergy] = []
    notes: list[str] = []
    for p in parts:
        got = p.parse(EnergyPart)
        if got is None:
            notes.append(f"host {p.host}: energy {p.status.upper()} ({p.detail}); its GPUs are not counted")
            continue
        energies += energies_from(got)
        if not got.gpus:
            notes.append(f"host {p.host}: no GPU samples in the window")
    return energies, notes
