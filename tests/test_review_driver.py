"""Driver drift: installed NVIDIA driver and CUDA version against the approved ones."""

from __future__ import annotations

from datetime import timedelta

from llm_upkeep import history
from llm_upkeep.review.driver import check_driver, version_key
from llm_upkeep.review.window import review_window
from llm_upkeep.telemetry import GpuReading, GpuSnapshot, collect_gpus
from tests.fakes import pynvml as fake_nvml
from tests.review_fixtures import WEEK_END

WINDOW = review_window(WEEK_END)


def snap(driver="550.54.15", cuda=12040):
    fake_nvml.configure(devices=[fake_nvml.FakeDevice()], driver=driver, cuda=cuda)
    return collect_gpus(fake_nvml)


def checks(r):
    return {c.check: c for c in r.checks}


def test_approved_driver_is_ok():
    r = check_driver(snap(), "550.54.15", "12.4")
    assert r.verdict == "ok" and r.source == "nvml"
    assert (r.installed_driver, r.installed_cuda) == ("550.54.15", "12.4")


def test_newer_than_approved_is_untested_drift():
    r = check_driver(snap("560.35.03", 12060), "550.54.15", "12.4")
    c = checks(r)
    assert r.verdict == "warn"
    assert (
        c["driver_version"].status == "warn"
        and "newer than the approved 550.54.15" in c["driver_version"].detail
    )
    assert "staging" in c["driver_version"].detail
    assert c["cuda_version"].status == "warn" and "12.6" in c["cuda_version"].detail


def test_older_than_approved_asks_for_an_update():
    r = check_driver(snap("535.183.01", 12020), "550.54.15", None)
    c = checks(r)
    assert c["driver_version"].status == "warn" and "older than the approved" in c["driver_version"].detail
    assert c["cuda_version"].status == "skipped" and "gpu.approved_cuda" in c["cuda_version"].detail


def test_nothing_approved_is_skipped_not_ok():
    r = check_driver(snap(), None, None)
    assert r.verdict == "skipped" and "nothing approved" in r.summary


def test_no_nvml_falls_back_to_the_history(state_dir):
    for i, drv in enumerate(["550.54.15", "550.54.15", "555.42.02"]):
        s = GpuSnapshot(status="ok", taken_at=WINDOW.start + timedelta(hours=i + 1), driver_version=drv,
                        cuda_version="12.5", gpus=[GpuReading(index=0, temperature_c=50.0)])  # fmt: skip
        history.append_gpu_samples(state_dir, s)
    samples = history.read_gpu_samples(state_dir, since=WINDOW.start, until=WINDOW.end)
    fake_nvml.configure(init_error=fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    no_gpu = collect_gpus(fake_nvml)
    assert no_gpu.status == "skipped"
    r = check_driver(no_gpu, "550.54.15", "12.5", samples)
    assert r.source == "history" and r.installed_driver == "555.42.02"
    assert r.seen_this_week == ["550.54.15", "555.42.02"] and "550.54.15 -> 555.42.02" in r.summary
    assert checks(r)["driver_version"].status == "warn" and checks(r)["cuda_version"].status == "ok"


def test_unknown_driver_is_skipped_with_the_reason():
    fake_nvml.configure(init_error=fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    r = check_driver(collect_gpus(fake_nvml), "550.54.15", None)
    assert r.verdict == "skipped" and "NVML Shared Library Not Found" in r.summary


def test_version_key_compares_numerically():
    assert version_key("550.100.01") > version_key("550.54.15")
    assert version_key("12.10") > version_key("12.4")
