"""The memory-leak rule on hosts whose servers pre-allocate GPU memory: a vLLM host at 93-97 %
steady use neither alerts nor restarts; a process growing 2 % a day does. Unit tests on the rule,
then daily health end to end (simulated vLLM /metrics, fake NVML, real restart command)."""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llm_upkeep.checks import Status
from llm_upkeep.servermetrics import store
from llm_upkeep.servermetrics.config import ServerMetricsConfig
from llm_upkeep.servermetrics.leak import check_memory_trends, theil_sen_slope
from llm_upkeep.telemetry import GpuReading, GpuSnapshot
from tests.fakes import pynvml as fake_nvml

GIB = 1024**3
TOTAL = 80 * GIB
PID = 4_000_123  # no such process here: NVML names it, not psutil


def snapshot(
    at: datetime, used: int, pid: int = PID, name: str = "python3 -m vllm.entrypoints.openai.api_server"
):
    g = GpuReading(index=0, name="H100", memory_used_bytes=used, memory_total_bytes=TOTAL,
                   memory_percent=100.0 * used / TOTAL,
                   processes=[{"pid": pid, "name": name, "used_bytes": used}])  # fmt: skip
    return GpuSnapshot(status="ok", taken_at=at, gpus=[g])


def steady_percents(n: int, seed: int = 7) -> list[float]:
    rnd = random.Random(seed)
    return [rnd.uniform(93.0, 97.0) for _ in range(n)]


def growing_percents(n: int, per_day: float = 2.0, start: float = 80.0) -> list[float]:
    return [start + per_day * i for i in range(n)]


def plant(state_dir, now, percents, *, step_h=24.0, running=0.0, pid=PID, host="local"):
    """Samples ending one step before now, oldest first, as host `host` recorded them."""
    n = len(percents)
    for i, pct in enumerate(percents):
        at = now - timedelta(hours=step_h * (n - i))
        store.append_process_samples(state_dir, snapshot(at, int(TOTAL * pct / 100), pid), running=running,
                                     preallocating=True, host=host)  # fmt: skip


def trends(state_dir, now, running=0.0, cfg=None):
    cfg = cfg or ServerMetricsConfig()
    df = store.read_process_samples(state_dir, "local", now - timedelta(days=cfg.leak_window_days))
    return check_memory_trends(df, cfg, now, running)


NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def test_steady_93_to_97_percent_is_not_a_leak(state_dir):
    plant(state_dir, NOW, steady_percents(8))
    store.append_process_samples(state_dir, snapshot(NOW, int(TOTAL * 0.96)), running=0.0)
    (c,) = trends(state_dir, NOW)
    assert c.status == Status.OK and abs(c.value) < 0.5, c.public()


def test_two_percent_a_day_is_a_leak(state_dir):
    plant(state_dir, NOW, growing_percents(6))
    store.append_process_samples(state_dir, snapshot(NOW, int(TOTAL * 0.92)), running=0.0)
    (c,) = trends(state_dir, NOW)
    assert c.status == Status.ALERT and 1.9 < c.value < 2.1, c.public()
    assert "memory leak" in c.detail


def test_hourly_noise_around_a_daily_growth_still_shows_the_growth(state_dir):
    rnd = random.Random(3)
    pcts = [70 + 2.0 * h / 24 + rnd.uniform(-1.5, 1.5) for h in range(72)]
    plant(state_dir, NOW, pcts, step_h=1.0)
    (c,) = trends(state_dir, NOW - timedelta(hours=1))
    assert c.status == Status.ALERT and 1.5 < c.value < 2.5


def test_a_restart_starts_a_new_trend(state_dir):
    plant(state_dir, NOW, growing_percents(6), pid=1111)  # the old process leaked, then was restarted
    plant(state_dir, NOW - timedelta(hours=1), steady_percents(2), step_h=1.0)  # new pid, 2 h of history
    store.append_process_samples(state_dir, snapshot(NOW, int(TOTAL * 0.95)), running=0.0)
    (c,) = trends(state_dir, NOW)
    assert c.status == Status.SKIPPED and "need 4" in c.detail


