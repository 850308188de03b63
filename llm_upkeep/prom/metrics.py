"""What llm-upkeep exports, named by Prometheus' conventions: an llm_upkeep_ prefix, base units in
the name (_seconds, _bytes, _celsius, _watts, _ratio), _total on counters, one label per dimension
(endpoint, gpu, path, check). Every check gets a severity gauge; the figures that have a natural
metric (TTFT, GPU readings, benchmark summaries...) get their own.

Pure functions from results to samples; nothing here writes or sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from llm_upkeep.checks import SEVERITY, CheckResult, Status

PREFIX = "llm_upkeep_"


@dataclass(frozen=True)
class Family:
    name: str
    help: str
    kind: str  # gauge | counter
    labels: tuple[str, ...]


def _g(name: str, help_: str, *labels: str) -> Family:
    return Family(PREFIX + name, help_, "gauge", labels)


def _c(name: str, help_: str, *labels: str) -> Family:
    return Family(PREFIX + name, help_, "counter", labels)


F = {
    "check_severity": _g("check_severity", "Status of a check: 0 ok, 1 skipped, 2 warn, 3 alert, 4 error.",
                         "flow", "check", "target"),
    "endpoint_up": _g("endpoint_up", "1 when the endpoint answered the probe, else 0.", "endpoint"),
    "ttft": _g("ttft_seconds", "Time to first content token of the health probe (client side).", "endpoint"),
    "e2e_latency": _g("e2e_latency_seconds", "End-to-end latency of the health probe.", "endpoint"),
    "tokens_per_second": _g("decode_tokens_per_second", "Decode rate of the health probe after the first token.",
                            "endpoint"),
    "model_load": _g("model_load_seconds", "Model load time the server reported for the probe (Ollama).",
                     "endpoint"),
    "gpu_offload": _g("gpu_offload_ratio", "Share of the loaded model in GPU memory (Ollama /api/ps).", "endpoint"),
    "disk_usage": _g("disk_used_ratio", "Used share of the filesystem holding a watched path.", "path"),
    "gpu_temperature": _g("gpu_temperature_celsius", "GPU core temperature.", "host", "gpu", "uuid"),
    "gpu_slowdown": _g("gpu_slowdown_temperature_celsius", "The GPU's own slowdown threshold.", "host", "gpu", "uuid"),
    "gpu_mem_used": _g("gpu_memory_used_bytes", "GPU framebuffer memory in use.", "host", "gpu", "uuid"),
    "gpu_mem_total": _g("gpu_memory_total_bytes", "GPU framebuffer memory size.", "host", "gpu", "uuid"),
    "gpu_util": _g("gpu_utilization_ratio", "GPU busy share over the last sample period.", "host", "gpu", "uuid"),
    "gpu_power": _g("gpu_power_watts", "GPU power draw.", "host", "gpu", "uuid"),
    "gpu_power_limit": _g("gpu_power_limit_watts", "Enforced GPU power limit.", "host", "gpu", "uuid"),
    "gpu_energy": _c("gpu_energy_joules", "GPU energy counter since the driver loaded.", "host", "gpu", "uuid"),
    "gpu_ecc": _c("gpu_ecc_uncorrected_errors", "Uncorrected ECC errors (volatile).", "host", "gpu", "uuid"),
    "bench_ttft": _g("benchmark_ttft_p50_seconds", "Weekly benchmark: median time to first token.", "endpoint"),
    "bench_e2e": _g("benchmark_e2e_p50_seconds", "Weekly benchmark: median end-to-end latency.", "endpoint"),
    "bench_tps": _g("benchmark_output_tokens_per_second", "Weekly benchmark: output tokens per second.",
                    "endpoint"),
    "bench_pass": _g("benchmark_pass_ratio", "Weekly benchmark: share of graded answers that passed.", "endpoint"),
    "bench_regr": _g("benchmark_regressions", "Weekly benchmark: metrics that regressed against the baseline.",
                     "endpoint"),
    "liveness_up": _g("liveness_up", "1 when the endpoint served a one-token generation, else 0.", "endpoint"),
    "liveness_latency": _g("liveness_latency_seconds", "Time of the liveness generation.", "endpoint"),
    "liveness_down_since": _g("liveness_down_since_timestamp_seconds",
                              "Unix time the current outage began (absent while up).", "endpoint"),
    "last_run": _g("last_run_timestamp_seconds", "Unix time the flow last finished.", "flow", "host"),
    "last_duration": _g("last_run_duration_seconds", "Wall time of the flow's last run.", "flow", "host"),
    "last_ok": _g("last_run_ok", "1 when the flow's last run found everything ok, else 0.", "flow", "host"),
    "runs": _c("runs", "Flow runs by outcome (ok or degraded).", "flow", "host", "status"),
}  # fmt: skip

# check name -> (family key, scale applied to the check's value)
CHECK_FAMILY = {
    "endpoint_up": ("endpoint_up", 1.0), "ttft": ("ttft", 1.0), "e2e_latency": ("e2e_latency", 1.0),
    "tokens_per_second": ("tokens_per_second", 1.0), "model_load": ("model_load", 1.0),
    "gpu_offload": ("gpu_offload", 0.01), "disk_usage": ("disk_usage", 0.01),
    "benchmark_ttft_p50_s": ("bench_ttft", 1.0), "benchmark_e2e_p50_s": ("bench_e2e", 1.0),
    "benchmark_output_tokens_per_s": ("bench_tps", 1.0), "benchmark_pass_rate": ("bench_pass", 1.0),
    "benchmark": ("bench_regr", 1.0),
}  # fmt: skip
# Severity order for people reading a graph: ok < skipped < warn < alert < error.
_SEV = {Status.OK: 0, Status.SKIPPED: 1, Status.WARN: 2, Status.ALERT: 3, Status.ERROR: 4}
assert set(_SEV) == set(SEVERITY)


@dataclass
class MetricSet:
    """Samples grouped by family, in insertion order (a stable file for a stable run)."""

    samples: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)

    def add(self, key: str, value: float | int | None, **labels: object) -> None:
        if value is None:
            return
        fam = F[key]
        lab = {k: "" if labels.get(k) is None else str(labels[k]) for k in fam.labels}
        rows = self.samples.setdefault(key, [])
        rows[:] = [r for r in rows if r[0] != lab]  # last value wins: one sample per label set
        rows.append((lab, float(value)))

    def families(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for key, rows in self.samples.items():
            fam = F[key]
            if fam.kind == "counter":
                m = CounterMetricFamily(fam.name.removesuffix("_total"), fam.help, labels=fam.labels)
            else:
                m = GaugeMetricFamily(fam.name, fam.help, labels=fam.labels)
            for lab, v in rows:
                m.add_metric([lab[k] for k in fam.labels], v)
            yield m


def add_checks(ms: MetricSet, checks: Iterable[CheckResult], flow: str) -> None:
    """A severity gauge for every check, and the check's own metric where it has one."""
    for c in checks:
        ms.add("check_severity", _SEV[c.status], flow=flow, check=c.check, target=c.target)
        spec = CHECK_FAMILY.get(c.check)
        if spec is None or not isinstance(c.value, int | float) or isinstance(c.value, bool):
            continue
        key, scale = spec
        label = "path" if key == "disk_usage" else "endpoint"
        ms.add(key, c.value * scale, **{label: c.target})


