"""GPU telemetry through NVML (nvidia-ml-py), the data nvidia-smi shows, read field by field.

One unsupported or failing query leaves that field None and is noted; it never hides the rest
of the reading, and collection never raises: a host without a driver gives a "skipped" snapshot.
"""

from __future__ import annotations

import importlib
import logging
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Literal

import psutil
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from llm_upkeep.checks import CheckResult, Status

log = logging.getLogger(__name__)

# nvmlInit errors that mean "this host has no usable NVIDIA driver" rather than a fault.
_NO_DRIVER_CODES = {9, 12}  # DRIVER_NOT_LOADED, LIBRARY_NOT_FOUND
_NOT_SUPPORTED = 3
_FUNCTION_NOT_FOUND = 13

# Bits of nvmlClocksEventReason* / nvmlClocksThrottleReason* (same values in both).
CLOCK_EVENT_REASONS: dict[int, str] = {
    0x001: "gpu_idle",
    0x002: "applications_clocks_setting",
    0x004: "sw_power_cap",
    0x008: "hw_slowdown",
    0x010: "sync_boost",
    0x020: "sw_thermal_slowdown",
    0x040: "hw_thermal_slowdown",
    0x080: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
    0x200: "board_limit",
    0x400: "reliability",
}
THERMAL_REASONS = frozenset({"sw_thermal_slowdown", "hw_thermal_slowdown"})


class GpuProcess(TypedDict):
    pid: int
    name: str | None
    used_bytes: int | None


class GpuReading(BaseModel):
    """One device; None means NVML could not or would not say (see unsupported and errors)."""

    index: int = Field(description="NVML device index.")
    name: str | None = Field(default=None, description="Product name.")
    uuid: str | None = Field(default=None, description="Device UUID (GPU-...).")
    memory_used_bytes: int | None = Field(default=None, description="Framebuffer memory in use.")
    memory_total_bytes: int | None = Field(default=None, description="Framebuffer memory size.")
    memory_percent: float | None = Field(default=None, description="Used / total, in percent.")
    utilization_percent: float | None = Field(default=None, description="GPU busy percent, last sample.")
    temperature_c: float | None = Field(default=None, description="GPU core temperature, °C.")
    slowdown_c: float | None = Field(default=None, description="Device's own slowdown threshold, °C.")
    shutdown_c: float | None = Field(default=None, description="Device's own shutdown threshold, °C.")
    power_w: float | None = Field(default=None, description="Power draw, watts.")
    power_limit_w: float | None = Field(default=None, description="Enforced power limit, watts.")
    energy_mj: int | None = Field(default=None, description="Energy counter since driver load, millijoules.")
    throttle_reasons: list[str] = Field(default_factory=list, description="Active clock event reasons.")
    ecc_uncorrected: int | None = Field(default=None, description="Uncorrected ECC errors, volatile total.")
    remapped_corrected: int | None = Field(default=None, description="Rows remapped for corrected errors.")
    remapped_uncorrected: int | None = Field(
        default=None, description="Rows remapped for uncorrected errors."
    )
    remapped_pending: bool | None = Field(default=None, description="A remap waits for a GPU reset.")
    remapped_failed: bool | None = Field(default=None, description="A remap failed: the GPU needs service.")
    processes: list[GpuProcess] = Field(default_factory=list, description="Compute processes on the GPU.")
    unsupported: list[str] = Field(default_factory=list, description="Fields this device does not report.")
    errors: dict[str, str] = Field(default_factory=dict, description="Field -> NVML error text.")


class GpuSnapshot(BaseModel):
    status: Literal["ok", "skipped", "error"] = Field(description="skipped: no NVML on this host.")
    reason: str | None = Field(default=None, description="Why skipped or error.")
    taken_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC), description="When the reading started (UTC)."
    )
    driver_version: str | None = Field(default=None, description="NVIDIA driver version.")
    cuda_version: str | None = Field(default=None, description="CUDA version the driver supports, e.g. 12.4.")
    gpus: list[GpuReading] = Field(default_factory=list, description="One reading per device.")


