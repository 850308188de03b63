"""Prometheus export: names by the conventions, text promtool accepts, atomic textfile, the
Pushgateway, the shipped rules and dashboard; and the whole path with Debian's node_exporter and
Prometheus on loopback: daily health's TTFT read back through Prometheus' query API."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.prom.config import PrometheusConfig
from llm_upkeep.prom.export import export_run, render
from llm_upkeep.prom.metrics import F, MetricSet, add_checks, add_gpus
from llm_upkeep.telemetry import GpuReading, GpuSnapshot
from tests.prom_fixtures import need, start_node_exporter, start_prometheus, start_pushgateway

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deployments" / "prometheus" / "llm-upkeep-rules.yml"
DASHBOARD = ROOT / "deployments" / "grafana" / "llm-upkeep-dashboard.json"


def sample_checks():
    return [
        CheckResult(check="endpoint_up", target="prod", status=Status.OK, value=1, unit="bool"),
        CheckResult(check="ttft", target="prod", status=Status.OK, value=0.3127, unit="s"),
        CheckResult(check="e2e_latency", target="prod", status=Status.OK, value=0.52, unit="s"),
        CheckResult(check="tokens_per_second", target="prod", status=Status.WARN, value=41.5, unit="tok/s"),
        CheckResult(check="disk_usage", target="/srv/models", status=Status.ALERT, value=91.5, unit="%"),
        CheckResult(check="endpoint_up", target='we"ird\\name', status=Status.ALERT, value=0, unit="bool"),
        CheckResult(check="gpu", target="nvml", status=Status.SKIPPED, detail="no NVML"),
        CheckResult(check="benchmark_ttft_p50_s", target="prod/openai", status=Status.OK, value=0.4, unit="s"),
    ]


def snapshot():
    return GpuSnapshot(status="ok", gpus=[GpuReading(
        index=0, uuid="GPU-1", memory_used_bytes=40 * 2**30, memory_total_bytes=80 * 2**30, utilization_percent=63.0,
        temperature_c=71.0, slowdown_c=90.0, power_w=410.5, power_limit_w=700.0, energy_mj=123_456_789,
        ecc_uncorrected=0)])  # fmt: skip


def test_names_follow_prometheus_conventions_and_promtool_accepts_the_text(tmp_path):
    promtool = need("promtool")
    ms = MetricSet()
    add_checks(ms, sample_checks(), "daily_health")
    add_gpus(ms, snapshot(), "gpu-01")
    text = render(ms)
    for fam in F.values():
        assert re.fullmatch(r"llm_upkeep_[a-z0-9_]+", fam.name)
        assert not fam.name.endswith("_total") or fam.kind == "counter"
    assert 'llm_upkeep_ttft_seconds{endpoint="prod"} 0.3127' in text
    assert 'llm_upkeep_disk_used_ratio{path="/srv/models"} 0.915' in text
    assert 'llm_upkeep_gpu_energy_joules_total{gpu="0",host="gpu-01",uuid="GPU-1"} 123456.789' in text
    assert '# TYPE llm_upkeep_gpu_energy_joules_total counter' in text
    assert 'llm_upkeep_endpoint_up{endpoint="we\\"ird\\\\name"} 0.0' in text
    assert 'llm_upkeep_check_severity{check="gpu",flow="daily_health",target="nvml"} 1.0' in text
    assert 'llm_upkeep_benchmark_ttft_p50_seconds{endpoint="prod/openai"} 0.4' in text
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def test_textfile_is_replaced_atomically_and_counters_count(tmp_path):
    d = tmp_path / "textfile"
    cfg = PrometheusConfig(textfile_dir=str(d))
    r1 = export_run(cfg, tmp_path / "state", "daily_health", "local", sample_checks(), snapshot=snapshot(),
                    duration_s=1.5, ok=False)  # fmt: skip
    r2 = export_run(cfg, tmp_path / "state", "daily_health", "local", sample_checks()[:2], duration_s=1.0, ok=True)
    assert r1.errors == [] and r2.errors == [] and r2.textfile == str(d / "llm_upkeep_daily_health.prom")
    assert sorted(p.name for p in d.iterdir()) == ["llm_upkeep_daily_health.prom"]  # no temp file left behind
    text = (d / "llm_upkeep_daily_health.prom").read_text()
    assert 'llm_upkeep_runs_total{flow="daily_health",host="local",status="degraded"} 1.0' in text
    assert 'llm_upkeep_runs_total{flow="daily_health",host="local",status="ok"} 1.0' in text
    assert "gpu_temperature" not in text  # the second run had no snapshot: its file says only what it saw
    # a textfile dir that cannot be written is reported, not raised
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    bad = export_run(PrometheusConfig(textfile_dir=str(blocker / "sub")), tmp_path / "state", "x", "local", [])
    assert bad.textfile is None and bad.errors and bad.errors[0].startswith("textfile:")


def test_pushgateway_receives_the_run(tmp_path):
    gw = start_pushgateway(tmp_path)
    try:
        cfg = PrometheusConfig(pushgateway_url=gw.url, job="llm_upkeep")
        res = export_run(cfg, tmp_path / "state", "daily_health", "gpu-01", sample_checks(), duration_s=2.0)
        assert res.pushed and res.errors == []
        body = httpx.get(gw.url + "/metrics", timeout=5).text
        line = [x for x in body.splitlines() if x.startswith("llm_upkeep_ttft_seconds{")]
        assert line and 'endpoint="prod"' in line[0] and 'job="llm_upkeep"' in line[0] and 'host="gpu-01"' in line[0]
        assert line[0].endswith(" 0.3127")
    finally:
        gw.stop()
    down = export_run(PrometheusConfig(pushgateway_url=gw.url, timeout_s=1), tmp_path / "state", "x", "local", [])
    assert not down.pushed and down.errors[0].startswith("pushgateway: URLError") and "refused" in down.errors[0]


def test_shipped_rules_pass_promtool():
    r = subprocess.run([need("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 12 rules found" in r.stdout


def test_rules_and_dashboard_only_use_exported_metrics():
    names = {f.name for f in F.values()} | {f.name.removesuffix("_total") + "_total" for f in F.values()}
    used_rules = set(re.findall(r"llm_upkeep_[a-z0-9_]+", RULES.read_text()))
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used_dash = {m for e in exprs for m in re.findall(r"llm_upkeep_[a-z0-9_]+", e)}
    assert used_rules and used_dash
    assert used_rules <= names, used_rules - names
    assert used_dash <= names, used_dash - names


@pytest.mark.prefect
def test_daily_health_ttft_read_back_through_prometheus(prefect_harness, sim_factory, tmp_path, monkeypatch):
    from tests.fakes import pynvml as fake_nvml

    fake_nvml.configure(devices=[fake_nvml.FakeDevice(memory_used=10 * 1024**3)])
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    textdir = tmp_path / "textfile"
    textdir.mkdir()
    node = start_node_exporter(tmp_path, textdir)
    prom = start_prometheus(tmp_path, node.url.removeprefix("http://"))
    try:
        sim = sim_factory(ttft_s=0.12, itl_s=0.005, tokens=8)
        from tests.test_daily_health import ep, make_config

        cfg = make_config(tmp_path, [ep(sim, "sim")], prometheus={"textfile_dir": str(textdir)})
        from flows.daily_health import daily_health

        result = asyncio.run(daily_health(config_path=cfg, chain_runbook=False, allow_restart=False))
        (ttft,) = [c.value for c in result.checks if c.check == "ttft" and c.target == "sim"]
        assert ttft is not None

        text = (textdir / "llm_upkeep_daily_health.prom").read_text()
        r = subprocess.run([need("promtool"), "check", "metrics"], input=text, capture_output=True, text=True,
                           timeout=30)  # fmt: skip
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr

        deadline = time.monotonic() + 60
        got = None
        while got is None and time.monotonic() < deadline:
            q = httpx.get(prom.url + "/api/v1/query", params={"query": 'llm_upkeep_ttft_seconds{endpoint="sim"}'},
                          timeout=5).json()  # fmt: skip
            if q["status"] == "success" and q["data"]["result"]:
                got = float(q["data"]["result"][0]["value"][1])
            else:
                time.sleep(0.5)
        assert got is not None, prom.log.read_text()[-1500:] + node.log.read_text()[-1500:]
        assert abs(got - ttft) < 0.001
        q = httpx.get(prom.url + "/api/v1/query", params={"query": "llm_upkeep_gpu_memory_used_bytes"}, timeout=5)
        assert float(q.json()["data"]["result"][0]["value"][1]) == 10 * 1024**3
    finally:
        prom.stop()
        node.stop()
