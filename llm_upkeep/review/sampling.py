"""Hourly GPU sampling: one NVML reading per GPU into the history store, so the weekly review can
say "sustained" and the cost review can read the energy counters."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from pydantic import BaseModel, Field

from llm_upkeep import history
from llm_upkeep.telemetry import GpuSnapshot, collect_gpus


class GpuSamplingResult(BaseModel):
    flow: str = Field(default="gpu-sampling", description="Flow name, for JSON consumers.")
    status: str = Field(description="ok (samples stored), skipped (no NVML / disabled) or error.")
    samples: int = Field(default=0, description="Rows written to the history store.")
    gpus: int = Field(default=0, description="GPUs read.")
    driver_version: str | None = Field(default=None, description="Driver version seen.")
    cuda_version: str | None = Field(default=None, description="CUDA version seen.")
    energy_mj: dict[int, int | None] = Field(default_factory=dict, description="Energy counter per GPU, mJ.")
    reason: str | None = Field(default=None, description="Why skipped or error.")

    def to_json(self) -> dict:
        return self.model_dump(mode="json")


def record_samples(state_dir: str | Path, snapshot: GpuSnapshot, host: str = "local") -> GpuSamplingResult:
    """Store one snapshot; a snapshot that is not ok stores nothing and says why."""
    n = history.append_gpu_samples(state_dir, snapshot, host=host)
    return GpuSamplingResult(
        status=snapshot.status, samples=n, gpus=len(snapshot.gpus), driver_version=snapshot.driver_version,
        cuda_version=snapshot.cuda_version, energy_mj={g.index: g.energy_mj for g in snapshot.gpus},
        reason=snapshot.reason,
    )  # fmt: skip


def sample_gpus(
    state_dir: str | Path, nvml_module: ModuleType | None = None, host: str = "local"
) -> GpuSamplingResult:
    return record_samples(state_dir, collect_gpus(nvml_module), host=host)
