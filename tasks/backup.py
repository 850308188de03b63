"""Thin Prefect tasks for the monthly backup and the restore drill: one step each.

Side effects are never cached (NO_CACHE). Only the network-facing steps retry, and only on
errors the core marks retryable (endpoint unreachable, S3 5xx); the upload step's retry
resumes: it re-learns what the store holds and sends only the rest.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from llm_upkeep.alerts import Delivery, send_alert
from llm_upkeep.backup.config import BackupConfig
from llm_upkeep.backup.errors import BackupError
from llm_upkeep.backup.leases import RemoteLease, begin_backup_lease
from llm_upkeep.backup.models import BackupResult, DrillResult, PruneResult
from llm_upkeep.backup.restore import run_restore_drill
from llm_upkeep.backup.retention import prune
from llm_upkeep.backup.snapshot import (
    Progress,
    ScanResult,
    UploadOutcome,
    commit_snapshot,
    remote_index,
    scan_sources,
    upload_missing,
)
from llm_upkeep.backup.store import S3Store
from llm_upkeep.checks import CheckResult
from llm_upkeep.config import AlertsConfig

ARTIFACT_EVERY_S = 2.0


def retry_if_retryable(task, task_run, state) -> bool:
    """Network trouble is worth a retry; a bad config or a corrupt source is not."""
    try:
        state.result(raise_on_failure=True)
    except BackupError as exc:
        return exc.retryable
    except Exception:
        return False
    return False


class _ArtifactProgress:
    """Feeds a Prefect progress artifact, at most every couple of seconds."""

    def __init__(self, key: str, description: str):
        self.id = create_progress_artifact(progress=0.0, key=key, description=description)
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        done = p.done_bytes >= p.total_bytes
        if now - self.last < ARTIFACT_EVERY_S and not done:
            return
        self.last = now
        pct = 100.0 if p.total_bytes <= 0 else min(100.0, 100.0 * p.done_bytes / p.total_bytes)
        update_progress_artifact(artifact_id=self.id, progress=round(pct, 1))


@task(name="open-backup-lease", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=retry_if_retryable)  # fmt: skip
def open_backup_lease_task(store: S3Store, snapshot_id: str) -> RemoteLease:
    store.check_bucket()
    return begin_backup_lease(store, snapshot_id, store.cfg.lease_ttl_hours * 3600, store.cfg.prune_wait_s)


@task(name="close-backup-lease", cache_policy=NO_CACHE)
def close_backup_lease_task(lease: RemoteLease) -> None:
    lease.release()


@task(name="scan-sources", cache_policy=NO_CACHE)
def scan_sources_task(cfg: BackupConfig, state_dir: str) -> ScanResult:
    progress = _ArtifactProgress("backup-hash-progress", "Hashing files the cache could not vouch for")
    return scan_sources(cfg, state_dir, on_progress=progress)


@task(name="upload-objects", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[10, 60, 300],
      retry_condition_fn=retry_if_retryable)  # fmt: skip
def upload_objects_task(
    store: S3Store, state_dir: str, scan: ScanResult, lease: RemoteLease
) -> UploadOutcome:
    index = remote_index(Path(state_dir), store.cfg)
    try:
        progress = _ArtifactProgress("backup-upload-progress", f"Uploading new objects to {store.describe()}")
        return upload_missing(store, index, store.cfg, scan, lease, on_progress=progress)
    finally:
        index.close()


@task(name="write-manifest", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[10, 60],
      retry_condition_fn=retry_if_retryable)  # fmt: skip
def commit_snapshot_task(
    store: S3Store, state_dir: str, scan: ScanResult, outcome: UploadOutcome, snapshot_id: str, created, lease
) -> BackupResult:
    index = remote_index(Path(state_dir), store.cfg)
    try:
        return commit_snapshot(store, index, scan, outcome, snapshot_id, created, lease)
    finally:
        index.close()


@task(name="prune-snapshots", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=[30],
      retry_condition_fn=retry_if_retryable)  # fmt: skip
def prune_task(cfg: BackupConfig, state_dir: str, host: str | None = None) -> PruneResult:
    return prune(cfg, state_dir, take_lock=False, host=host)  # the flow holds the lock


@task(name="restore-drill", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[10, 60],
      retry_condition_fn=retry_if_retryable)  # fmt: skip
def run_restore_drill_task(
    cfg: BackupConfig, snapshot: str, sample_files: int | None, host: str | None = None
) -> DrillResult:
    progress = _ArtifactProgress("restore-drill-progress", "Restoring the drill sample")
    return run_restore_drill(cfg, snapshot=snapshot, sample_files=sample_files, on_progress=progress, host=host)


@task(name="publish-backup-report", cache_policy=NO_CACHE)
def publish_markdown_task(markdown: str, key: str, description: str) -> None:
    create_markdown_artifact(markdown=markdown, key=key, description=description)


@task(name="send-backup-alert", cache_policy=NO_CACHE)
def send_backup_alert_task(
    cfg: AlertsConfig, state_dir: str, title: str, checks: list[CheckResult], context: str = ""
) -> Delivery:
    return send_alert(cfg, Path(state_dir), title, checks, context=context)
