"""Backup engine: scan and hash the sets, upload what the store lacks, write the manifest last.

The steps are separate functions so the Prefect flow can run each as a task and retry the
upload step alone: every call re-learns what the store already holds and sends only the rest.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s3transfer.subscribers import BaseSubscriber

from llm_upkeep.backup.config import BackupConfig
from llm_upkeep.backup.errors import BackupError, NotConfiguredError
from llm_upkeep.backup.hashing import FileChangedError, FileDigest, hash_file, plan_for, satisfies, sha256_b64
from llm_upkeep.backup.leases import LocalLock, RemoteLease, begin_backup_lease
from llm_upkeep.backup.localdb import HashCache, RemoteIndex, hash_cache_path
from llm_upkeep.backup.models import (
    FORMAT,
    SNAPSHOT_REF,
    BackupResult,
    Manifest,
    ObjRec,
    SkippedEntry,
    SnapshotStats,
    namespace_of,
    new_snapshot_id,
    snapshot_ref,
    utcnow,
)
from llm_upkeep.backup.resume import UploadGone, choose, open_uploads, resume_upload
from llm_upkeep.backup.sources import Root, Skipped, SourceFile, SourceSymlink, walk_sets
from llm_upkeep.backup.store import OBJECTS, SNAPSHOTS, S3Store, classify, compare_record

log = logging.getLogger("llm_upkeep.backup")

# Up to this many objects of unknown presence are checked with HeadObject; more, and one
# listing of objects/sha256/ is cheaper.
HEAD_LIMIT = 100
PROGRESS_EVERY_S = 0.2


@dataclass
class Progress:
    phase: str  # hash | upload | verify | restore
    done_bytes: int
    total_bytes: int
    done_items: int
    total_items: int


ProgressFn = Callable[[Progress], None]


@dataclass(slots=True)
class HashedFile:
    src: SourceFile
    digest: FileDigest


@dataclass
class ScanResult:
    roots: list[Root] = field(default_factory=list)
    files: list[HashedFile] = field(default_factory=list)
    symlinks: list[SourceSymlink] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    hashed_files: int = 0
    hashed_bytes: int = 0
    cache_hits: int = 0
    duration_s: float = 0.0


@dataclass
class UploadOutcome:
    records: dict[str, ObjRec] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # sha256 -> reason
    changed_paths: dict[str, str] = field(default_factory=dict)  # snapshot path -> reason
    uploaded_objects: int = 0
    uploaded_bytes: int = 0
    reused_objects: int = 0
    duration_s: float = 0.0


def state_path(state_dir: str | os.PathLike) -> Path:
    p = Path(os.path.expanduser(str(state_dir)))
    p.mkdir(parents=True, exist_ok=True)
    return p


def lock_path(state_dir: Path) -> Path:
    return state_dir / "backup" / "backup.lock"


def remote_index(state_dir: Path, cfg: BackupConfig) -> RemoteIndex:
    assert cfg.bucket
    return RemoteIndex(RemoteIndex.path_for(state_dir, cfg.endpoint_url, cfg.bucket, cfg.prefix))


class _Throttle:
    def __init__(self, fn: ProgressFn | None):
        self.fn = fn
        self.last = 0.0

    def __call__(self, p: Progress, force: bool = False) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        if force or now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            self.fn(p)


# ----------------------------------------------------------------------------- scan


def _hash_one(f: SourceFile, cfg: BackupConfig) -> tuple[FileDigest, int]:
    t0 = time.time_ns()
    try:
        return hash_file(f.abs_path, plan_for(f.size, cfg)), t0
    except FileChangedError:
        t0 = time.time_ns()
        return hash_file(f.abs_path, plan_for(os.stat(f.abs_path).st_size, cfg)), t0


def scan_sources(
    cfg: BackupConfig, state_dir: str | os.PathLike, on_progress: ProgressFn | None = None
) -> ScanResult:
    """Walk the sets and hash what the cache cannot vouch for. Unreadable files become skipped entries."""
    t0 = time.monotonic()
    tree = walk_sets(cfg.sets)
    res = ScanResult(roots=tree.roots, symlinks=tree.symlinks, skipped=list(tree.skipped))
    cache = HashCache(hash_cache_path(state_path(state_dir)))
    try:
        cached = cache.load()
        todo: list[SourceFile] = []
        crc = cfg.checksum_algorithm == "CRC64NVME"
        threshold = cfg.multipart_threshold
        for f in tree.files:
            d = cached.get(f.abs_path)
            if (
                d is not None
                and d.size == f.size
                and d.mtime_ns == f.mtime_ns
                and d.ctime_ns == f.ctime_ns
                and d.inode == f.inode
                and (
                    d.crc64nvme is not None
                    if crc
                    else f.size < threshold or satisfies(d, plan_for(f.size, cfg))
                )
            ):
                res.files.append(HashedFile(f, d))
                res.cache_hits += 1
            else:
                todo.append(f)
        total = sum(f.size for f in todo)
        progress = _Throttle(on_progress)
        rows: list[tuple[str, FileDigest, int]] = []
        done = 0
        if todo:
            with ThreadPoolExecutor(max_workers=cfg.hash_workers, thread_name_prefix="hash") as pool:
                futs = {pool.submit(_hash_one, f, cfg): f for f in todo}
                for fut in as_completed(futs):
                    f = futs[fut]
                    try:
                        digest, hashed_ns = fut.result()
                    except FileChangedError:
                        res.skipped.append(
                            Skipped(f.path, "changed while being read (twice); try again later")
                        )
                        continue
                    except FileNotFoundError:
                        res.skipped.append(Skipped(f.path, "vanished during the backup"))
                        continue
                    except OSError as exc:
                        res.skipped.append(Skipped(f.path, f"unreadable: {exc.strerror or exc}"))
                        continue
                    f.size, f.mtime_ns, f.ctime_ns, f.inode = (
                        digest.size,
                        digest.mtime_ns,
                        digest.ctime_ns,
                        digest.inode,
                    )
                    res.files.append(HashedFile(f, digest))
                    rows.append((f.abs_path, digest, hashed_ns))
                    res.hashed_files += 1
                    res.hashed_bytes += digest.size
                    done += f.size
                    progress(Progress("hash", done, total, res.hashed_files, len(todo)))
            progress(Progress("hash", total, total, res.hashed_files, len(todo)), force=True)
        else:
            progress(Progress("hash", 0, 0, 0, 0), force=True)  # nothing to hash: done at once
        cache.store(rows)
        cache.forget_except({f.abs_path for f in tree.files})
    finally:
        cache.close()
    res.files.sort(key=lambda h: h.src.path)
    res.skipped.sort(key=lambda s: s.path)
    res.duration_s = time.monotonic() - t0
    return res


# ----------------------------------------------------------------------------- presence


def expected_record(d: FileDigest, cfg: BackupConfig) -> ObjRec:
    """The checksum S3 must report for this content under our upload settings."""
    if cfg.checksum_algorithm == "CRC64NVME":
        assert d.crc64nvme is not None
        return ObjRec(d.size, "CRC64NVME", "FULL_OBJECT", d.crc64nvme, None)
    if d.size >= cfg.multipart_threshold:
        assert d.composite is not None
        return ObjRec(d.size, "SHA256", "COMPOSITE", d.composite, d.parts)
    return ObjRec(d.size, "SHA256", "FULL_OBJECT", sha256_b64(d.sha256), None)


def load_manifest(store: S3Store, snapshot_id: str) -> Manifest:
    raw = store.get_bytes(store.snapshot_rel(snapshot_id))
    try:
        return Manifest.model_validate_json(raw)
    except ValueError as exc:
        raise BackupError(
            "bad_manifest", f"manifest of {snapshot_id} is not valid: {str(exc)[:300]}"
        ) from None


ALL_NAMESPACES = "*"  # never a host name


def remote_snapshot_ids(store: S3Store, namespace: str | None = ALL_NAMESPACES) -> list[str]:
    """References of the snapshots the store holds, oldest first within a namespace: every host's
    (the default: what protects objects from a sweep), or one namespace's (None: the single-host
    namespace, snapshots/<id>.json)."""
    ids = []
    for o in store.list(SNAPSHOTS):
        name = o["rel"][len(SNAPSHOTS) :]
        if name.endswith(".json") and name.count("/") <= 1:
            ref = name[: -len(".json")]
            if SNAPSHOT_REF.match(ref) or "/" not in ref:
                ids.append(ref)
    if namespace != ALL_NAMESPACES:
        ids = [i for i in ids if SNAPSHOT_REF.match(i) and namespace_of(i) == namespace]
    return sorted(ids, key=lambda r: (r.rpartition("/")[2], r))


def sync_index(store: S3Store, index: RemoteIndex, *, strict: bool = False) -> list[str]:
    """Make the local index describe exactly the snapshots the store holds; return their ids.

    A manifest that cannot be read is left out (its objects are then simply not assumed present);
    with ``strict`` it is an error, because prune must never sweep what such a manifest names.
    """
    remote = remote_snapshot_ids(store)
    local = index.snapshot_ids()
    index.drop_snapshots(local - set(remote))
    for sid in remote:
        if sid in local:
            continue
        try:
            index.add_manifest(load_manifest(store, sid))
        except BackupError as exc:
            if strict or exc.kind not in ("bad_manifest", "checksum_mismatch", "not_found"):
                raise
            log.warning("ignoring unreadable snapshot %s: %s", sid, exc)
    return remote


class _Sub(BaseSubscriber):
    def __init__(self, sha: str, events: queue.Queue, counter: list[int]):
        self.sha = sha
        self.events = events
        self.counter = counter

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        self.counter[0] += bytes_transferred  # GIL-atomic enough for a progress figure

    def on_done(self, future: Any, **kwargs: Any) -> None:
        self.events.put((self.sha, future))


def _upload_args(rec: ObjRec, cfg: BackupConfig) -> dict[str, str]:
    args: dict[str, str] = {"ChecksumAlgorithm": rec.algorithm}
    if rec.type == "FULL_OBJECT":
        # S3 checks the object against our own value (for CRC64NVME also across multipart parts).
        args[f"Checksum{rec.algorithm}"] = rec.checksum
    if cfg.storage_class != "STANDARD":
        args["StorageClass"] = cfg.storage_class
    return args


def _same_stat(path: str, d: FileDigest) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns, st.st_ino) == (d.size, d.mtime_ns, d.inode)


def upload_missing(
    store: S3Store,
    index: RemoteIndex,
    cfg: BackupConfig,
    scan: ScanResult,
    lease: RemoteLease | None = None,
    on_progress: ProgressFn | None = None,
    on_uploaded: Callable[[str], None] | None = None,
) -> UploadOutcome:
    """Make every needed object present and verified; idempotent, so a retry resumes."""
    t0 = time.monotonic()
    out = UploadOutcome()
    by_sha: dict[str, list[HashedFile]] = {}
    for hf in scan.files:
        by_sha.setdefault(hf.digest.sha256, []).append(hf)

    if cfg.min_throughput_kib_s > 0:
        store.set_budget(cfg.slow_grace_s)
    sync_index(store, index)
    referenced = index.referenced()
    known = index.records(by_sha)
    for sha in by_sha:
        if sha in referenced and sha in known:
            out.records[sha] = known[sha]
    candidates = [sha for sha in by_sha if sha not in out.records]
    if store.deadline is not None:  # plus every byte that may need sending, at the slowest rate
        need = sum(by_sha[s][0].digest.size for s in candidates)
        store.deadline += need / (cfg.min_throughput_kib_s * 1024)
    to_upload: list[str] = []
    to_head: list[str] = []
    if len(candidates) <= HEAD_LIMIT:
        to_head = candidates
    else:
        present = {o["rel"][len(OBJECTS) :]: o["size"] for o in store.list(OBJECTS)}
        for sha in candidates:
            size = by_sha[sha][0].digest.size
            if sha not in present:
                to_upload.append(sha)
            elif sha in known and known[sha].size == size == present[sha]:
                out.records[sha] = known[sha]
            else:
                to_head.append(sha)
    if to_head:
        with ThreadPoolExecutor(max_workers=cfg.max_concurrency, thread_name_prefix="head") as pool:
            heads = dict(
                zip(to_head, pool.map(lambda s: store.head(store.object_rel(s)), to_head), strict=True)
            )
        confirmed: list[tuple[str, ObjRec]] = []
        for sha, h in heads.items():
            exp = expected_record(by_sha[sha][0].digest, cfg)
            size = h.get("ContentLength") if h is not None else None
            if h is not None and compare_record(exp, h, size) is None:
                out.records[sha] = exp
                confirmed.append((sha, exp))
            elif h is not None and sha in known and compare_record(known[sha], h, size) is None:
                out.records[sha] = known[
                    sha
                ]  # uploaded by us earlier under other settings (algorithm, part size)
            else:
                if h is not None:
                    log.info("object %s present but not as expected; uploading it again", sha)
                to_upload.append(sha)
        index.add_objects(confirmed)
    out.reused_objects = len(out.records)
    if to_upload:
        _upload(store, index, cfg, by_sha, to_upload, out, lease, on_progress, on_uploaded)
    elif on_progress is not None:
        on_progress(Progress("upload", 0, 0, 0, 0))  # nothing new: done at once
    out.duration_s = time.monotonic() - t0
    return out


def _upload(
    store: S3Store,
    index: RemoteIndex,
    cfg: BackupConfig,
    by_sha: dict[str, list[HashedFile]],
    to_upload: list[str],
    out: UploadOutcome,
    lease: RemoteLease | None,
    on_progress: ProgressFn | None,
    on_uploaded: Callable[[str], None] | None,
) -> None:
    pending = sorted(to_upload, key=lambda s: by_sha[s][0].digest.size, reverse=True)
    pending.reverse()  # pop() from the end: largest first
    attempt: dict[str, int] = {}
    total_bytes = sum(by_sha[s][0].digest.size for s in to_upload)
    total_items = len(to_upload)
    counter = [0]
    events: queue.Queue = queue.Queue()
    in_flight: dict[str, tuple[HashedFile, ObjRec]] = {}
    window = max(8, cfg.max_concurrency * 4)
    progress = _Throttle(on_progress)
    verified: list[tuple[str, ObjRec]] = []
    last_flush = time.monotonic()

    def settle(sha: str, hf: HashedFile, rec: ObjRec, exc: BaseException | None) -> None:
        """Confirm one finished upload with S3's checksum, or record why it failed."""
        nonlocal verified, last_flush
        progress(Progress("upload", counter[0], total_bytes, out.uploaded_objects, total_items))
        rel = store.object_rel(sha)
        problem = None
        if exc is not None:
            err = classify(exc, f"uploading {hf.src.path}")
            if err.kind == "checksum_mismatch":
                problem = "S3 rejected the content: it no longer matches the hash (changed since hashed)"
            elif isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
                problem = f"unreadable: {exc.strerror or exc}"
            elif isinstance(exc, FileNotFoundError):
                problem = "vanished during the backup"
            else:
                raise err from None
        if problem is None:
            cap = store.pop_captured(store.key(rel)) or {}
            if any(k != "ChecksumType" for k in cap):
                verdict = compare_record(rec, cap)
            else:  # e.g. CompleteMultipartUpload on stores that omit the checksum
                h = store.head(rel)
                verdict = "missing" if h is None else compare_record(rec, h, h.get("ContentLength"))
            if verdict is not None:
                problem = f"upload not confirmed by S3 ({verdict})"
            elif not _same_stat(hf.src.abs_path, hf.digest):
                problem = "changed while being uploaded"
            if problem is not None:
                store.delete_one(rel)  # whatever landed may not be the content its name promises
        if problem is None:
            out.records[sha] = rec
            verified.append((sha, rec))
            if len(verified) >= 500 or time.monotonic() - last_flush > 1.0:
                index.add_objects(verified)
                verified, last_flush = [], time.monotonic()
            out.uploaded_objects += 1
            out.uploaded_bytes += rec.size
            if on_uploaded is not None:
                on_uploaded(sha)
            return
        # This source failed; another file with the same content may still do.
        out.changed_paths[hf.src.path] = problem
        nxt = attempt.get(sha, 0) + 1
        if nxt < len(by_sha[sha]):
            attempt[sha] = nxt
            pending.append(sha)
        else:
            out.failed[sha] = problem
            log.warning("not backed up: %s: %s", hf.src.path, problem)

    def tick() -> None:
        if lease is not None:
            lease.refresh_if_due()
        progress(Progress("upload", counter[0], total_bytes, out.uploaded_objects, total_items))

    def add_bytes(n: int) -> None:
        counter[0] += n

    try:
        # Multipart uploads a cut run left open are resumed first, one object at a time with
        # max_concurrency parts in flight (the transfer manager is idle meanwhile, so the
        # connection pool suffices); the rest goes through the transfer manager as before.
        multipart = {
            store.key(store.object_rel(s)): s
            for s in to_upload
            if by_sha[s][0].digest.size >= cfg.multipart_threshold
        }
        for key, uploads in open_uploads(store, set(multipart)).items():
            sha = multipart[key]
            hf = by_sha[sha][0]
            rec = expected_record(hf.digest, cfg)
            found = choose(store, key, uploads, rec, cfg)
            if found is None:
                continue
            store.pop_captured(key)
            try:
                resume_upload(store, hf.src.abs_path, found, rec, cfg, add_bytes, tick)
            except UploadGone:
                continue  # aborted elsewhere meanwhile: the transfer manager sends it afresh
            except Exception as exc:
                pending.remove(sha)
                settle(sha, hf, rec, exc)
                continue
            pending.remove(sha)
            settle(sha, hf, rec, None)
        # The context manager, not shutdown(cancel=True): s3transfer 0.19's shutdown() passes its
        # arguments in the wrong order and raises TypeError when cancelling.
        with store.transfer_manager() as tm:
            while pending or in_flight:
                if lease is not None:
                    lease.refresh_if_due()
                while pending and len(in_flight) < window:
                    sha = pending.pop()
                    i = attempt.get(sha, 0)
                    hf = by_sha[sha][i]
                    rec = expected_record(hf.digest, cfg)
                    key = store.key(store.object_rel(sha))
                    store.pop_captured(key)
                    tm.upload(
                        hf.src.abs_path,
                        store.bucket,
                        key,
                        extra_args=_upload_args(rec, cfg),
                        subscribers=[_Sub(sha, events, counter)],
                    )
                    in_flight[sha] = (hf, rec)
                try:
                    sha, fut = events.get(timeout=PROGRESS_EVERY_S)
                except queue.Empty:
                    progress(Progress("upload", counter[0], total_bytes, out.uploaded_objects, total_items))
                    continue
                hf, rec = in_flight.pop(sha)
                try:
                    fut.result()
                except Exception as exc:
                    settle(sha, hf, rec, exc)
                else:
                    settle(sha, hf, rec, None)
            progress(
                Progress("upload", total_bytes, total_bytes, out.uploaded_objects, total_items), force=True
            )
    finally:
        index.add_objects(verified)  # what was verified stays known, even when the run dies