def test_only_comparable_load_counts(state_dir):
    # Busy samples hold more memory (a growing pool would look like a leak): they are left out.
    plant(state_dir, NOW, [95.0] * 6, running=0.0)
    for i, pct in enumerate([85.0, 88.0, 91.0, 94.0]):
        at = NOW - timedelta(hours=24 * (4 - i) + 12)
        store.append_process_samples(state_dir, snapshot(at, int(TOTAL * pct / 100)), running=40.0)
    store.append_process_samples(state_dir, snapshot(NOW, int(TOTAL * 0.95)), running=0.0)
    (c,) = trends(state_dir, NOW, running=0.0)
    assert c.status == Status.OK and c.value == 0 and "7 samples" in c.detail  # the 4 busy ones left out
    (busy,) = trends(state_dir, NOW, running=41.0)  # judged at busy load: only the busy samples
    assert (
        busy.status == Status.ALERT
        and busy.value == pytest.approx(3.0, abs=0.05)
        and "4 samples" in busy.detail
    )


def test_theil_sen_ignores_one_wild_sample():
    xs = [0, 1, 2, 3, 4, 5, 6]
    ys = [95, 95, 95, 40, 95, 95, 95]
    assert theil_sen_slope(xs, ys) == 0


# ----------------------------------------------------------------- daily health, end to end


@pytest.fixture
def vllm_host(monkeypatch):
    def configure(used_fraction: float):
        used = int(TOTAL * used_fraction)
        fake_nvml.configure(devices=[fake_nvml.FakeDevice(memory_used=used, memory_total=TOTAL,
                                                          processes=[(PID, used)],
                                                          process_names={PID: "vllm-serve"})])  # fmt: skip
        monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)

    return configure


def make_config(tmp_path, sim, marker: Path):
    import tomli_w

    cmd = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('r')"]
    data = {
        "state_dir": str(tmp_path / "state"),
        "endpoints": [{"name": "vllm", "api": "openai", "url": sim.url, "model": sim.behavior.model}],
        "health": {"disk_paths": [str(tmp_path)], "probe_retries": 0, "probe_max_tokens": 8},
        "restart": {"dry_run": False, "command": cmd, "max_per_day": 2, "recover_timeout_s": 5},
    }
    p = tmp_path / "llm-upkeep.toml"
    p.write_text(tomli_w.dumps(data))
    return str(p)


def vllm_config(tmp_path, sim_factory, kv: float):
    """A simulated idle vLLM (its recorded /metrics), a config that really restarts it, and the sim."""
    recorded = (Path(__file__).parent / "fixtures/server_metrics/vllm_v1.prom").read_text()
    values = {"vllm:kv_cache_usage_perc": kv, "vllm:num_requests_running": 0, "vllm:num_requests_waiting": 0}
    sim = sim_factory(ttft_s=0.02, itl_s=0.002, tokens=4, metrics_text=recorded, metrics_values=values)
    marker = tmp_path / "restarted"
    return make_config(tmp_path, sim, marker), marker, sim


def run(cfg_path):
    from flows.daily_health import daily_health

    return asyncio.run(daily_health(config_path=cfg_path, chain_runbook=False))


def by(result, check, target=None):
    (c,) = [c for c in result.checks if c.check == check and (target is None or c.target == target)]
    return c


@pytest.mark.prefect
def test_vllm_host_at_95_percent_steady_does_not_alert_or_restart(
    prefect_harness, sim_factory, vllm_host, tmp_path
):
    vllm_host(0.965)  # over the 95 % device alert level: the old rule restarted here
    cfg, marker, _ = vllm_config(tmp_path, sim_factory, kv=0.41)
    now = datetime.now(UTC)
    plant(tmp_path / "state", now, steady_percents(7))
    result = run(cfg)
    assert by(result, "gpu_memory", "0").status == "ok"
    assert "pre-allocate" in by(result, "gpu_memory", "0").detail
    trend = by(result, "gpu_memory_trend")
    assert trend.status == "ok" and trend.target == f"0:vllm-serve[{PID}]", trend.public()
    assert by(result, "kv_cache_usage", "vllm").value == 41.0
    assert by(result, "requests_waiting", "vllm").value == 0
    assert result.actions == [] and not marker.exists()
    assert result.status == "ok", [c.public() for c in result.checks if c.status != "ok"]


