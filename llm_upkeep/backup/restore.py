"""Restore a snapshot (or part of it) into a directory, and the monthly restore drill.

Every file is downloaded to a temporary name beside its destination, checked against its
sha256, fsynced, and only then renamed into place. A manifest path that could escape the
destination, or a destination reached through a symlink, stops the restore before anything
is written; an existing different file is never replaced without ``force``. Parents are
opened one component at a time with O_NOFOLLOW when each entry is created (a symlink made
earlier in the same restore cannot redirect a later entry), and a symlink is only created
when its target, resolved on disk, stays inside the root.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import queue
import random
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from s3transfer.subscribers import BaseSubscriber

from llm_upkeep.backup.config import BackupConfig
from llm_upkeep.backup.errors import BackupError
from llm_upkeep.backup.globs import GlobSet
from llm_upkeep.backup.models import (
    SHA256_HEX,
    SNAPSHOT_ID,
    SNAPSHOT_REF,
    DrillResult,
    FileEntry,
    Manifest,
    Problem,
    RestoreResult,
    SymlinkEntry,
    snapshot_ref,
)
from llm_upkeep.backup.snapshot import (
    PROGRESS_EVERY_S,
    Progress,
    ProgressFn,
    _Throttle,
    load_manifest,
    open_store,
    remote_snapshot_ids,
)
from llm_upkeep.backup.store import S3Store, classify, is_not_found


def unsafe_path_reason(p: str) -> str | None:
    """Why a manifest path must not be written under a restore root (None when it is safe)."""
    if not p:
        return "empty path"
    if "\x00" in p:
        return "contains a NUL byte"
    if p.startswith("/"):
        return "absolute path"
    if any(seg in ("", ".", "..") for seg in p.split("/")):
        return "contains a '..', '.' or empty segment"
    return None


def resolve_snapshot(store: S3Store, ident: str, host: str | None = None) -> str:
    """'latest' (of `host`'s namespace; None: the single-host one), a snapshot id (in `host`'s
    namespace) or a full reference 'host/id'; validated, so it can never address another key."""
    if ident == "latest":
        ids = remote_snapshot_ids(store, host)
        if not ids:
            where = f" of host {host}" if host else ""
            raise BackupError("not_found", f"no snapshots{where} in {store.describe()}")
        return ids[-1]
    if SNAPSHOT_ID.match(ident):
        return snapshot_ref(host, ident)
    if not SNAPSHOT_REF.match(ident):
        raise BackupError(
            "bad_snapshot_id",
            f"{ident!r} is not a snapshot id (like 20261128T030000.000Z-a1b2c3, or HOST/ID) or 'latest'",
        )
    return ident


def _sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(1024 * 1024)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _ancestor_problem(root: Path, rel: str, ok_dirs: set[str]) -> str | None:
    """A destination must be reached through real directories only, never through a symlink."""
    parts = rel.split("/")[:-1]
    cur = root
    acc = ""
    for seg in parts:
        cur = cur / seg
        acc = f"{acc}/{seg}" if acc else seg
        if acc in ok_dirs:
            continue
        if os.path.lexists(cur):
            if os.path.islink(cur):
                return f"{acc} is a symlink in the destination"
            if not os.path.isdir(cur):
                return f"{acc} exists and is not a directory"
        ok_dirs.add(acc)
    return None


def link_chain_reason(file_paths: list[str], link_paths: list[str]) -> str | None:
    """A manifest entry below one of its own symlinks would be written through that link.

    A real tree cannot hold both ``x/y`` as a link and ``x/y/z``, so such a manifest was made by
    hand: ``x/y -> ..``, ``x/y/esc -> ../..`` and ``x/y/esc/victim.txt`` wrote two levels above
    the restore root when entries were created one after the other.
    """
    links = set(link_paths)
    for p in [*file_paths, *link_paths]:
        parts = p.split("/")
        for i in range(1, len(parts)):
            anc = "/".join(parts[:i])
            if anc in links:
                return f"{p!r} lies below the symlink {anc!r}"
    return None


class _Unsafe(Exception):
    """A destination's parent cannot be reached through real directories inside the root."""


