"""A stand-in for nvidia-ml-py's ``pynvml`` module, for machines without an NVIDIA driver.

It keeps the real module's function names, argument names, constants, return shapes and
error classes (``NVMLError(value)`` returns the subclass for that code), so code written
against it runs unchanged on the real library. tests/test_telemetry.py checks that every
public name here exists in the real module with the same signature or value, and, through
tests/fakes/libnvml.py (a stand-in for the C library under the real module), that every call
the collector makes returns the same types and values here as the real module returns.

Test controls (not part of NVML): :func:`configure`, :class:`FakeDevice`, :func:`advance_energy`,
:func:`init_count`, :data:`calls`.
"""

from __future__ import annotations

import string
import sys
import threading
from dataclasses import dataclass, field
from functools import wraps

# ---- constants, values copied from nvidia-ml-py 13.615.71 -----------------------------------------

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_ERROR_INSUFFICIENT_POWER = 8
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_IRQ_ISSUE = 11
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_CORRUPTED_INFOROM = 14
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_OPERATING_SYSTEM = 17
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_IN_USE = 19
NVML_ERROR_MEMORY = 20
NVML_ERROR_NO_DATA = 21
NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22
NVML_ERROR_INSUFFICIENT_RESOURCES = 23
NVML_ERROR_FREQ_NOT_SUPPORTED = 24
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
NVML_ERROR_DEPRECATED = 26
NVML_ERROR_NOT_READY = 27
NVML_ERROR_GPU_NOT_FOUND = 28
NVML_ERROR_INVALID_STATE = 29
NVML_ERROR_RESET_TYPE_NOT_SUPPORTED = 30
NVML_ERROR_UNKNOWN = 999

NVML_TEMPERATURE_THRESHOLD_SHUTDOWN = 0
NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1
NVML_TEMPERATURE_THRESHOLD_MEM_MAX = 2
NVML_TEMPERATURE_THRESHOLD_GPU_MAX = 3

NVML_TEMPERATURE_GPU = 0

NVML_VOLATILE_ECC = 0
NVML_AGGREGATE_ECC = 1
NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1

nvmlTemperature_v1 = 0x100000C
nvmlMemory_v2 = 0x02000028

nvmlClocksEventReasonGpuIdle = 0x0000000000000001
nvmlClocksEventReasonApplicationsClocksSetting = 0x0000000000000002
nvmlClocksEventReasonSwPowerCap = 0x0000000000000004
nvmlClocksEventReasonHwSlowdown = 0x0000000000000008
nvmlClocksEventReasonSyncBoost = 0x0000000000000010
nvmlClocksEventReasonSwThermalSlowdown = 0x0000000000000020
nvmlClocksEventReasonHwThermalSlowdown = 0x0000000000000040
nvmlClocksEventReasonHwPowerBrakeSlowdown = 0x0000000000000080
nvmlClocksEventReasonDisplayClockSetting = 0x0000000000000100
nvmlClocksEventReasonNone = 0x0000000000000000
nvmlClocksThrottleReasonGpuIdle = 0x0000000000000001
nvmlClocksThrottleReasonHwThermalSlowdown = 0x0000000000000040
nvmlClocksThrottleReasonBoardLimit = 0x0000000000000200
nvmlClocksThrottleReasonReliability = 0x0000000000000400

_VALUE_NOT_AVAILABLE = 2**64 - 1  # the real module compares against a ctypes c_ulonglong(-1)


# ---- errors: the same mechanism as the real module -----------------------------------------------


class NVMLLibraryMismatchError(Exception):
    pass