def format_cuda_version(value: int) -> str:
    """NVML encodes 12.4 as 12040."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def decode_clock_reasons(mask: int) -> list[str]:
    names = [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]
    unknown = mask & ~sum(CLOCK_EVENT_REASONS)
    if unknown:
        names.append(f"unknown_0x{unknown:x}")
    return names


class _Reader:
    """Calls NVML one field at a time, sorting failures into unsupported and errors."""

    def __init__(self, nvml: ModuleType):
        self.nvml = nvml
        mismatch = getattr(nvml, "NVMLLibraryMismatchError", None)
        self.catch: tuple[type[BaseException], ...] = (nvml.NVMLError,) + ((mismatch,) if mismatch else ())

    def get(self, reading: GpuReading, key: str, fn_name: str, *args: Any) -> Any:
        fn = getattr(self.nvml, fn_name, None)
        if fn is None:
            reading.unsupported.append(key)
            return None
        try:
            return fn(*args)
        except self.catch as e:
            if getattr(e, "value", None) == _NOT_SUPPORTED:
                reading.unsupported.append(key)
            else:
                reading.errors[key] = str(e) or type(e).__name__
            return None

    def first(self, reading: GpuReading, key: str, attempts: list[tuple[str, tuple]]) -> Any:
        """Try newer API names first; fall back when the driver lacks or refuses them."""
        for i, (fn_name, args) in enumerate(attempts):
            last = i == len(attempts) - 1
            fn = getattr(self.nvml, fn_name, None)
            if fn is None:
                if last:
                    reading.unsupported.append(key)
                continue
            try:
                return fn(*args)
            except self.catch as e:
                if not last:
                    continue
                if getattr(e, "value", None) == _NOT_SUPPORTED:
                    reading.unsupported.append(key)
                else:
                    reading.errors[key] = str(e) or type(e).__name__
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _process_name(pid: int, r: _Reader) -> str | None:
    try:
        return psutil.Process(pid).name()
    except (psutil.Error, OSError):
        # Another PID namespace (containers) or a process that just exited: ask the driver.
        fn = getattr(r.nvml, "nvmlSystemGetProcessName", None)
        if fn is None:
            return None
        try:
            return _text(fn(pid))
        except r.catch:
            return None


def _read_device(r: _Reader, index: int) -> GpuReading:
    nvml = r.nvml
    reading = GpuReading(index=index)
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
    except r.catch as e:
        reading.errors["handle"] = str(e) or type(e).__name__
        return reading

    reading.name = _text(r.get(reading, "name", "nvmlDeviceGetName", handle))
    reading.uuid = _text(r.get(reading, "uuid", "nvmlDeviceGetUUID", handle))

    mem = r.get(reading, "memory", "nvmlDeviceGetMemoryInfo", handle)
    if mem is not None:
        reading.memory_used_bytes = int(mem.used)
        reading.memory_total_bytes = int(mem.total)
        if mem.total:
            reading.memory_percent = round(100.0 * mem.used / mem.total, 2)

    util = r.get(reading, "utilization", "nvmlDeviceGetUtilizationRates", handle)
    if util is not None:
        reading.utilization_percent = float(util.gpu)

    sensor = nvml.NVML_TEMPERATURE_GPU
    temp = r.first(
        reading,
        "temperature",
        [("nvmlDeviceGetTemperatureV", (handle, sensor)), ("nvmlDeviceGetTemperature", (handle, sensor))],
    )
    reading.temperature_c = float(temp) if temp is not None else None
    slow = r.get(
        reading,
        "slowdown",
        "nvmlDeviceGetTemperatureThreshold",
        handle,
        nvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
    )
    reading.slowdown_c = float(slow) if slow else None
    shut = r.get(
        reading,
        "shutdown",
        "nvmlDeviceGetTemperatureThreshold",
        handle,
        nvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN,
    )
    reading.shutdown_c = float(shut) if shut else None

    power = r.get(reading, "power", "nvmlDeviceGetPowerUsage", handle)
    reading.power_w = power / 1000.0 if power is not None else None
    limit = r.get(reading, "power_limit", "nvmlDeviceGetEnforcedPowerLimit", handle)
    reading.power_limit_w = limit / 1000.0 if limit is not None else None
    energy = r.get(reading, "energy", "nvmlDeviceGetTotalEnergyConsumption", handle)
    reading.energy_mj = int(energy) if energy is not None else None

    reasons = r.first(
        reading,
        "throttle_reasons",
        [
            ("nvmlDeviceGetCurrentClocksEventReasons", (handle,)),
            ("nvmlDeviceGetCurrentClocksThrottleReasons", (handle,)),
        ],
    )
    reading.throttle_reasons = decode_clock_reasons(int(reasons)) if reasons is not None else []

    ecc = r.get(
        reading,
        "ecc_uncorrected",
        "nvmlDeviceGetTotalEccErrors",
        handle,
        nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
        nvml.NVML_VOLATILE_ECC,
    )
    reading.ecc_uncorrected = int(ecc) if ecc is not None else None

    remap = r.get(reading, "remapped_rows", "nvmlDeviceGetRemappedRows", handle)
    if remap is not None:
        corrected, uncorrected, pending, failure = remap
        reading.remapped_corrected = int(corrected)
        reading.remapped_uncorrected = int(uncorrected)
        reading.remapped_pending = bool(pending)
        reading.remapped_failed = bool(failure)

    procs = r.get(reading, "processes", "nvmlDeviceGetComputeRunningProcesses", handle)
    for p in procs or []:
        used = getattr(p, "usedGpuMemory", None)
        reading.processes.append(
            GpuProcess(
                pid=int(p.pid),
                name=_process_name(int(p.pid), r),
                used_bytes=int(used) if used is not None else None,
            )
        )
    return reading


def collect_gpus(nvml_module: ModuleType | None = None) -> GpuSnapshot:
    """Read every GPU once; never raises. nvml_module lets tests pass a stand-in for pynvml."""
    taken_at = datetime.now(UTC)
    if nvml_module is None:
        try:
            nvml_module = importlib.import_module("pynvml")
        except ImportError as e:
            return GpuSnapshot(
                status="skipped", reason=f"nvidia-ml-py is not installed ({e})", taken_at=taken_at
            )
    nvml = nvml_module
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as e:
        reason = str(e) or type(e).__name__
        if getattr(e, "value", None) in _NO_DRIVER_CODES:
            return GpuSnapshot(status="skipped", reason=reason, taken_at=taken_at)
        return GpuSnapshot(status="error", reason=f"nvmlInit failed: {reason}", taken_at=taken_at)
    except Exception as e:  # a broken install must not take the health check down
        return GpuSnapshot(
            status="error", reason=f"nvmlInit failed: {type(e).__name__}: {e}", taken_at=taken_at
        )

    snap = GpuSnapshot(status="ok", taken_at=taken_at)
    try:
        r = _Reader(nvml)
        scratch = GpuReading(index=-1)
        snap.driver_version = _text(r.get(scratch, "driver", "nvmlSystemGetDriverVersion"))
        cuda = r.first(
            scratch,
            "cuda",
            [("nvmlSystemGetCudaDriverVersion_v2", ()), ("nvmlSystemGetCudaDriverVersion", ())],
        )
        snap.cuda_version = format_cuda_version(int(cuda)) if cuda else None
        count = nvml.nvmlDeviceGetCount()
        for index in range(count):
            snap.gpus.append(_read_device(r, index))
    except Exception as e:
        snap.status = "error"
        snap.reason = f"{type(e).__name__}: {e}"
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception as e:
            log.debug("nvmlShutdown failed: %s", e)
    return snap


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 1024**3:.1f} GiB"


def _field_problem(reading: GpuReading, key: str, check: str, unit: str | None) -> CheckResult | None:
    """A check for a field NVML did not give: error when it failed, skipped when unsupported."""
    target = str(reading.index)
    err = reading.errors.get(key) or reading.errors.get("handle")
    if err:
        return CheckResult(check=check, target=target, status=Status.ERROR, unit=unit, detail=f"NVML: {err}")
    if key in reading.unsupported:
        return CheckResult(
            check=check, target=target, status=Status.SKIPPED, unit=unit, detail="not supported by this GPU"
        )
    return None


def check_gpus(
    snapshot: GpuSnapshot,
    memory_alert_percent: float,
    temperature_margin_c: float,
    temperature_alert_c: float,
) -> list[CheckResult]:
    """Memory and temperature per GPU, plus ECC and row-remap checks where the GPU reports them."""
    if snapshot.status != "ok":
        status = Status.SKIPPED if snapshot.status == "skipped" else Status.ERROR
        return [CheckResult(check="gpu", target="nvml", status=status, detail=snapshot.reason or "")]
    if not snapshot.gpus:
        return [CheckResult(check="gpu", target="nvml", status=Status.SKIPPED, detail="NVML reports no GPUs")]

    out: list[CheckResult] = []
    for g in snapshot.gpus:
        target = str(g.index)
        label = f"GPU {g.index}" + (f" ({g.name})" if g.name else "")

        if g.memory_percent is None:
            out.append(
                _field_problem(g, "memory", "gpu_memory", "%")
                or CheckResult(
                    check="gpu_memory", target=target, status=Status.ERROR, unit="%", detail="no data"
                )
            )
        else:
            top = sorted(g.processes, key=lambda p: p["used_bytes"] or 0, reverse=True)[:3]
            procs = ", ".join(f"{p['name'] or '?'}[{p['pid']}] {_gib(p['used_bytes'])}" for p in top)
            over = g.memory_percent > memory_alert_percent
            out.append(
                CheckResult(
                    check="gpu_memory",
                    target=target,
                    status=Status.ALERT if over else Status.OK,
                    value=g.memory_percent,
                    unit="%",
                    threshold=memory_alert_percent,
                    detail=f"{label}: {_gib(g.memory_used_bytes)} of {_gib(g.memory_total_bytes)} used"
                    + (f"; top processes: {procs}" if procs else ""),
                )
            )

        if g.temperature_c is None:
            out.append(
                _field_problem(g, "temperature", "gpu_temperature", "°C")
                or CheckResult(
                    check="gpu_temperature", target=target, status=Status.ERROR, unit="°C", detail="no data"
                )
            )
        else:
            if g.slowdown_c is not None:
                threshold = g.slowdown_c - temperature_margin_c
                basis = f"slowdown at {g.slowdown_c:g} °C minus {temperature_margin_c:g} °C margin"
            else:
                threshold = temperature_alert_c
                basis = "no slowdown threshold reported; configured limit"
            thermal = sorted(THERMAL_REASONS.intersection(g.throttle_reasons))
            if g.temperature_c >= threshold:
                status = Status.ALERT
            elif thermal:
                status = Status.WARN
            else:
                status = Status.OK
            detail = f"{label}: {g.temperature_c:g} °C ({basis})"
            if g.shutdown_c is not None:
                detail += f"; shutdown at {g.shutdown_c:g} °C"
            if thermal:
                detail += f"; clocks reduced: {', '.join(thermal)}"
            out.append(
                CheckResult(
                    check="gpu_temperature",
                    target=target,
                    status=status,
                    value=g.temperature_c,
                    unit="°C",
                    threshold=threshold,
                    detail=detail,
                )
            )

        if g.ecc_uncorrected is not None:
            bad = g.ecc_uncorrected > 0
            out.append(
                CheckResult(
                    check="gpu_ecc",
                    target=target,
                    status=Status.ALERT if bad else Status.OK,
                    value=g.ecc_uncorrected,
                    unit="errors",
                    threshold=0,
                    detail=f"{label}: {g.ecc_uncorrected} uncorrected ECC errors since driver load"
                    + ("; check the workload's outputs and plan a GPU reset" if bad else ""),
                )
            )
        elif "ecc_uncorrected" in g.errors:
            out.append(_field_problem(g, "ecc_uncorrected", "gpu_ecc", "errors"))

        if g.remapped_pending is not None:
            if g.remapped_failed:
                status, why = Status.ALERT, "a row remap failed: the GPU needs service"
            elif g.remapped_pending:
                status, why = Status.ALERT, "a row remap is pending: reset the GPU to apply it"
            else:
                status, why = Status.OK, "no pending or failed remaps"
            rows = (g.remapped_corrected or 0) + (g.remapped_uncorrected or 0)
            out.append(
                CheckResult(
                    check="gpu_remapped_rows",
                    target=target,
                    status=status,
                    value=rows,
                    unit="rows",
                    detail=f"{label}: {rows} rows remapped "
                    f"({g.remapped_uncorrected} for uncorrected errors); {why}",
                )
            )
        elif "remapped_rows" in g.errors:
            out.append(_field_problem(g, "remapped_rows", "gpu_remapped_rows", "rows"))
    return out
