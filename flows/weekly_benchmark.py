"""The weekly benchmark flow: send the suite to every endpoint, grade the answers, compare with
the pinned baseline, publish the comparison, and alert Slack on a regression.

Endpoints run one after another, never at once: two benchmarks sharing a GPU or a host would
slow each other down and both would report a regression that is not there.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.context import get_run_context

from llm_upkeep.bench.baseline import BaselineError, bench_dir
from llm_upkeep.bench.config import with_overrides
from llm_upkeep.bench.report import prompt_rows, render_markdown
from llm_upkeep.bench.result import BenchmarkResult, EndpointBenchmark, overall_status
from llm_upkeep.bench.runner import RunSettings
from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.clients import make_http_client
from llm_upkeep.config import Config
from llm_upkeep.redact import install_log_redaction, redact
from tasks.benchmark import (
    judge_run_task,
    load_suite_task,
    plot_latency_task,
    publish_report_task,
    record_history_task,
    run_suite_task,
    send_benchmark_alert_task,
)
from tasks.prom import export_metrics_task
from tasks.run_config import load_run_config


def select_endpoints(cfg: Config, names: list[str]):
    """The configured names, else every endpoint that is not a staging one."""
    if names:
        return [cfg.endpoint(n) for n in names]
    return [e for e in cfg.endpoints if not e.staging]


def history_checks(e: EndpointBenchmark) -> list[CheckResult]:
    """The run's headline figures as checks, so trends live next to the daily health history."""
    st = {"ok": Status.OK, "regression": Status.ALERT, "error": Status.ERROR}[e.status]
    detail = "; ".join(r["detail"] for r in e.regressions) or "; ".join(e.notes)
    out = [CheckResult(check="benchmark", target=e.target, status=st, value=len(e.regressions),
                       unit="regressions", detail=detail[:500])]  # fmt: skip
    for name, unit in (("ttft_p50_s", "s"), ("e2e_p50_s", "s"), ("output_tokens_per_s", "tok/s")):
        v = e.metrics.get(name)
        out.append(CheckResult(check=f"benchmark_{name}", target=e.target,
                               status=Status.OK if v is not None else Status.SKIPPED, value=v, unit=unit))  # fmt: skip
    pr = e.quality.get("pass_rate") if e.quality else None
    out.append(CheckResult(check="benchmark_pass_rate", target=e.target,
                           status=Status.OK if pr is not None else Status.SKIPPED, value=pr, unit="ratio"))  # fmt: skip
    return out


@flow(name="weekly-benchmark", log_prints=False)
async def weekly_benchmark(
    config_path: str | None = None,
    save_baseline: bool = False,
    profile: str | None = None,
    concurrency: int | None = None,
    rate: float | None = None,
    repeats: int | None = None,
    suite: str | None = None,
) -> BenchmarkResult:
    install_log_redaction()
    logger = get_run_logger()
    t0 = time.monotonic()
    cfg = load_run_config(config_path)
    bench = with_overrides(
        cfg.benchmark, profile=profile, concurrency=concurrency, rate=rate, repeats=repeats, suite=suite
    )
    state_dir = str(cfg.state_path)
    the_suite = load_suite_task(bench.suite, cfg.source)
    result = BenchmarkResult(
        started_at=datetime.now(UTC),
        suite={"name": the_suite.name, "hash": the_suite.hash, "prompts": len(the_suite.prompts),
               "source": the_suite.source},
        settings=bench.model_dump(exclude={"thresholds"}),
    )  # fmt: skip

    async with make_http_client() as http:
        for ep in select_endpoints(cfg, bench.endpoints):
            for api in bench.apis:
                settings = RunSettings.from_config(bench, api)
                run = await run_suite_task(ep, the_suite, settings, http)
                try:
                    e = await judge_run_task(run, the_suite, bench, state_dir, ep, http, save_baseline)
                except BaselineError as exc:
                    e = EndpointBenchmark(target=run.label, endpoint=run.target, api=run.api, run_id=run.run_id,
                                          status="error", run=run, metrics=run.summary_metrics(),
                                          detail=run.metrics(), notes=[redact(str(exc))])  # fmt: skip
                if e.run is not None and any(r.ok for r in e.run.measured()):
                    path = bench_dir(state_dir) / "plots" / f"{run.run_id}.png"
                    e.plot_path = plot_latency_task(run, e.baseline_run, str(path))
                logger.info("%s: %s (%d regressions)", e.target, e.status, len(e.regressions))
                result.endpoints.append(e)

    result.status = overall_status(result.endpoints)
    result.duration_s = round(time.monotonic() - t0, 3)
    markdown = render_markdown(result)
    report = bench_dir(state_dir) / "reports" / f"{result.started_at.strftime('%Y%m%dT%H%M%S')}.md"
    try:
        report.parent.mkdir(parents=True, exist_ok=True)
        tmp = report.with_suffix(".md.tmp")
        tmp.write_text(markdown, encoding="utf-8")
        tmp.replace(report)
        result.report_path = str(report)
    except OSError as exc:
        logger.warning("cannot save the markdown report: %s", redact(exc))
    rows = [r for e in result.endpoints for r in prompt_rows(e)]
    publish_report_task(markdown, rows)

    if any(e.regressions or e.status == "error" for e in result.endpoints):
        delivery = send_benchmark_alert_task(cfg.alerts, result)
        result.alerts.append(delivery.model_dump())
        if delivery.status == "failed":
            logger.error("Slack alert was not delivered: %s", delivery.error)
    try:
        run_id = str(get_run_context().flow_run.id)
    except Exception:  # no flow-run context (called as a plain function): history still records
        run_id = None
    record_history_task(state_dir, [c for e in result.endpoints for c in history_checks(e)], run_id)
    if cfg.prometheus.enabled:
        export_metrics_task(cfg.prometheus, state_dir, "weekly_benchmark", "local",
                            [c for e in result.endpoints for c in history_checks(e)], None, result.duration_s,
                            result.status == "ok")  # fmt: skip
    logger.info("weekly benchmark: %s (%d endpoint runs, %.1f s)", result.status, len(result.endpoints),
                result.duration_s)  # fmt: skip
    return result
