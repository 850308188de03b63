"""Prove a snapshot is restorable without restoring it: every object present with the checksum
the manifest recorded (HeadObject + ChecksumMode), and with --deep, downloaded and rehashed."""

from __future__ import annotations

import hashlib
import random
from concurrent.futures import ThreadPoolExecutor

from llm_upkeep.backup.errors import BackupError
from llm_upkeep.backup.models import SHA256_HEX, Manifest, Problem, VerifyResult
from llm_upkeep.backup.restore import link_chain_reason, unsafe_path_reason
from llm_upkeep.backup.snapshot import Progress, ProgressFn, _Throttle, load_manifest
from llm_upkeep.backup.store import S3Store, classify, compare_record


def check_manifest(m: Manifest, store: S3Store) -> list[Problem]:
    """Structural problems: unsafe paths, entries naming no or the wrong object."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for f in m.files:
        why = unsafe_path_reason(f.path)
        if why:
            problems.append(Problem(problem="unsafe_path", path=f.path, detail=why))
        if f.path in seen:
            problems.append(Problem(problem="duplicate_path", path=f.path, detail="listed twice"))
        seen.add(f.path)
        if not SHA256_HEX.match(f.sha256) or f.object != store.object_rel(f.sha256):
            problems.append(
                Problem(
                    problem="bad_entry",
                    path=f.path,
                    object=f.object,
                    detail="object key is not objects/sha256/<sha256>",
                )
            )
        elif f.sha256 not in m.objects:
            problems.append(
                Problem(problem="bad_entry", path=f.path, object=f.object, detail="no checksum record")
            )
        elif m.objects[f.sha256].size != f.size:
            problems.append(
                Problem(problem="bad_entry", path=f.path, object=f.object, detail="size differs from record")
            )
    for s in m.symlinks:
        why = unsafe_path_reason(s.path)
        if why:
            problems.append(Problem(problem="unsafe_path", path=s.path, detail=why))
    chain = link_chain_reason([f.path for f in m.files], [s.path for s in m.symlinks])
    if chain:
        problems.append(Problem(problem="unsafe_path", detail=chain))
    return problems


def _rehash(store: S3Store, rel: str) -> str:
    try:
        resp = store.client.get_object(Bucket=store.bucket, Key=store.key(rel))
        h = hashlib.sha256()
        for chunk in resp["Body"].iter_chunks(1024 * 1024):
            h.update(chunk)
        return h.hexdigest()
    except Exception as exc:
        raise classify(exc, f"downloading {rel}") from None


def verify_snapshot(
    store: S3Store,
    snapshot_id: str,
    *,
    deep: bool = False,
    sample: int | None = None,
    on_progress: ProgressFn | None = None,
    seed: int | None = None,
) -> VerifyResult:
    manifest = load_manifest(store, snapshot_id)
    problems = check_manifest(manifest, store)
    first_path: dict[str, str] = {}
    for f in manifest.files:
        first_path.setdefault(f.sha256, f.path)
    shas = sorted(s for s in first_path if s in manifest.objects and SHA256_HEX.match(s))
    progress = _Throttle(on_progress)
    total_bytes = sum(manifest.objects[s].size for s in shas)
    done = [0, 0]

    def head_one(sha: str) -> Problem | None:
        rec = manifest.objects[sha]
        rel = store.object_rel(sha)
        try:
            h = store.head(rel)
        except BackupError as exc:
            if exc.retryable or exc.kind in ("access_denied", "no_credentials", "no_such_bucket"):
                raise
            return Problem(problem="error", object=rel, path=first_path[sha], detail=str(exc))
        if h is None:
            return Problem(problem="missing", object=rel, path=first_path[sha], detail="object not found")
        verdict = compare_record(rec, h, h.get("ContentLength"))
        if verdict is not None:
            detail = f"expected {rec.algorithm} {rec.checksum}, size {rec.size}; store reports size {h.get('ContentLength')}"
            return Problem(problem=verdict, object=rel, path=first_path[sha], detail=detail)
        return None

    with ThreadPoolExecutor(max_workers=store.cfg.max_concurrency, thread_name_prefix="verify") as pool:
        for sha, p in zip(shas, pool.map(head_one, shas), strict=True):
            if p is not None:
                problems.append(p)
            done[0] += manifest.objects[sha].size
            done[1] += 1
            progress(Progress("verify", done[0], total_bytes, done[1], len(shas)))

    deep_checked = 0
    if deep:
        bad = {p.object for p in problems}
        pool_shas = [s for s in shas if store.object_rel(s) not in bad]
        if sample is not None and sample < len(pool_shas):
            pool_shas = random.Random(seed).sample(pool_shas, sample)
        dtotal = sum(manifest.objects[s].size for s in pool_shas)
        ddone = 0

        def rehash_one(sha: str) -> Problem | None:
            got = _rehash(store, store.object_rel(sha))
            if got != sha:
                return Problem(
                    problem="content_mismatch",
                    object=store.object_rel(sha),
                    path=first_path[sha],
                    detail=f"downloaded content hashes to {got}",
                )
            return None

        with ThreadPoolExecutor(
            max_workers=min(4, store.cfg.max_concurrency), thread_name_prefix="deep"
        ) as pool:
            for sha, p in zip(pool_shas, pool.map(rehash_one, pool_shas), strict=True):
                deep_checked += 1
                ddone += manifest.objects[sha].size
                if p is not None:
                    problems.append(p)
                progress(Progress("deep-verify", ddone, dtotal, deep_checked, len(pool_shas)))
    progress(Progress("verify", total_bytes, total_bytes, len(shas), len(shas)), force=True)
    return VerifyResult(
        snapshot=snapshot_id,
        ok=not problems,
        files=len(manifest.files),
        objects=len(shas),
        deep_checked=deep_checked,
        problems=problems,
    )