class NVMLError(Exception):
    _valClassMapping: dict[int, type] = {}
    _errcode_to_string = {
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_ALREADY_INITIALIZED: "Already Initialized",
        NVML_ERROR_NOT_FOUND: "Not Found",
        NVML_ERROR_INSUFFICIENT_SIZE: "Insufficient Size",
        NVML_ERROR_INSUFFICIENT_POWER: "Insufficient External Power",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_TIMEOUT: "Timeout",
        NVML_ERROR_IRQ_ISSUE: "Interrupt Request Issue",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
        NVML_ERROR_CORRUPTED_INFOROM: "Corrupted infoROM",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
        NVML_ERROR_RESET_REQUIRED: "GPU requires restart",
        NVML_ERROR_OPERATING_SYSTEM: "The operating system has blocked the request.",
        NVML_ERROR_LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
        NVML_ERROR_MEMORY: "Insufficient Memory",
        NVML_ERROR_UNKNOWN: "Unknown Error",
    }

    def __new__(typ, value):
        if typ == NVMLError:
            typ = NVMLError._valClassMapping.get(value, typ)
        obj = Exception.__new__(typ)
        obj.value = value
        return obj

    def __str__(self):
        # The real module asks the library for codes it has no text for; without one it says this.
        return NVMLError._errcode_to_string.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other):
        return self.value == other.value


def nvmlExceptionClass(nvmlErrorCode):
    if nvmlErrorCode not in NVMLError._valClassMapping:
        raise ValueError(f"nvmlErrorCode {nvmlErrorCode} is not valid")
    return NVMLError._valClassMapping[nvmlErrorCode]


def _extractNVMLErrorsAsClasses():
    this_module = sys.modules[__name__]
    for err_name in [x for x in dir(this_module) if x.startswith("NVML_ERROR_")]:
        class_name = "NVMLError_" + string.capwords(err_name.replace("NVML_ERROR_", ""), "_").replace("_", "")
        err_val = getattr(this_module, err_name)

        def gen_new(val):
            def new(typ, *args):
                return NVMLError.__new__(typ, val)

            return new

        new_error_class = type(class_name, (NVMLError,), {"__new__": gen_new(err_val)})
        new_error_class.__module__ = __name__
        setattr(this_module, class_name, new_error_class)
        NVMLError._valClassMapping[err_val] = new_error_class


_extractNVMLErrorsAsClasses()


# ---- configurable fake hardware --------------------------------------------------------------------


@dataclass
class FakeDevice:
    """One GPU. A value of None makes that query raise NotSupported, like a device without the sensor."""

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    memory_total: int | None = 80 * 1024**3
    memory_used: int | None = 1 * 1024**3
    memory_reserved: int = 512 * 1024**2
    gpu_util: int | None = 0
    memory_util: int | None = 0
    temperature: int | None = 40
    slowdown: int | None = 87
    shutdown: int | None = 92
    power_mw: int | None = 70_000
    power_limit_mw: int | None = 700_000
    energy_mj: int | None = 0
    clock_reasons: int | None = 0
    ecc_uncorrected_volatile: int | None = 0
    ecc_corrected_volatile: int | None = 0
    remapped: tuple[int, int, int, int] | None = (0, 0, 0, 0)  # corrected, uncorrected, pending, failure
    processes: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, used bytes)
    process_names: dict[int, str] = field(default_factory=dict)  # what nvmlSystemGetProcessName answers
    # NVML function name -> error code it raises for this device; "*": every query that takes a handle.
    errors: dict[str, int] = field(default_factory=dict)


class _Handle:
    """Opaque device handle (the real one is a ctypes pointer)."""

    def __init__(self, index: int):
        self.index = index

    def __repr__(self):
        return f"<fake nvmlDevice {self.index}>"


class _State:
    def __init__(self):
        self.lock = threading.Lock()
        self.refcount = 0
        self.devices: list[FakeDevice] = []
        self.driver = "550.54.15"
        self.cuda = 12040
        self.init_error: int | None = None
        self.missing: set[str] = set()


_state = _State()
calls: list[str] = []  # every NVML function called, in order (test inspection)


def configure(
    devices: list[FakeDevice | dict] | None = None,
    driver: str = "550.54.15",
    cuda: int = 12040,
    init_error: int | type | None = None,
    missing: tuple[str, ...] | list[str] = (),
) -> None:
    """Reset the fake: devices, driver strings, an error nvmlInit raises, NVML functions the driver lacks."""
    if isinstance(init_error, type) and issubclass(init_error, NVMLError):
        init_error = init_error().value
    with _state.lock:
        _state.refcount = 0
        _state.devices = [d if isinstance(d, FakeDevice) else FakeDevice(**d) for d in (devices or [])]
        _state.driver = driver
        _state.cuda = cuda
        _state.init_error = init_error
        _state.missing = set(missing)
    calls.clear()


