"""GPU telemetry: the fake NVML must match real pynvml, and the collector must survive every failure."""

from __future__ import annotations

import inspect
import os
import re

import pynvml as real_nvml
import pytest

from llm_upkeep.checks import Status
from llm_upkeep.telemetry import GpuSnapshot, check_gpus, collect_gpus, decode_clock_reasons
from tests.fakes import pynvml as fake
from tests.fakes.libnvml import FakeNvmlLib

FAKE_ONLY = {"FakeDevice", "configure", "device", "advance_energy", "init_count", "calls"}
GiB = 1024**3


@pytest.fixture
def nvml():
    fake.configure(devices=[])
    yield fake
    fake.configure(devices=[])


def _public(module):
    return {n: getattr(module, n) for n in dir(module) if not n.startswith("_") and n not in FAKE_ONLY}


def _by_check(results, check, target="0"):
    found = [r for r in results if r.check == check and r.target == target]
    assert len(found) == 1, (check, target, results)
    return found[0]


# ---- the fake is a faithful stand-in ---------------------------------------------------------------


def test_fake_names_signatures_and_constants_match_real_pynvml():
    real = vars(real_nvml)
    for name, obj in _public(fake).items():
        if inspect.ismodule(obj) or name in {"annotations", "dataclass", "field", "wraps"}:
            continue
        assert name in real, f"{name} is not in the real pynvml"
        r = real[name]
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(r, BaseException)
            if issubclass(obj, fake.NVMLError) and obj is not fake.NVMLError:
                assert obj().value == r().value, name
        elif inspect.isfunction(obj):
            fs, rs = inspect.signature(obj), inspect.signature(r)
            assert [(p.name, p.default) for p in fs.parameters.values()] == [
                (p.name, p.default) for p in rs.parameters.values()
            ], name
        elif isinstance(obj, int):
            assert obj == r, name


def test_every_nvml_name_the_collector_uses_exists_in_real_pynvml_and_the_fake():
    import re

    import llm_upkeep.telemetry as telemetry

    names = set(re.findall(r"\b(nvml[A-Z]\w+|NVML_[A-Z_]+)\b(?!\*)", inspect.getsource(telemetry)))
    assert "nvmlDeviceGetRemappedRows" in names and len(names) > 20
    for name in names:
        assert hasattr(real_nvml, name), name
        assert hasattr(fake, name), name


def test_fake_has_every_real_error_class_with_the_same_code():
    codes = {n: v for n, v in vars(real_nvml).items() if n.startswith("NVML_ERROR_")}
    assert len(codes) > 25
    for name, value in codes.items():
        assert getattr(fake, name) == value
        real_cls = real_nvml.nvmlExceptionClass(value)
        fake_cls = fake.nvmlExceptionClass(value)
        assert fake_cls.__name__ == real_cls.__name__
        # Same mechanism: the base class constructor returns the subclass.
        assert type(fake.NVMLError(value)) is fake_cls
        assert type(real_nvml.NVMLError(value)) is real_cls
    assert fake.NVMLError_LibraryNotFound().value == 12
    assert fake.NVMLError_NotSupported().value == 3
    assert fake.NVMLError_Uninitialized().value == 1
    assert fake.NVMLError_GpuIsLost().value == 15
    assert str(fake.NVMLError(12)) == str(real_nvml.NVMLError(12)) == "NVML Shared Library Not Found"
    assert str(fake.NVMLError(3)) == str(real_nvml.NVMLError(3)) == "Not Supported"


