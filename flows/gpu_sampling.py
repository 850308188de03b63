"""Hourly GPU sampling: one NVML reading into the history store, and what each server says on
/metrics (token counters for the cost review, load for the leak rule; seconds)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from llm_upkeep.fleet import checked_host, current_host, endpoints_of
from llm_upkeep.redact import install_log_redaction
from llm_upkeep.review.sampling import GpuSamplingResult
from tasks.fleet import publish_if_part
from tasks.prom import export_metrics_task
from tasks.review import collect_gpu_snapshot_task, record_gpu_samples_task
from tasks.run_config import load_run_config
from tasks.servermetrics import sample_servers_task


def _sample_servers(cfg, snapshot, logger, host: str = "local") -> None:
    """Token counters and /metrics of every endpoint (llm_upkeep/servermetrics/sampling.py); never fails the GPU part."""
    if not cfg.endpoints:
        return
    try:
        for note in sample_servers_task(cfg, str(cfg.state_path), snapshot, host):
            logger.info("server sampling: %s", note)
    except Exception as exc:  # the next hour samples again
        logger.warning("server sampling failed: %s", type(exc).__name__)


@flow(name="gpu-sampling", log_prints=False)
def gpu_sampling(config_path: str | None = None, host: str | None = None) -> GpuSamplingResult:
    """host: the fleet host this copy runs on; its readings are stored under that name (default:
    the worker's --host, else "local"), so a fleet's histories never mix their GPUs."""
    install_log_redaction()
    logger = get_run_logger()
    cfg = load_run_config(config_path)
    if not cfg.gpu.enabled:
        _sample_servers(cfg, None, logger)  # token counters are sampled without NVML too
        return GpuSamplingResult(status="skipped", reason="gpu.enabled is false")
    name = checked_host(cfg, host) or current_host() or "local"
    snapshot = collect_gpu_snapshot_task()
    result = record_gpu_samples_task(str(cfg.state_path), snapshot, name)
    # On a fleet each host samples its own servers (their GPU processes are in its NVML reading).
    mine = cfg.model_copy(update={"endpoints": endpoints_of(cfg, name)}) if cfg.fleet.enabled else cfg
    _sample_servers(mine, snapshot, logger, name)
    if cfg.prometheus.enabled:
        export_metrics_task(cfg.prometheus, str(cfg.state_path), "gpu_sampling", name, [], snapshot, 0.0,
                            result.status != "error")  # fmt: skip
    logger.info("gpu sampling: %s, %d sample(s)%s", result.status, result.samples,
                f" ({result.reason})" if result.reason else "")  # fmt: skip
    publish_if_part(host, result)
    return result
