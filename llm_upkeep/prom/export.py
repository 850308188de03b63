"""Writing and pushing the metrics: the textfile (temp file, fsync, parse-back check, os.replace,
so node_exporter never reads half a file) and the optional Pushgateway (one PUT with its own
timeout; a failure is reported, never raised). Run counters persist in state_dir so _total
counters keep counting across runs.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, Field

from llm_upkeep.jsonstate import locked_json
from llm_upkeep.prom.config import PrometheusConfig
from llm_upkeep.prom.metrics import MetricSet
from llm_upkeep.redact import redact

COUNTERS_FILE = "prometheus-counters.json"


class ExportResult(BaseModel):
    """What the export did: the file written, the push, or why not."""

    textfile: str | None = Field(default=None, description="The .prom file written, if any.")
    pushed: bool = Field(default=False, description="True when the Pushgateway accepted the metrics.")
    samples: int = Field(default=0, description="Samples exported.")
    errors: list[str] = Field(default_factory=list, description="What failed (redacted), per target.")


def _safe(s: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", s)


def registry_of(ms: MetricSet):
    """A private registry holding exactly this set (nothing of the process's default registry)."""
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry(auto_describe=False)

    class _Collector:
        def collect(self):
            return ms.families()

    reg.register(_Collector())
    return reg


def render(ms: MetricSet) -> str:
    """The Prometheus text exposition format of the set."""
    from prometheus_client import generate_latest

    return generate_latest(registry_of(ms)).decode()


def write_textfile(directory: str | Path, name: str, text: str) -> Path:
    """Atomically replace <directory>/<name>.prom; the text is parsed back before the swap."""
    from prometheus_client.parser import text_string_to_metric_families

    list(text_string_to_metric_families(text))  # raises on anything node_exporter would reject
    d = Path(os.path.expanduser(str(directory)))
    d.mkdir(parents=True, exist_ok=True)
    final = d / f"{_safe(name)}.prom"
    # the temp name does not end in .prom: node_exporter only reads *.prom
    fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{final.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if Path(tmp).read_text(encoding="utf-8") != text:
            raise OSError(f"read-back of {tmp} differs from what was written")
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def push(cfg: PrometheusConfig, ms: MetricSet, grouping: dict[str, str]) -> None:
    """PUT the set to the Pushgateway under job + grouping labels (replaces that group); raises on failure."""
    from prometheus_client import push_to_gateway

    push_to_gateway(cfg.pushgateway_url, job=cfg.job, registry=registry_of(ms), grouping_key=grouping,
                    timeout=cfg.timeout_s)  # fmt: skip


def bump_runs(state_dir: str | Path, flow: str, host: str, status: str) -> dict[str, float]:
    """Count this run (locked JSON in state_dir); returns this flow's counts by status."""
    with locked_json(Path(state_dir) / COUNTERS_FILE) as data:
        runs = data.setdefault(f"{flow}|{host}", {})
        runs[status] = runs.get(status, 0) + 1
    return dict(runs)


def export_metrics(cfg: PrometheusConfig, ms: MetricSet, name: str, grouping: dict[str, str]) -> ExportResult:
    """Write the textfile and/or push; each target fails on its own, reported in errors."""
    res = ExportResult(samples=sum(len(v) for v in ms.samples.values()))
    if not cfg.enabled:
        return res
    text = render(ms)
    if cfg.textfile_dir:
        try:
            res.textfile = str(write_textfile(cfg.textfile_dir, name, text))
        except Exception as exc:  # a full disk or a bad dir must not fail the health run
            res.errors.append(redact(f"textfile: {type(exc).__name__}: {exc}")[:300])
    if cfg.pushgateway_url:
        try:
            push(cfg, ms, grouping)
            res.pushed = True
        except Exception as exc:  # network, HTTP: reported, never raised
            res.errors.append(redact(f"pushgateway: {type(exc).__name__}: {exc}")[:300])
    return res


def now_s() -> float:
    return time.time()


def export_run(
    cfg: PrometheusConfig, state_dir: str | Path, flow: str, host: str, checks, *, snapshot=None,
    duration_s: float = 0.0, ok: bool = True, extra: MetricSet | None = None,
) -> ExportResult:  # fmt: skip
    """One flow run's export: its checks, the GPU snapshot, the run itself and its counters.

    Each flow (and fleet host) has its own file, so flows never overwrite each other's figures."""
    from llm_upkeep.prom.metrics import add_checks, add_gpus, add_run

    if not cfg.enabled:
        return ExportResult()
    ms = extra or MetricSet()
    add_checks(ms, checks, flow)
    add_gpus(ms, snapshot, host)
    runs = bump_runs(state_dir, flow, host, "ok" if ok else "degraded")
    add_run(ms, flow, host, finished_at=now_s(), duration_s=duration_s, ok=ok, runs=runs)
    name = f"llm_upkeep_{flow}" + ("" if host == "local" else f"_{host}")
    return export_metrics(cfg, ms, name, {"flow": flow, "host": host})
