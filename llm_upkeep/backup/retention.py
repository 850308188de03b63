"""Listing snapshots, keeping the last N, and sweeping objects no kept snapshot names.

The sweep runs under a prune marker and only when no backup holds a live lease (see
leases.py), and only after every kept manifest was read: an object is deleted only when it
is provably unreferenced and no backup can be about to reference it.
"""

from __future__ import annotations

import logging
import os

from llm_upkeep.backup.config import BackupConfig
from llm_upkeep.backup.leases import LocalLock, begin_prune_marker, list_leases
from llm_upkeep.backup.models import SNAPSHOT_REF, PruneResult, SnapshotInfo, snapshot_created
from llm_upkeep.backup.snapshot import (
    ALL_NAMESPACES,
    lock_path,
    open_store,
    remote_index,
    remote_snapshot_ids,
    state_path,
    sync_index,
)
from llm_upkeep.backup.store import OBJECTS, S3Store

log = logging.getLogger("llm_upkeep.backup")


def list_snapshots(store: S3Store, namespace: str | None = ALL_NAMESPACES) -> list[SnapshotInfo]:
    """Oldest first, of one host's namespace or of all. Counts come from each manifest's metadata
    (one HeadObject per snapshot)."""
    out: list[SnapshotInfo] = []
    for sid in remote_snapshot_ids(store, namespace):
        if not SNAPSHOT_REF.match(sid):
            continue
        h = store.head(store.snapshot_rel(sid)) or {}
        meta = h.get("Metadata", {})
        files = int(meta["files"]) if meta.get("files", "").isdigit() else None
        nbytes = int(meta["bytes"]) if meta.get("bytes", "").isdigit() else None
        out.append(SnapshotInfo(snapshot=sid, created=snapshot_created(sid), files=files, bytes=nbytes))
    return out


def prune(
    cfg: BackupConfig,
    state_dir: str | os.PathLike,
    *,
    dry_run: bool = False,
    take_lock: bool = True,
    host: str | None = None,
) -> PruneResult:
    """Apply keep_snapshots to one namespace (a fleet host's, or None: the single host's).
    ``take_lock=False`` when the caller (the monthly flow) already holds it.

    Only that namespace's snapshots are counted and deleted; the sweep of objects reads every
    namespace's manifests, so no host's prune removes an object another host's snapshot names."""
    store = open_store(cfg)
    sdir = state_path(state_dir)
    lock = LocalLock(lock_path(sdir), "prune")
    if take_lock:
        lock.acquire()
    try:
        store.check_bucket()
        index = remote_index(sdir, cfg)
        try:
            return _prune(store, index, cfg, dry_run, host)
        finally:
            index.close()
    finally:
        lock.release()


def _prune(store: S3Store, index, cfg: BackupConfig, dry_run: bool, host: str | None) -> PruneResult:
    ids = remote_snapshot_ids(store, host)
    keep = ids[-cfg.keep_snapshots :]
    drop = [i for i in ids if i not in keep]
    res = PruneResult(
        dry_run=dry_run,
        kept=keep,
        deleted_snapshots=drop,
        deleted_objects=0,
        deleted_bytes=0,
        aborted_uploads=0,
        expired_leases=0,
    )
    if dry_run:
        leases = list_leases(store)
        live = [x for x in leases if x.kind in ("backup", "unknown") and x.live]
        if live:
            res.sweep_skipped = f"a backup holds a live lease ({live[0].rel}); objects would not be swept"
            return res
        sync_index(store, index, strict=True)
        others = index.snapshot_ids() - set(ids)  # other hosts' snapshots protect their objects too
        referenced = index.referenced(only=[*keep, *others])
        for o in store.list(OBJECTS):
            if o["rel"][len(OBJECTS) :] not in referenced:
                res.deleted_objects += 1
                res.deleted_bytes += o["size"]
        return res

    marker, why_not, leases = begin_prune_marker(store, cfg.lease_ttl_hours * 3600)
    # Deleting manifests is safe even under a running backup: it never relies on a manifest
    # staying, only on objects staying, and objects are not swept while its lease lives.
    if drop:
        failed = store.delete([store.snapshot_rel(i) for i in drop])
        if failed:
            log.warning("could not delete %d manifest(s): %s", len(failed), failed[:5])
        index.drop_snapshots([i for i in drop if store.snapshot_rel(i) not in failed])
    if marker is None:
        res.sweep_skipped = why_not
        return res
    try:
        # Every manifest the store now holds (the kept ones, plus any that appeared meanwhile)
        # protects its objects; an unreadable one stops the sweep (strict).
        sync_index(store, index, strict=True)
        referenced = index.referenced()
        doomed: list[str] = []
        for o in store.list(OBJECTS):
            sha = o["rel"][len(OBJECTS) :]
            if sha not in referenced:
                doomed.append(o["rel"])
                res.deleted_bytes += o["size"]
        for i in range(0, len(doomed), 1000):
            marker.refresh_if_due()
            marker.ensure_live()
            failed = store.delete(doomed[i : i + 1000])
            res.deleted_objects += len(doomed[i : i + 1000]) - len(failed)
        index.forget_objects(r[len(OBJECTS) :] for r in doomed)
        for up in store.list_uploads():  # left by killed backups; no backup is live now
            store.abort_upload(up["Key"], up["UploadId"])
            res.aborted_uploads += 1
        for x in leases:
            if x.kind == "backup" and not x.live:
                store.delete_one(x.rel)
                res.expired_leases += 1
    finally:
        marker.release()
    return res