def test_calls_before_init_raise_uninitialized_like_the_real_module(nvml):
    with pytest.raises(real_nvml.NVMLError_Uninitialized):
        real_nvml.nvmlDeviceGetCount()
    fake.configure(devices=[fake.FakeDevice()])
    with pytest.raises(fake.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()
    with pytest.raises(fake.NVMLError_Uninitialized):
        fake.nvmlShutdown()
    fake.nvmlInit()
    assert fake.nvmlDeviceGetCount() == 1
    fake.nvmlShutdown()
    with pytest.raises(fake.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()


def _driver_present() -> tuple[bool, str]:
    """Whether the real NVML initializes here, and if not, what it said."""
    try:
        real_nvml.nvmlInit()
    except real_nvml.NVMLError as e:
        return False, str(e)
    real_nvml.nvmlShutdown()
    return True, ""


def test_real_pynvml_on_this_machine():
    """No driver: a skip with NVML's reason, never an error. A GPU host: the real collector's
    readings, checked for sanity (this is the only test that reads real hardware)."""
    present, why = _driver_present()
    snap = collect_gpus()
    assert snap.taken_at.tzinfo is not None
    results = check_gpus(snap, 95, 5, 85)
    if not present:
        assert why in ("NVML Shared Library Not Found", "Driver Not Loaded"), why
        assert snap.status == "skipped" and why in snap.reason and snap.gpus == []
        assert [(r.check, r.status) for r in results] == [("gpu", Status.SKIPPED)]
        assert why in results[0].detail
        return
    assert snap.status == "ok", snap.reason
    assert snap.gpus, "NVML initialized but reported no GPU"
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", snap.driver_version or ""), snap.driver_version
    assert re.fullmatch(r"\d+\.\d+", snap.cuda_version or ""), snap.cuda_version
    for g in snap.gpus:
        assert g.name and g.uuid and g.uuid.startswith(("GPU-", "MIG-")), (g.name, g.uuid)
        assert g.memory_total_bytes and g.memory_total_bytes > 0
        assert 0 <= g.memory_used_bytes <= g.memory_total_bytes
        assert 0 <= g.memory_percent <= 100
        assert g.temperature_c is not None and 0 < g.temperature_c < 110, g.temperature_c
        # Thresholds are read from the device, and the slowdown comes before the shutdown.
        assert g.slowdown_c is not None and g.shutdown_c is not None, g.unsupported
        assert 50 < g.slowdown_c <= g.shutdown_c < 130, (g.slowdown_c, g.shutdown_c)
        assert g.power_w is None or 0 < g.power_w < 2000
        assert g.errors == {}, g.errors
        checks = {r.check for r in results if r.target == str(g.index)}
        assert {"gpu_memory", "gpu_temperature"} <= checks
        temp = _by_check(results, "gpu_temperature", str(g.index))
        assert temp.threshold == g.slowdown_c - 5  # the device's own limit, not the configured 85


# ---- the fake answers like the real module over the same hardware ---------------------------------


@pytest.fixture
def real_on_fake_lib(nvml, monkeypatch):
    """The real pynvml, its C library replaced by tests/fakes/libnvml.py serving the fake's devices."""
    monkeypatch.setattr(real_nvml, "nvmlLib", FakeNvmlLib())
    monkeypatch.setattr(real_nvml, "_nvmlGetFunctionPointer_cache", {})
    monkeypatch.setattr(real_nvml, "_nvmlLib_refcount", 0)
    return real_nvml


def _plain(value):
    """A return value as comparable data: ctypes structures and NVML objects by their fields."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    fields = getattr(type(value), "_fields_", None)
    if fields is not None:
        return {name: _plain(getattr(value, name)) for name, *_ in fields}
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {k: _plain(v) for k, v in vars(value).items()}
    return value


RICH_DEVICE = dict(
    name="NVIDIA H100 80GB HBM3", uuid="GPU-aaaa", memory_total=80 * GiB, memory_used=60 * GiB, gpu_util=97,
    temperature=71, slowdown=87, shutdown=92, power_mw=612_345, power_limit_mw=700_000, energy_mj=5_000_000,
    clock_reasons=0x14, ecc_uncorrected_volatile=1, ecc_corrected_volatile=7, remapped=(2, 1, 0, 0),
    processes=[(4_000_000, 10 * GiB), (4_000_001, None)], process_names={4_000_000: "/usr/bin/ollama"},
)  # fmt: skip


def test_every_call_the_collector_makes_returns_the_real_modules_types_and_values(real_on_fake_lib):
    real = real_on_fake_lib
    fake.configure(devices=[fake.FakeDevice(**RICH_DEVICE)], driver="550.54.15", cuda=12040)
    fake.nvmlInit()
    real.nvmlInit()
    fh, rh = fake.nvmlDeviceGetHandleByIndex(0), real.nvmlDeviceGetHandleByIndex(0)
    calls = [
        ("nvmlSystemGetDriverVersion", ()),
        ("nvmlSystemGetCudaDriverVersion", ()),
        ("nvmlSystemGetCudaDriverVersion_v2", ()),
        ("nvmlSystemGetProcessName", (4_000_000,)),
        ("nvmlDeviceGetCount", ()),
        ("nvmlDeviceGetName", ("H",)),
        ("nvmlDeviceGetUUID", ("H",)),
        ("nvmlDeviceGetMemoryInfo", ("H",)),
        ("nvmlDeviceGetMemoryInfo", ("H", fake.nvmlMemory_v2)),
        ("nvmlDeviceGetUtilizationRates", ("H",)),
        ("nvmlDeviceGetTemperature", ("H", fake.NVML_TEMPERATURE_GPU)),
        ("nvmlDeviceGetTemperatureV", ("H", fake.NVML_TEMPERATURE_GPU)),
        ("nvmlDeviceGetTemperatureThreshold", ("H", fake.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN)),
        ("nvmlDeviceGetTemperatureThreshold", ("H", fake.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN)),
        ("nvmlDeviceGetPowerUsage", ("H",)),
        ("nvmlDeviceGetEnforcedPowerLimit", ("H",)),
        ("nvmlDeviceGetTotalEnergyConsumption", ("H",)),
        ("nvmlDeviceGetCurrentClocksEventReasons", ("H",)),
        ("nvmlDeviceGetCurrentClocksThrottleReasons", ("H",)),
        ("nvmlDeviceGetTotalEccErrors", ("H", fake.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, fake.NVML_VOLATILE_ECC)),
        ("nvmlDeviceGetTotalEccErrors", ("H", fake.NVML_MEMORY_ERROR_TYPE_CORRECTED, fake.NVML_AGGREGATE_ECC)),
        ("nvmlDeviceGetRemappedRows", ("H",)),
        ("nvmlDeviceGetComputeRunningProcesses", ("H",)),
        ("nvmlDeviceGetComputeRunningProcesses_v3", ("H",)),
    ]  # fmt: skip
    try:
        for name, args in calls:
            got_fake = getattr(fake, name)(*[fh if a == "H" else a for a in args])
            got_real = getattr(real, name)(*[rh if a == "H" else a for a in args])
            assert type(got_fake) is type(got_real) or (
                hasattr(type(got_real), "_fields_")  # a ctypes structure: compared by its fields
            ), (name, type(got_fake), type(got_real))
            assert _plain(got_fake) == _plain(got_real), name
        assert type(real.nvmlDeviceGetUUID(rh)) is str  # what nvidia-ml-py 13.615.71 returns
    finally:
        fake.nvmlShutdown()
        real.nvmlShutdown()


def test_errors_come_back_as_the_same_classes(real_on_fake_lib):
    real = real_on_fake_lib
    fake.configure(devices=[fake.FakeDevice(slowdown=None, errors={"nvmlDeviceGetPowerUsage": 15})])
    fake.nvmlInit()
    real.nvmlInit()
    fh, rh = fake.nvmlDeviceGetHandleByIndex(0), real.nvmlDeviceGetHandleByIndex(0)
    try:
        for name, args, code in [
            ("nvmlDeviceGetTemperatureThreshold", (fake.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,), 3),
            ("nvmlDeviceGetPowerUsage", (), 15),
        ]:
            with pytest.raises(fake.NVMLError) as fe:
                getattr(fake, name)(fh, *args)
            with pytest.raises(real.NVMLError) as re_:
                getattr(real, name)(rh, *args)
            assert fe.value.value == re_.value.value == code
            assert type(fe.value).__name__ == type(re_.value).__name__
            assert str(fe.value) == str(re_.value)
    finally:
        fake.nvmlShutdown()
        real.nvmlShutdown()


@pytest.mark.parametrize(
    "setup",
    [
        {"devices": [RICH_DEVICE, {"name": "NVIDIA L4", "uuid": "GPU-bbbb", "memory_total": 24 * GiB}]},
        {"devices": [{"ecc_uncorrected_volatile": None, "remapped": None, "slowdown": None, "power_mw": None,
                      "errors": {"nvmlDeviceGetTotalEnergyConsumption": 4}},
                     {"errors": {"*": 15}}, {"errors": {"nvmlDeviceGetHandleByIndex": 4}}]},
        {"devices": [{"temperature": 66, "clock_reasons": 0x40}], "cuda": 11080,
         "missing": ("nvmlDeviceGetTemperatureV", "nvmlDeviceGetCurrentClocksEventReasons",
                     "nvmlSystemGetCudaDriverVersion_v2", "nvmlDeviceGetComputeRunningProcesses_v3")},
        {"devices": [{}], "init_error": 18},
        {"devices": [{}], "init_error": 12},
    ],
    ids=["two-gpus", "unsupported-and-lost", "old-driver", "rm-mismatch", "no-library"],
)  # fmt: skip
def test_the_collector_reads_the_same_snapshot_through_the_fake_and_the_real_module(real_on_fake_lib, setup):
    fake.configure(**setup)
    through_fake = collect_gpus(fake).model_dump(exclude={"taken_at"})
    fake.configure(**setup)
    through_real = collect_gpus(real_on_fake_lib).model_dump(exclude={"taken_at"})
    assert through_fake == through_real
    assert real_on_fake_lib.nvmlLib.initialized == 0  # the real module shut NVML down too


# ---- collection --------------------------------------------------------------------------------------


def test_collect_reads_every_field_and_shuts_nvml_down(nvml):
    me = os.getpid()
    ghost = 4_000_000  # above pid_max: psutil cannot see it, so the driver's name is used
    fake.configure(
        devices=[
            fake.FakeDevice(
                name="NVIDIA H100 80GB HBM3",
                uuid="GPU-aaaa",
                memory_total=80 * GiB,
                memory_used=60 * GiB,
                gpu_util=97,
                temperature=71,
                slowdown=87,
                shutdown=92,
                power_mw=612_345,
                power_limit_mw=700_000,
                energy_mj=5_000_000,
                clock_reasons=fake.nvmlClocksEventReasonSwPowerCap | fake.nvmlClocksEventReasonSyncBoost,
                ecc_uncorrected_volatile=0,
                remapped=(2, 1, 0, 0),
                processes=[(me, 50 * GiB), (ghost, 10 * GiB)],
                process_names={ghost: "/usr/bin/ollama"},
            ),
            {"name": "NVIDIA L4", "uuid": "GPU-bbbb", "memory_total": 24 * GiB, "memory_used": 0},
        ],
        driver="550.54.15",
        cuda=12040,
    )
    snap = collect_gpus(fake)
    assert snap.status == "ok", snap.reason
    assert snap.driver_version == "550.54.15"
    assert snap.cuda_version == "12.4"
    assert fake.init_count() == 0
    assert fake.calls[-1] == "nvmlShutdown"
    assert len(snap.gpus) == 2

    g = snap.gpus[0]
    assert (g.index, g.name, g.uuid) == (0, "NVIDIA H100 80GB HBM3", "GPU-aaaa")
    assert g.memory_used_bytes == 60 * GiB and g.memory_total_bytes == 80 * GiB
    assert g.memory_percent == 75.0
    assert g.utilization_percent == 97.0
    assert (g.temperature_c, g.slowdown_c, g.shutdown_c) == (71.0, 87.0, 92.0)
    assert g.power_w == pytest.approx(612.345)
    assert g.power_limit_w == 700.0
    assert g.energy_mj == 5_000_000
    assert g.throttle_reasons == ["sw_power_cap", "sync_boost"]
    assert g.ecc_uncorrected == 0
    assert (g.remapped_corrected, g.remapped_uncorrected, g.remapped_pending, g.remapped_failed) == (
        2,
        1,
        False,
        False,
    )
    import psutil

    assert g.processes == [
        {"pid": me, "name": psutil.Process(me).name(), "used_bytes": 50 * GiB},
        {"pid": ghost, "name": "/usr/bin/ollama", "used_bytes": 10 * GiB},
    ]
    assert g.errors == {} and g.unsupported == []
    assert snap.gpus[1].name == "NVIDIA L4" and snap.gpus[1].memory_percent == 0.0
    # The newer NVML calls are preferred when the driver has them.
    assert "nvmlDeviceGetTemperatureV" in fake.calls
    assert "nvmlDeviceGetCurrentClocksEventReasons" in fake.calls
    assert "nvmlDeviceGetTemperature" not in fake.calls
    # JSON round trip keeps everything.
    assert GpuSnapshot.model_validate_json(snap.model_dump_json()) == snap


def test_unsupported_and_failing_fields_become_none_never_a_crash(nvml):
    fake.configure(
        devices=[
            fake.FakeDevice(
                ecc_uncorrected_volatile=None,  # consumer GPU: no ECC
                remapped=None,
                slowdown=None,
                power_mw=None,
                errors={"nvmlDeviceGetTotalEnergyConsumption": fake.NVML_ERROR_NO_PERMISSION},
            ),
            fake.FakeDevice(errors={"*": fake.NVML_ERROR_GPU_IS_LOST}),  # fell off the bus
            fake.FakeDevice(errors={"nvmlDeviceGetHandleByIndex": fake.NVML_ERROR_NO_PERMISSION}),
            fake.FakeDevice(memory_used=10 * GiB),
        ]
    )
    snap = collect_gpus(fake)
    assert snap.status == "ok"
    assert fake.init_count() == 0
    g0, g1, g2, g3 = snap.gpus
    assert g0.ecc_uncorrected is None and g0.remapped_pending is None and g0.slowdown_c is None
    assert g0.power_w is None and g0.energy_mj is None
    assert set(g0.unsupported) == {"ecc_uncorrected", "remapped_rows", "slowdown", "power"}
    assert g0.errors == {"energy": "Insufficient Permissions"}
    assert g0.temperature_c == 40.0 and g0.memory_percent is not None

    assert g1.memory_used_bytes is None and g1.temperature_c is None and g1.name is None
    assert g1.errors["memory"] == "GPU is lost" and g1.errors["temperature"] == "GPU is lost"
    assert g2.errors == {"handle": "Insufficient Permissions"}
    assert g3.memory_used_bytes == 10 * GiB  # a bad device does not stop the next one

    results = check_gpus(snap, 95, 5, 85)
    # GPU 0: no ECC/remap support, so no such checks; temperature falls back to the configured limit.
    assert {r.check for r in results if r.target == "0"} == {"gpu_memory", "gpu_temperature"}
    t0 = _by_check(results, "gpu_temperature", "0")
    assert t0.threshold == 85 and t0.status == Status.OK
    lost = _by_check(results, "gpu_memory", "1")
    assert lost.status == Status.ERROR and "GPU is lost" in lost.detail
    assert _by_check(results, "gpu_ecc", "1").status == Status.ERROR
    assert _by_check(results, "gpu_memory", "2").status == Status.ERROR
    assert _by_check(results, "gpu_memory", "3").status == Status.OK


def test_older_driver_without_new_calls_falls_back(nvml):
    fake.configure(
        devices=[
            fake.FakeDevice(temperature=66, clock_reasons=fake.nvmlClocksThrottleReasonHwThermalSlowdown)
        ],
        cuda=11080,
        missing=(
            "nvmlDeviceGetTemperatureV",
            "nvmlDeviceGetCurrentClocksEventReasons",
            "nvmlSystemGetCudaDriverVersion_v2",
            "nvmlDeviceGetComputeRunningProcesses_v3",
        ),
    )
    snap = collect_gpus(fake)
    g = snap.gpus[0]
    assert g.temperature_c == 66.0
    assert g.throttle_reasons == ["hw_thermal_slowdown"]
    assert snap.cuda_version == "11.8"
    # The unversioned process call raises NVMLLibraryMismatchError (not an NVMLError) on old drivers.
    assert "processes" in g.errors and g.processes == []
    assert fake.init_count() == 0


def test_energy_counter_advances_between_readings(nvml):
    fake.configure(devices=[fake.FakeDevice(energy_mj=1_000)])
    first = collect_gpus(fake).gpus[0].energy_mj
    fake.advance_energy(0, 360_000)
    second = collect_gpus(fake).gpus[0].energy_mj
    assert second - first == 360_000


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (12, "skipped"),  # library not found
        (9, "skipped"),  # driver not loaded
        (18, "error"),  # driver upgraded without reboot: RM version mismatch
        (4, "error"),  # no permission
    ],
)
def test_init_failures(nvml, code, status):
    fake.configure(devices=[fake.FakeDevice()], init_error=code)
    snap = collect_gpus(fake)
    assert snap.status == status
    assert str(fake.NVMLError(code)) in snap.reason
    results = check_gpus(snap, 95, 5, 85)
    assert len(results) == 1 and results[0].check == "gpu" and results[0].status == status


def test_unexpected_exception_is_an_error_snapshot_and_nvml_is_shut_down(nvml, monkeypatch):
    fake.configure(devices=[fake.FakeDevice()])

    def broken(handle):
        raise RuntimeError("driver returned garbage")

    monkeypatch.setattr(fake, "nvmlDeviceGetHandleByIndex", broken)
    snap = collect_gpus(fake)
    assert snap.status == "error" and "driver returned garbage" in snap.reason
    assert fake.init_count() == 0


# ---- checks ------------------------------------------------------------------------------------------


def _snap(**device_fields) -> GpuSnapshot:
    fake.configure(devices=[fake.FakeDevice(**device_fields)])
    snap = collect_gpus(fake)
    assert snap.status == "ok"
    return snap


def test_memory_check_alerts_above_threshold(nvml):
    at = _by_check(check_gpus(_snap(memory_total=100 * GiB, memory_used=95 * GiB), 95, 5, 85), "gpu_memory")
    assert at.status == Status.OK and at.value == 95.0 and at.unit == "%" and at.threshold == 95
    over = _snap(memory_total=100 * GiB, memory_used=96 * GiB, processes=[(os.getpid(), 90 * GiB)])
    r = _by_check(check_gpus(over, 95, 5, 85), "gpu_memory")
    assert r.status == Status.ALERT and r.value == 96.0
    assert "96.0 GiB of 100.0 GiB" in r.detail and f"[{os.getpid()}] 90.0 GiB" in r.detail


def test_temperature_check_uses_the_devices_own_slowdown_threshold(nvml):
    r = _by_check(check_gpus(_snap(temperature=83, slowdown=87), 95, 5, 85), "gpu_temperature")
    assert (r.status, r.threshold, r.value, r.unit) == (Status.ALERT, 82.0, 83.0, "°C")
    r = _by_check(check_gpus(_snap(temperature=81, slowdown=87), 95, 5, 85), "gpu_temperature")
    assert r.status == Status.OK
    throttled = _snap(temperature=81, slowdown=87, clock_reasons=fake.nvmlClocksEventReasonHwThermalSlowdown)
    r = _by_check(check_gpus(throttled, 95, 5, 85), "gpu_temperature")
    assert r.status == Status.WARN and "hw_thermal_slowdown" in r.detail
    r = _by_check(check_gpus(_snap(temperature=86, slowdown=None), 95, 5, 85), "gpu_temperature")
    assert (r.status, r.threshold) == (Status.ALERT, 85)


def test_ecc_and_row_remap_checks(nvml):
    healthy = check_gpus(_snap(), 95, 5, 85)
    assert _by_check(healthy, "gpu_ecc").status == Status.OK
    assert _by_check(healthy, "gpu_remapped_rows").status == Status.OK
    r = _by_check(check_gpus(_snap(ecc_uncorrected_volatile=3), 95, 5, 85), "gpu_ecc")
    assert (r.status, r.value) == (Status.ALERT, 3)
    r = _by_check(check_gpus(_snap(remapped=(0, 1, 1, 0)), 95, 5, 85), "gpu_remapped_rows")
    assert r.status == Status.ALERT and "pending" in r.detail
    r = _by_check(check_gpus(_snap(remapped=(0, 1, 0, 1)), 95, 5, 85), "gpu_remapped_rows")
    assert r.status == Status.ALERT and "failed" in r.detail


def test_no_gpus_reported(nvml):
    fake.configure(devices=[])
    results = check_gpus(collect_gpus(fake), 95, 5, 85)
    assert [(r.check, r.status) for r in results] == [("gpu", Status.SKIPPED)]


def test_decode_clock_reasons():
    assert decode_clock_reasons(0) == []
    assert decode_clock_reasons(0x1FF) == [
        "gpu_idle",
        "applications_clocks_setting",
        "sw_power_cap",
        "hw_slowdown",
        "sync_boost",
        "sw_thermal_slowdown",
        "hw_thermal_slowdown",
        "hw_power_brake_slowdown",
        "display_clock_setting",
    ]
    assert decode_clock_reasons(0x10000) == ["unknown_0x10000"]