@pytest.mark.prefect
def test_vllm_process_growing_2_percent_a_day_restarts(prefect_harness, sim_factory, vllm_host, tmp_path):
    vllm_host(0.94)  # under the device alert level: only the trend can tell
    cfg, marker, _ = vllm_config(tmp_path, sim_factory, kv=0.3)
    plant(tmp_path / "state", datetime.now(UTC), growing_percents(7))  # 80 % -> 92 %, then 94 % now
    result = run(cfg)
    assert by(result, "gpu_memory", "0").status == "ok"  # the device total is still not the signal
    trend = by(result, "gpu_memory_trend")
    assert trend.status == "alert" and 1.8 < trend.value < 2.3, trend.public()
    (a,) = result.actions
    assert a.decision == "executed" and "GPU memory growing" in a.reason and marker.read_text() == "r"
    assert result.status == "degraded"


def test_quick_check_on_a_vllm_host_at_96_percent_is_ok(sim_factory, vllm_host, tmp_path):
    """`llm-upkeep check` (no Prefect, no history) applies the same rule: the device total of a
    pre-allocating host is not a leak, and the server's own figures are shown."""
    from llm_upkeep.config import load_config
    from llm_upkeep.quick_check import run_quick_check

    vllm_host(0.965)
    cfg_path, marker, _ = vllm_config(tmp_path, sim_factory, kv=0.41)
    res = asyncio.run(run_quick_check(load_config(cfg_path)))
    assert by(res, "gpu_memory", "0").status == "ok" and "pre-allocate" in by(res, "gpu_memory", "0").detail
    assert by(res, "kv_cache_usage", "vllm").value == 41.0
    assert res.status == "ok", [c.public() for c in res.checks if c.status != "ok"]
    assert not (tmp_path / "state" / "history.sqlite").exists()  # read-only


def fleet_part(cfg_path: str) -> str:
    """The same host as one host of a fleet: its endpoint on gpu-a, listed in [fleet]."""
    import tomllib

    import tomli_w

    data = tomllib.loads(Path(cfg_path).read_text())
    data["endpoints"][0]["host"] = "gpu-a"
    data["fleet"] = {"hosts": [{"name": "gpu-a"}]}
    Path(cfg_path).write_text(tomli_w.dumps(data))
    return cfg_path


def run_part(cfg_path):
    """A fleet host's first daily-health part, as the central run sends it: no probes."""
    from flows.daily_health import daily_health

    return asyncio.run(daily_health(config_path=cfg_path, chain_runbook=False, scope="host", host="gpu-a",
                                    probe=False))  # fmt: skip


def generations(sim) -> list[str]:
    return [r["path"] for r in sim.requests if r["path"] != "/metrics"]


@pytest.mark.prefect
def test_a_fleet_host_part_sent_without_probes_still_reads_its_servers_metrics(
    prefect_harness, sim_factory, vllm_host, tmp_path
):
    """The central run probes; the host's part must still read its own servers' /metrics, or its
    GPU check would fall back to the device-total rule and alert on a pre-allocating vLLM."""
    vllm_host(0.965)
    cfg, marker, sim = vllm_config(tmp_path, sim_factory, kv=0.41)
    plant(tmp_path / "state", datetime.now(UTC), steady_percents(7), host="gpu-a")
    result = run_part(fleet_part(cfg))
    assert generations(sim) == [] and not [c for c in result.checks if c.check == "ttft"]  # probed once, centrally
    assert by(result, "gpu_memory", "0").status == "ok" and "pre-allocate" in by(result, "gpu_memory", "0").detail
    assert by(result, "kv_cache_usage", "vllm").value == 41.0
    assert result.actions == [] and not marker.exists()
    assert result.status == "ok", [c.public() for c in result.checks if c.status != "ok"]


@pytest.mark.prefect
def test_a_fleet_host_part_without_probes_restarts_its_own_endpoint_on_a_memory_trend(
    prefect_harness, sim_factory, vllm_host, tmp_path
):
    vllm_host(0.94)
    cfg, marker, sim = vllm_config(tmp_path, sim_factory, kv=0.3)
    plant(tmp_path / "state", datetime.now(UTC), growing_percents(7), host="gpu-a")  # its own history
    result = run_part(fleet_part(cfg))
    (a,) = result.actions
    assert a.target == "vllm" and a.decision == "executed" and "GPU memory growing" in a.reason
    assert marker.read_text() == "r"
    # the recovery probe after the restart is the only generation this part sends
    assert len(generations(sim)) == 1
