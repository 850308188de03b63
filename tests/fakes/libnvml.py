"""A stand-in for the C library libnvidia-ml.so.1, answering from the fake pynvml's devices.

Why: the fake ``pynvml`` (tests/fakes/pynvml.py) replaces the real Python module, so nothing
but this check keeps its return types honest (the real ``nvmlDeviceGetUUID`` returns ``str``
through its own bytes-to-str wrapper; a fake that returns bytes would hide a bug). Installed
as the real module's ``nvmlLib``, this library lets the real pynvml's own Python code (its
ctypes structures, string conversion, error classes, version fallbacks) run without a GPU, on
the same devices the fake module serves, so a test can compare the two answer for answer.

Only the C functions llm_upkeep.telemetry reaches are here; any other name is missing, which
the real module reports as NVML_ERROR_FUNCTION_NOT_FOUND, as an old driver would.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from typing import Any

from tests.fakes import pynvml as fake

SUCCESS = fake.NVML_SUCCESS


def _out(arg: Any) -> Any:
    """The ctypes object behind ``byref(obj)``, as a C function would write through it."""
    return arg._obj


def _index(handle: Any) -> int:
    return (ctypes.cast(handle, ctypes.c_void_p).value or 0) - 1


class FakeNvmlLib:
    """Attribute access returns a C-like function (ints in, NVML return code out)."""

    def __init__(self) -> None:
        self.initialized = 0

    def __getattr__(self, name: str) -> Callable[..., int]:
        impl = getattr(type(self), "_c_" + name, None)
        if impl is None or name in fake._state.missing:
            raise AttributeError(name)

        def call(*args: Any) -> int:
            if name != "nvmlInitWithFlags" and self.initialized <= 0:
                return fake.NVML_ERROR_UNINITIALIZED
            try:
                return impl(self, *args) or SUCCESS
            except fake.NVMLError as e:  # the device's configured error, or NotSupported
                return e.value

        return call

    # ---- the fake device behind a handle, with its configured errors ----------------------------
    @staticmethod
    def _device(handle: Any, c_name: str) -> fake.FakeDevice:
        index = _index(handle)
        if not 0 <= index < len(fake._state.devices):
            raise fake.NVMLError(fake.NVML_ERROR_INVALID_ARGUMENT)
        return fake._dev(fake._Handle(index), re.sub(r"_v\d$", "", c_name))

    # ---- init -----------------------------------------------------------------------------------
    def _c_nvmlInitWithFlags(self, flags: int) -> int:
        if fake._state.init_error is not None:
            return fake._state.init_error
        self.initialized += 1
        return SUCCESS

    def _c_nvmlShutdown(self) -> int:
        self.initialized -= 1
        return SUCCESS

    # ---- system -----------------------------------------------------------------------------------
    def _c_nvmlSystemGetDriverVersion(self, buf: Any, size: Any) -> None:
        buf.value = fake._state.driver.encode()

    def _c_nvmlSystemGetCudaDriverVersion(self, out: Any) -> None:
        _out(out).value = fake._state.cuda

    _c_nvmlSystemGetCudaDriverVersion_v2 = _c_nvmlSystemGetCudaDriverVersion

    def _c_nvmlSystemGetProcessName(self, pid: Any, buf: Any, size: Any) -> int:
        for dev in fake._state.devices:
            if pid.value in dev.process_names:
                buf.value = dev.process_names[pid.value].encode()
                return SUCCESS
        return fake.NVML_ERROR_NOT_FOUND

    # ---- devices ----------------------------------------------------------------------------------
    def _c_nvmlDeviceGetCount_v2(self, out: Any) -> None:
        _out(out).value = len(fake._state.devices)

    def _c_nvmlDeviceGetHandleByIndex_v2(self, index: Any, out: Any) -> None:
        i = index.value
        if not 0 <= i < len(fake._state.devices):
            raise fake.NVMLError(fake.NVML_ERROR_INVALID_ARGUMENT)
        fake._dev(fake._Handle(i), "nvmlDeviceGetHandleByIndex")
        # The handle is an opaque pointer; its address carries the index (+1, so never NULL).
        ptr = ctypes.c_void_p(i + 1)
        ctypes.memmove(ctypes.addressof(_out(out)), ctypes.addressof(ptr), ctypes.sizeof(ptr))

    def _c_nvmlDeviceGetName(self, handle: Any, buf: Any, size: Any) -> None:
        buf.value = self._device(handle, "nvmlDeviceGetName").name.encode()

    def _c_nvmlDeviceGetUUID(self, handle: Any, buf: Any, size: Any) -> None:
        buf.value = self._device(handle, "nvmlDeviceGetUUID").uuid.encode()

    def _c_nvmlDeviceGetMemoryInfo(self, handle: Any, out: Any) -> None:
        dev = self._device(handle, "nvmlDeviceGetMemoryInfo")
        mem = _out(out)
        mem.total, mem.used = fake._supported(dev.memory_total), fake._supported(dev.memory_used)
        mem.free = mem.total - mem.used

    def _c_nvmlDeviceGetMemoryInfo_v2(self, handle: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetMemoryInfo_v2")
        mem = _out(out)
        if mem.version != fake.nvmlMemory_v2:
            return fake.NVML_ERROR_ARGUMENT_VERSION_MISMATCH
        total, used = fake._supported(dev.memory_total), fake._supported(dev.memory_used)
        mem.total, mem.reserved, mem.free = total, dev.memory_reserved, total - used
        mem.used = max(used - dev.memory_reserved, 0)
        return SUCCESS

    def _c_nvmlDeviceGetUtilizationRates(self, handle: Any, out: Any) -> None:
        dev = self._device(handle, "nvmlDeviceGetUtilizationRates")
        util = _out(out)
        util.gpu, util.memory = fake._supported(dev.gpu_util), fake._supported(dev.memory_util)

    def _c_nvmlDeviceGetTemperature(self, handle: Any, sensor: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetTemperature")
        if sensor.value != fake.NVML_TEMPERATURE_GPU:
            return fake.NVML_ERROR_INVALID_ARGUMENT
        _out(out).value = fake._supported(dev.temperature)
        return SUCCESS

    def _c_nvmlDeviceGetTemperatureV(self, handle: Any, out: Any) -> int:
        temp = _out(out)
        if temp.version != fake.nvmlTemperature_v1:
            return fake.NVML_ERROR_ARGUMENT_VERSION_MISMATCH
        dev = self._device(handle, "nvmlDeviceGetTemperatureV")
        if temp.sensorType != fake.NVML_TEMPERATURE_GPU:
            return fake.NVML_ERROR_INVALID_ARGUMENT
        temp.temperature = fake._supported(dev.temperature)
        return SUCCESS

    def _c_nvmlDeviceGetTemperatureThreshold(self, handle: Any, threshold: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetTemperatureThreshold")
        values = {
            fake.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: dev.slowdown,
            fake.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: dev.shutdown,
        }
        _out(out).value = fake._supported(values.get(threshold.value))
        return SUCCESS

    def _c_nvmlDeviceGetPowerUsage(self, handle: Any, out: Any) -> None:
        _out(out).value = fake._supported(self._device(handle, "nvmlDeviceGetPowerUsage").power_mw)

    def _c_nvmlDeviceGetEnforcedPowerLimit(self, handle: Any, out: Any) -> None:
        dev = self._device(handle, "nvmlDeviceGetEnforcedPowerLimit")
        _out(out).value = fake._supported(dev.power_limit_mw)

    def _c_nvmlDeviceGetTotalEnergyConsumption(self, handle: Any, out: Any) -> None:
        dev = self._device(handle, "nvmlDeviceGetTotalEnergyConsumption")
        _out(out).value = fake._supported(dev.energy_mj)

    def _c_nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any, out: Any) -> None:
        dev = self._device(handle, "nvmlDeviceGetCurrentClocksEventReasons")
        _out(out).value = fake._supported(dev.clock_reasons)

    def _c_nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: Any, out: Any) -> None:
        dev = self._device(handle, "nvmlDeviceGetCurrentClocksThrottleReasons")
        _out(out).value = fake._supported(dev.clock_reasons)

    def _c_nvmlDeviceGetTotalEccErrors(self, handle: Any, error_type: Any, counter: Any, out: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetTotalEccErrors")
        if counter.value not in (fake.NVML_VOLATILE_ECC, fake.NVML_AGGREGATE_ECC):
            return fake.NVML_ERROR_INVALID_ARGUMENT
        values = {
            fake.NVML_MEMORY_ERROR_TYPE_UNCORRECTED: dev.ecc_uncorrected_volatile,
            fake.NVML_MEMORY_ERROR_TYPE_CORRECTED: dev.ecc_corrected_volatile,
        }
        if error_type.value not in values:
            return fake.NVML_ERROR_INVALID_ARGUMENT
        _out(out).value = fake._supported(values[error_type.value])
        return SUCCESS

    def _c_nvmlDeviceGetRemappedRows(self, handle: Any, *outs: Any) -> None:
        values = fake._supported(self._device(handle, "nvmlDeviceGetRemappedRows").remapped)
        for out, value in zip(outs, values, strict=True):
            _out(out).value = value

    def _c_nvmlDeviceGetComputeRunningProcesses_v3(self, handle: Any, count: Any, procs: Any) -> int:
        dev = self._device(handle, "nvmlDeviceGetComputeRunningProcesses_v3")
        n = _out(count)
        if procs is None:  # the size query
            if not dev.processes:
                n.value = 0
                return SUCCESS
            n.value = len(dev.processes)
            return fake.NVML_ERROR_INSUFFICIENT_SIZE
        if n.value < len(dev.processes):
            return fake.NVML_ERROR_INSUFFICIENT_SIZE
        for i, (pid, used) in enumerate(dev.processes):
            procs[i].pid = pid
            procs[i].usedGpuMemory = fake._VALUE_NOT_AVAILABLE if used is None else used
            procs[i].gpuInstanceId = procs[i].computeInstanceId = 0xFFFFFFFF
        n.value = len(dev.processes)
        return SUCCESS