def device(index: int) -> FakeDevice:
    """The FakeDevice behind an index, to change readings between collections."""
    return _state.devices[index]


def advance_energy(index: int, millijoules: int) -> int:
    dev = _state.devices[index]
    dev.energy_mj = (dev.energy_mj or 0) + millijoules
    return dev.energy_mj


def init_count() -> int:
    """How many nvmlInit calls are not yet matched by nvmlShutdown."""
    return _state.refcount


# ---- NVML API ---------------------------------------------------------------------------------------


def _api(func):
    """Record the call, refuse when not initialized, mimic a driver that lacks the function."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        calls.append(func.__name__)
        if _state.refcount <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        if func.__name__ in _state.missing:
            raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)
        return func(*args, **kwargs)

    return wrapper


def _dev(handle, fn_name: str) -> FakeDevice:
    if not isinstance(handle, _Handle) or not 0 <= handle.index < len(_state.devices):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    dev = _state.devices[handle.index]
    # "*" is for queries on a handle; a GPU lost after init still hands out its handle.
    default = None if fn_name == "nvmlDeviceGetHandleByIndex" else dev.errors.get("*")
    code = dev.errors.get(fn_name, default)
    if code is not None:
        raise NVMLError(code)
    return dev


def _supported(value):
    if value is None:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return value


class _Struct:
    """Attribute bag standing in for a ctypes structure (c_nvmlMemory_t, c_nvmlUtilization_t)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class nvmlFriendlyObject:
    def __init__(self, dictionary):
        for x in dictionary:
            setattr(self, x, dictionary[x])

    def __str__(self):
        return self.__dict__.__str__()


def nvmlInitWithFlags(flags):
    calls.append("nvmlInitWithFlags")
    if _state.init_error is not None:
        raise NVMLError(_state.init_error)
    with _state.lock:
        _state.refcount += 1


def nvmlInit():
    nvmlInitWithFlags(0)


def nvmlShutdown():
    calls.append("nvmlShutdown")
    with _state.lock:
        if _state.refcount <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        _state.refcount -= 1


@_api
def nvmlSystemGetDriverVersion():
    return _state.driver


@_api
def nvmlSystemGetCudaDriverVersion():
    return _state.cuda


@_api
def nvmlSystemGetCudaDriverVersion_v2():
    return _state.cuda


@_api
def nvmlSystemGetProcessName(pid):
    for dev in _state.devices:
        if pid in dev.process_names:
            return dev.process_names[pid]
    raise NVMLError(NVML_ERROR_NOT_FOUND)


@_api
def nvmlDeviceGetCount():
    return len(_state.devices)


@_api
def nvmlDeviceGetHandleByIndex(index):
    if not 0 <= index < len(_state.devices):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    _dev(_Handle(index), "nvmlDeviceGetHandleByIndex")
    return _Handle(index)


@_api
def nvmlDeviceGetName(handle):
    return _dev(handle, "nvmlDeviceGetName").name


@_api
def nvmlDeviceGetUUID(handle):
    # str, like every string the real module returns (its convertStrBytes decodes the C bytes).
    return _dev(handle, "nvmlDeviceGetUUID").uuid