def open_parent_nofollow(root: Path, rel: str) -> int:
    """Open (creating as needed) the parent directory of ``rel`` under ``root``, one component at
    a time with O_NOFOLLOW, so no symlink, whenever it appeared, can lead the walk outside.

    Returns a directory fd the caller closes; raises _Unsafe naming the component at fault.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, flags)
    acc = ""
    try:
        for seg in rel.split("/")[:-1]:
            acc = f"{acc}/{seg}" if acc else seg
            try:
                nfd = os.open(seg, flags, dir_fd=fd)
            except FileNotFoundError:
                try:
                    os.mkdir(seg, dir_fd=fd)
                except FileExistsError:
                    pass
                try:
                    nfd = os.open(seg, flags, dir_fd=fd)
                except OSError as exc:
                    raise _Unsafe(f"{acc} is a symlink or not a directory ({exc.strerror})") from None
            except OSError as exc:
                raise _Unsafe(f"{acc} is a symlink or not a directory ({exc.strerror})") from None
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _replace_inside(root: Path, rel: str, tmp_name: str) -> None:
    """Rename the verified temp file over its destination inside the parent reached without links."""
    dfd = open_parent_nofollow(root, rel)
    try:
        os.replace(tmp_name, rel.rsplit("/", 1)[-1], src_dir_fd=dfd, dst_dir_fd=dfd)
    finally:
        os.close(dfd)


class _Done(BaseSubscriber):
    def __init__(self, idx: int, size: int, events: queue.Queue, counter: list[int]):
        self.idx = idx
        self.size = size
        self.events = events
        self.counter = counter

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self.size)  # the manifest knows it: saves a HeadObject per file

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        self.counter[0] += bytes_transferred

    def on_done(self, future: Any, **kwargs: Any) -> None:
        self.events.put((self.idx, future))


def restore_entries(
    store: S3Store,
    manifest: Manifest,
    files: list[FileEntry],
    links: list[SymlinkEntry],
    dest: str | os.PathLike,
    *,
    force: bool = False,
    on_progress: ProgressFn | None = None,
) -> RestoreResult:
    sid = manifest.snapshot
    for e in [*files, *links]:
        why = unsafe_path_reason(e.path)
        if why:
            raise BackupError(
                "unsafe_manifest", f"snapshot {sid} names unsafe path {e.path!r} ({why}); nothing restored"
            )
    why_links = link_chain_reason([e.path for e in files], [s.path for s in links])
    if why_links:
        raise BackupError("unsafe_manifest", f"snapshot {sid}: {why_links}; nothing restored")
    for f in files:
        if not SHA256_HEX.match(f.sha256) or f.object != store.object_rel(f.sha256):
            raise BackupError(
                "unsafe_manifest", f"snapshot {sid}: {f.path!r} names object {f.object!r}; nothing restored"
            )
    root = Path(os.path.abspath(os.path.expanduser(str(dest))))
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()

    problems: list[Problem] = []
    conflicts: list[Problem] = []
    plan: list[tuple[FileEntry, Path]] = []
    ok_dirs: set[str] = set()
    identical = 0
    for f in files:
        target = root.joinpath(*f.path.split("/"))
        why = _ancestor_problem(root, f.path, ok_dirs)
        if why:
            problems.append(Problem(problem="unsafe_destination", path=f.path, detail=why))
            continue
        if os.path.lexists(target):
            if os.path.isdir(target) and not os.path.islink(target):
                conflicts.append(Problem(problem="conflict", path=f.path, detail="a directory is in the way"))
                continue
            if (
                not os.path.islink(target)
                and os.path.getsize(target) == f.size
                and _sha256_file(target) == f.sha256
            ):
                identical += 1
                continue
            if not force:
                conflicts.append(
                    Problem(problem="conflict", path=f.path, detail="exists with other content (use --force)")
                )
                continue
        plan.append((f, target))
    link_plan: list[tuple[SymlinkEntry, Path]] = []
    for s in links:
        target = root.joinpath(*s.path.split("/"))
        resolved = os.path.normpath(os.path.join(os.path.dirname(s.path), s.target))
        if os.path.isabs(s.target) or resolved == ".." or resolved.startswith("../"):
            problems.append(
                Problem(
                    problem="symlink_outside",
                    path=s.path,
                    detail=f"target {s.target!r} leaves the restore root; not created",
                )
            )
            continue
        why = _ancestor_problem(root, s.path, ok_dirs)
        if why:
            problems.append(Problem(problem="unsafe_destination", path=s.path, detail=why))
            continue
        if os.path.lexists(target):
            if os.path.islink(target) and os.readlink(target) == s.target:
                identical += 1
                continue
            if not force or (os.path.isdir(target) and not os.path.islink(target)):
                conflicts.append(Problem(problem="conflict", path=s.path, detail="exists (use --force)"))
                continue
        link_plan.append((s, target))
    if conflicts or any(p.problem == "unsafe_destination" for p in problems):
        return RestoreResult(
            snapshot=sid,
            to=str(root),
            ok=False,
            files=0,
            bytes=0,
            identical=identical,
            symlinks=0,
            problems=conflicts + problems,
        )

    written, written_bytes = _download(store, root, plan, problems, on_progress)
    made_links = 0
    for s, target in link_plan:
        try:
            dfd = open_parent_nofollow(root, s.path)
        except _Unsafe as exc:
            problems.append(Problem(problem="unsafe_destination", path=s.path, detail=str(exc)))
            continue
        try:
            parent_real = os.path.realpath(f"/proc/self/fd/{dfd}")
            lands = os.path.realpath(os.path.join(parent_real, s.target))
            if lands != str(root) and not lands.startswith(str(root) + os.sep):
                problems.append(
                    Problem(
                        problem="symlink_outside",
                        path=s.path,
                        detail=f"target {s.target!r} resolves to {lands}, outside the restore root; not created",
                    )
                )
                continue
            tmp = f".llm-upkeep-{secrets.token_hex(6)}.link"
            os.symlink(s.target, tmp, dir_fd=dfd)
            try:
                os.replace(tmp, target.name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except OSError as exc:
                os.unlink(tmp, dir_fd=dfd)
                problems.append(Problem(problem="write_error", path=s.path, detail=str(exc)))
                continue
        finally:
            os.close(dfd)
        made_links += 1
    return RestoreResult(
        snapshot=sid,
        to=str(root),
        ok=not problems,
        files=written,
        bytes=written_bytes,
        identical=identical,
        symlinks=made_links,
        problems=problems,
    )


def _download(
    store: S3Store,
    root: Path,
    plan: list[tuple[FileEntry, Path]],
    problems: list[Problem],
    on_progress: ProgressFn | None,
) -> tuple[int, int]:
    total = sum(f.size for f, _ in plan)
    progress = _Throttle(on_progress)
    events: queue.Queue = queue.Queue()
    counter = [0]
    pending = list(range(len(plan)))
    pending.reverse()
    in_flight: dict[int, Path] = {}
    window = max(8, store.cfg.max_concurrency * 4)
    written = written_bytes = 0
    ok = False
    try:
        with store.transfer_manager() as tm:
            while pending or in_flight:
                while pending and len(in_flight) < window:
                    i = pending.pop()
                    f, target = plan[i]
                    try:
                        os.close(open_parent_nofollow(root, f.path))
                    except _Unsafe as exc:
                        problems.append(Problem(problem="unsafe_destination", path=f.path, detail=str(exc)))
                        continue
                    tmp = target.parent / f".llm-upkeep-{secrets.token_hex(6)}.part"
                    tm.download(
                        store.bucket,
                        store.key(f.object),
                        str(tmp),
                        subscribers=[_Done(i, f.size, events, counter)],
                    )
                    in_flight[i] = tmp
                try:
                    i, fut = events.get(timeout=PROGRESS_EVERY_S)
                except queue.Empty:
                    progress(Progress("restore", counter[0], total, written, len(plan)))
                    continue
                tmp = in_flight.pop(i)
                f, target = plan[i]
                try:
                    fut.result()
                except Exception as exc:
                    if is_not_found(exc):
                        problems.append(
                            Problem(
                                problem="missing", path=f.path, object=f.object, detail="object not found"
                            )
                        )
                        continue
                    raise classify(exc, f"downloading {f.path}") from None
                try:
                    got = _sha256_file(tmp)
                    if got != f.sha256:
                        problems.append(
                            Problem(
                                problem="content_mismatch",
                                path=f.path,
                                object=f.object,
                                detail=f"downloaded content hashes to {got}",
                            )
                        )
                        os.unlink(tmp)
                        continue
                    fd = os.open(tmp, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    os.chmod(tmp, f.mode & 0o777)  # never restore setuid/setgid bits from a manifest
                    os.utime(tmp, ns=(f.mtime_ns, f.mtime_ns))
                    _replace_inside(root, f.path, tmp.name)
                except _Unsafe as exc:
                    problems.append(Problem(problem="unsafe_destination", path=f.path, detail=str(exc)))
                    tmp.unlink(missing_ok=True)
                    continue
                except OSError as exc:
                    problems.append(Problem(problem="write_error", path=f.path, detail=str(exc)))
                    if tmp.exists():
                        tmp.unlink()
                    continue
                written += 1
                written_bytes += f.size
                progress(Progress("restore", counter[0], total, written, len(plan)))
        ok = True
    finally:
        if not ok:
            for tmp in in_flight.values():
                try:
                    tmp.unlink()
                except FileNotFoundError:
                    pass
    progress(Progress("restore", total, total, written, len(plan)), force=True)
    return written, written_bytes


def restore_snapshot(
    store: S3Store,
    snapshot: str,
    dest: str | os.PathLike,
    *,
    patterns: list[str] | None = None,
    force: bool = False,
    on_progress: ProgressFn | None = None,
    host: str | None = None,
) -> RestoreResult:
    sid = resolve_snapshot(store, snapshot, host)
    manifest = load_manifest(store, sid)
    sel = GlobSet(patterns or [])
    files = [f for f in manifest.files if not sel or _selected(sel, f.path)]
    links = [s for s in manifest.symlinks if not sel or _selected(sel, s.path)]
    if sel and not files and not links:
        raise BackupError("no_match", f"no file of snapshot {sid} matches {', '.join(patterns or [])}")
    return restore_entries(store, manifest, files, links, dest, force=force, on_progress=on_progress)


def _selected(sel: GlobSet, path: str) -> bool:
    """A pattern selects a file by its path, or a whole folder by the folder's path."""
    if sel.match(path):
        return True
    parts = path.split("/")
    return any(sel.match("/".join(parts[:i])) for i in range(1, len(parts)))