# ----------------------------------------------------------------------------- commit


def commit_snapshot(
    store: S3Store,
    index: RemoteIndex,
    scan: ScanResult,
    outcome: UploadOutcome,
    snapshot_id: str,
    created: Any,
    lease: RemoteLease | None = None,
) -> BackupResult:
    """Write the manifest, only naming objects confirmed present; the snapshot exists from here on.

    The manifest is built as plain dicts (it is read back through the Manifest model): a
    pydantic object per file costs more than the whole unchanged run of a 10k-file store.
    """
    files: list[dict[str, Any]] = []
    skipped = [SkippedEntry(path=s.path, reason=s.reason) for s in scan.skipped]
    used: dict[str, ObjRec] = {}
    total = 0
    for hf in scan.files:
        sha = hf.digest.sha256
        path = hf.src.path
        if path in outcome.changed_paths:  # its bytes are not what was hashed: never claim them
            skipped.append(SkippedEntry(path=path, reason=outcome.changed_paths[path]))
            continue
        rec = outcome.records.get(sha)
        if rec is None:
            reason = outcome.failed.get(sha)
            if reason is None:
                raise BackupError("internal", f"{path}: object {sha} was never confirmed present")
            skipped.append(SkippedEntry(path=path, reason=reason))
            continue
        used[sha] = rec
        total += hf.digest.size
        files.append(
            {
                "path": path,
                "size": hf.digest.size,
                "mode": hf.src.mode,
                "mtime_ns": hf.digest.mtime_ns,
                "sha256": sha,
                "object": f"{OBJECTS}{sha}",
            }
        )
    skipped.sort(key=lambda s: s.path)
    finished = utcnow()
    duration = (finished - created).total_seconds()
    stats = SnapshotStats(
        files=len(files),
        bytes=total,
        uploaded_objects=outcome.uploaded_objects,
        uploaded_bytes=outcome.uploaded_bytes,
        reused_objects=outcome.reused_objects,
        skipped=len(skipped),
        hashed_files=scan.hashed_files,
        hashed_bytes=scan.hashed_bytes,
        duration_s=round(duration, 3),
    )
    doc = {
        "format": FORMAT,
        "snapshot": snapshot_id,
        "created": created.isoformat(),
        "finished": finished.isoformat(),
        "host": os.uname().nodename,
        "roots": [{"set": r.set, "label": r.label, "source": r.source} for r in scan.roots],
        "files": files,
        "symlinks": [{"path": s.path, "target": s.target} for s in scan.symlinks],
        "skipped": [s.model_dump() for s in skipped],
        "objects": {sha: r.doc() for sha, r in used.items()},
        "stats": stats.model_dump(),
    }
    if lease is not None:
        lease.ensure_live()
    store.put_json(
        store.snapshot_rel(snapshot_id),
        json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(),
        metadata={"files": str(stats.files), "bytes": str(stats.bytes), "created": created.isoformat()},
    )
    # Every record came from the index or was just added to it (verified upload, HeadObject).
    index.add_snapshot(snapshot_id, created.isoformat(), stats.files, stats.bytes, used, records_known=True)
    duration = (utcnow() - created).total_seconds()  # the result counts the manifest write too
    return BackupResult(
        snapshot=snapshot_id,
        created=created,
        files=stats.files,
        bytes=stats.bytes,
        uploaded_objects=outcome.uploaded_objects,
        uploaded_bytes=outcome.uploaded_bytes,
        reused_objects=outcome.reused_objects,
        symlinks=len(scan.symlinks),
        skipped=skipped,
        hashed_files=scan.hashed_files,
        hashed_bytes=scan.hashed_bytes,
        duration_s=round(duration, 3),
        upload_duration_s=round(outcome.duration_s, 3),
        upload_bytes_per_s=round(outcome.uploaded_bytes / outcome.duration_s, 1)
        if outcome.duration_s > 0
        else 0.0,
    )