@_api
def nvmlDeviceGetMemoryInfo(handle, version=None):
    dev = _dev(handle, "nvmlDeviceGetMemoryInfo")
    total, used = _supported(dev.memory_total), _supported(dev.memory_used)
    if not version:
        return _Struct(total=total, free=total - used, used=used)
    if version != nvmlMemory_v2:
        raise NVMLError(NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
    used_v2 = max(used - dev.memory_reserved, 0)
    return _Struct(
        version=version, total=total, reserved=dev.memory_reserved, free=total - used, used=used_v2
    )


@_api
def nvmlDeviceGetUtilizationRates(handle):
    dev = _dev(handle, "nvmlDeviceGetUtilizationRates")
    return _Struct(gpu=_supported(dev.gpu_util), memory=_supported(dev.memory_util))


@_api
def nvmlDeviceGetTemperature(handle, sensor):
    dev = _dev(handle, "nvmlDeviceGetTemperature")
    if sensor != NVML_TEMPERATURE_GPU:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return _supported(dev.temperature)


@_api
def nvmlDeviceGetTemperatureV(handle, sensor, version=nvmlTemperature_v1):
    if version != nvmlTemperature_v1:
        raise NVMLError(NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
    dev = _dev(handle, "nvmlDeviceGetTemperatureV")
    if sensor != NVML_TEMPERATURE_GPU:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return _supported(dev.temperature)


@_api
def nvmlDeviceGetTemperatureThreshold(handle, threshold):
    dev = _dev(handle, "nvmlDeviceGetTemperatureThreshold")
    if threshold == NVML_TEMPERATURE_THRESHOLD_SLOWDOWN:
        return _supported(dev.slowdown)
    if threshold == NVML_TEMPERATURE_THRESHOLD_SHUTDOWN:
        return _supported(dev.shutdown)
    raise NVMLError(NVML_ERROR_NOT_SUPPORTED)


@_api
def nvmlDeviceGetPowerUsage(handle):
    return _supported(_dev(handle, "nvmlDeviceGetPowerUsage").power_mw)


@_api
def nvmlDeviceGetEnforcedPowerLimit(handle):
    return _supported(_dev(handle, "nvmlDeviceGetEnforcedPowerLimit").power_limit_mw)


@_api
def nvmlDeviceGetTotalEnergyConsumption(handle):
    return _supported(_dev(handle, "nvmlDeviceGetTotalEnergyConsumption").energy_mj)


@_api
def nvmlDeviceGetCurrentClocksEventReasons(handle):
    return _supported(_dev(handle, "nvmlDeviceGetCurrentClocksEventReasons").clock_reasons)


@_api
def nvmlDeviceGetCurrentClocksThrottleReasons(handle):
    return _supported(_dev(handle, "nvmlDeviceGetCurrentClocksThrottleReasons").clock_reasons)


@_api
def nvmlDeviceGetTotalEccErrors(handle, errorType, counterType):
    dev = _dev(handle, "nvmlDeviceGetTotalEccErrors")
    if counterType not in (NVML_VOLATILE_ECC, NVML_AGGREGATE_ECC):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    if errorType == NVML_MEMORY_ERROR_TYPE_UNCORRECTED:
        return _supported(dev.ecc_uncorrected_volatile)
    if errorType == NVML_MEMORY_ERROR_TYPE_CORRECTED:
        return _supported(dev.ecc_corrected_volatile)
    raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)


@_api
def nvmlDeviceGetRemappedRows(device):
    return tuple(_supported(_dev(device, "nvmlDeviceGetRemappedRows").remapped))


def nvmlDeviceGetComputeRunningProcesses(handle):
    # Like the real module: the unversioned name turns a missing driver function into a mismatch error.
    try:
        return nvmlDeviceGetComputeRunningProcesses_v3(handle)
    except NVMLError_FunctionNotFound:  # noqa: F821 - created by _extractNVMLErrorsAsClasses
        raise NVMLLibraryMismatchError(
            "Unversioned function called and the pyNVML version does not match the NVML lib version. "
            "Either use matching pyNVML and NVML lib versions or use a versioned function such as "
            "nvmlDeviceGetComputeRunningProcesses_v2"
        ) from None


@_api
def nvmlDeviceGetComputeRunningProcesses_v3(handle):
    dev = _dev(handle, "nvmlDeviceGetComputeRunningProcesses")
    procs = []
    for pid, used in dev.processes:
        if used == _VALUE_NOT_AVAILABLE:
            used = None
        procs.append(
            nvmlFriendlyObject(
                {
                    "pid": pid,
                    "usedGpuMemory": used,
                    "gpuInstanceId": 0xFFFFFFFF,
                    "computeInstanceId": 0xFFFFFFFF,
                }
            )
        )
    return procs