def run_restore_drill(
    cfg: BackupConfig,
    *,
    snapshot: str = "latest",
    sample_files: int | None = None,
    seed: int | None = None,
    on_progress: ProgressFn | None = None,
    host: str | None = None,
) -> DrillResult:
    """Restore a random sample into a temporary directory and compare with the sources (this
    host's: `host` picks its namespace, so a drill never compares another host's files)."""
    t0 = time.monotonic()
    store = open_store(cfg)
    sid = resolve_snapshot(store, snapshot, host)
    manifest = load_manifest(store, sid)
    k = sample_files or cfg.drill_sample_files
    budget = cfg.drill_max_mib * 1024 * 1024
    rng = random.Random(seed)
    candidates = list(manifest.files)
    rng.shuffle(candidates)
    picked: list[FileEntry] = []
    used = 0
    for f in candidates:
        if len(picked) >= k:
            break
        if used + f.size <= budget:
            picked.append(f)
            used += f.size
    problems: list[Problem] = []
    if manifest.files and not picked:
        problems.append(
            Problem(
                problem="drill_budget", detail=f"every file is larger than drill_max_mib={cfg.drill_max_mib}"
            )
        )
    roots = {(r.set, r.label): r.source for r in manifest.roots}
    matched = changed = 0
    tmp = tempfile.mkdtemp(prefix="llm-upkeep-drill-", dir=cfg.drill_dir)
    try:
        res = restore_entries(store, manifest, picked, [], tmp, on_progress=on_progress)
        problems.extend(res.problems)
        failed = {p.path for p in res.problems}
        for f in picked:
            if f.path in failed:
                continue
            set_name, label, *rest = f.path.split("/")
            base = roots.get((set_name, label))
            if base is None:
                continue
            src = os.path.join(base, *rest) if rest else base
            try:
                st = os.stat(src)
            except OSError:
                changed += 1
                continue
            if st.st_size != f.size or st.st_mtime_ns != f.mtime_ns:
                changed += 1
                continue
            if filecmp.cmp(src, os.path.join(tmp, *f.path.split("/")), shallow=False):
                matched += 1
            else:
                problems.append(
                    Problem(
                        problem="differs_from_source",
                        path=f.path,
                        detail="same size and mtime as backed up, different bytes",
                    )
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return DrillResult(
        snapshot=sid,
        ok=not problems,
        sampled=len(picked),
        restored=res.files + res.identical,
        bytes=res.bytes,
        matched_source=matched,
        source_changed=changed,
        problems=problems,
        duration_s=round(time.monotonic() - t0, 3),
    )