def add_gpus(ms: MetricSet, snapshot, host: str) -> None:
    """Every reading of an NVML snapshot (a skipped or failed snapshot adds nothing)."""
    if snapshot is None or snapshot.status != "ok":
        return
    for g in snapshot.gpus:
        lab = {"host": host, "gpu": g.index, "uuid": g.uuid or ""}
        ms.add("gpu_temperature", g.temperature_c, **lab)
        ms.add("gpu_slowdown", g.slowdown_c, **lab)
        ms.add("gpu_mem_used", g.memory_used_bytes, **lab)
        ms.add("gpu_mem_total", g.memory_total_bytes, **lab)
        ms.add("gpu_util", None if g.utilization_percent is None else g.utilization_percent / 100, **lab)
        ms.add("gpu_power", g.power_w, **lab)
        ms.add("gpu_power_limit", g.power_limit_w, **lab)
        ms.add("gpu_energy", None if g.energy_mj is None else g.energy_mj / 1000, **lab)
        ms.add("gpu_ecc", g.ecc_uncorrected, **lab)


def add_run(ms: MetricSet, flow: str, host: str, *, finished_at: float, duration_s: float, ok: bool,
            runs: dict[str, float]) -> None:  # fmt: skip
    """The flow's last run, and its persisted run counters (status -> count)."""
    ms.add("last_run", finished_at, flow=flow, host=host)
    ms.add("last_duration", duration_s, flow=flow, host=host)
    ms.add("last_ok", 1 if ok else 0, flow=flow, host=host)
    for status, n in sorted(runs.items()):
        ms.add("runs", n, flow=flow, host=host, status=status)