# ----------------------------------------------------------------------------- all in one


def open_store(cfg: BackupConfig, source: str | None = None) -> S3Store:
    if not cfg.configured:
        raise NotConfiguredError(source)
    return S3Store(cfg)


def run_backup(
    cfg: BackupConfig,
    state_dir: str | os.PathLike,
    *,
    on_progress: ProgressFn | None = None,
    on_uploaded: Callable[[str], None] | None = None,
    snapshot_id: str | None = None,
    host: str | None = None,
) -> BackupResult:
    """One complete backup under the local lock and a remote lease (what ``backup run`` does).
    host: the fleet host's namespace the snapshot goes into (None: the single-host namespace)."""
    if not cfg.sets:
        raise BackupError("not_configured", "no [[backup.sets]] configured: nothing to back up")
    t0 = time.monotonic()
    created = utcnow()
    store = open_store(cfg)
    sdir = state_path(state_dir)
    bare = snapshot_id or new_snapshot_id()
    sid = snapshot_ref(host, bare)
    with LocalLock(lock_path(sdir), "backup"):
        if cfg.min_throughput_kib_s > 0:
            store.set_budget(cfg.slow_grace_s + cfg.prune_wait_s)
        store.check_bucket()
        index = remote_index(sdir, cfg)
        try:
            lease = begin_backup_lease(store, bare, cfg.lease_ttl_hours * 3600, cfg.prune_wait_s)
            try:
                store.set_budget(None)  # hashing is local work; upload_missing sets the S3 budget
                scan = scan_sources(cfg, sdir, on_progress)
                outcome = upload_missing(store, index, cfg, scan, lease, on_progress, on_uploaded)
                result = commit_snapshot(store, index, scan, outcome, sid, created, lease)
            finally:
                store.set_budget(None)  # cleanup is sent even after a too_slow stop
                lease.release()
        finally:
            index.close()
    result.duration_s = round(time.monotonic() - t0, 3)  # all of it: client, lock, lease, manifest
    return result
