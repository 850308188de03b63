"""Walk the configured sets: which files go into a snapshot, and what is skipped and why."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from llm_upkeep.backup.config import BackupSet
from llm_upkeep.backup.globs import GlobSet


@dataclass(slots=True)
class SourceFile:
    path: str  # snapshot path: <set>/<label>/<relative path>
    abs_path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    mode: int
    inode: int


@dataclass(slots=True)
class SourceSymlink:
    path: str
    abs_path: str
    target: str


@dataclass(slots=True)
class Skipped:
    path: str
    reason: str


@dataclass(slots=True)
class Root:
    set: str
    label: str
    source: str


@dataclass
class SourceTree:
    roots: list[Root] = field(default_factory=list)
    files: list[SourceFile] = field(default_factory=list)
    symlinks: list[SourceSymlink] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _labels(paths: list[str]) -> list[tuple[str, str]]:
    """Give each root a folder name (its basename), made unique with -2, -3..."""
    out: list[tuple[str, str]] = []
    used: set[str] = set()
    for p in paths:
        absolute = os.path.abspath(os.path.expanduser(p))
        base = os.path.basename(absolute.rstrip("/")) or "root"
        label, n = base, 2
        while label in used:
            label, n = f"{base}-{n}", n + 1
        used.add(label)
        out.append((label, absolute))
    return out


def _reason(exc: OSError) -> str:
    return f"unreadable: {exc.strerror or exc.__class__.__name__}"


def walk_set(bset: BackupSet, tree: SourceTree) -> None:
    """Add one set's files to ``tree``; errors become skipped entries, never exceptions."""
    include = GlobSet(bset.include)
    exclude = GlobSet(bset.exclude)
    follow = bset.follow_symlinks

    for label, root in _labels(bset.paths):
        prefix = f"{bset.name}/{label}"
        tree.roots.append(Root(set=bset.name, label=label, source=root))
        try:
            st = os.stat(root)  # a root given as a symlink is always followed
        except OSError as exc:
            reason = "path not found" if isinstance(exc, FileNotFoundError) else _reason(exc)
            tree.skipped.append(Skipped(path=prefix, reason=f"{reason} ({root})"))
            continue
        if stat.S_ISREG(st.st_mode):
            if not include or include.match(label):
                if not exclude.match(label):
                    tree.files.append(_file(prefix, root, st))
            continue
        if not stat.S_ISDIR(st.st_mode):
            tree.skipped.append(Skipped(path=prefix, reason="not a regular file or directory"))
            continue
        visited = {(st.st_dev, st.st_ino)}
        stack: list[tuple[str, str]] = [(root, "")]
        while stack:
            dpath, drel = stack.pop()
            try:
                with os.scandir(dpath) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                tree.skipped.append(Skipped(path=f"{prefix}/{drel}".rstrip("/"), reason=_reason(exc)))
                continue
            subdirs: list[tuple[str, str]] = []
            for e in entries:
                rel = f"{drel}/{e.name}" if drel else e.name
                spath = f"{prefix}/{rel}"
                if not _utf8(e.name):
                    tree.skipped.append(
                        Skipped(
                            path=os.fsencode(spath).decode("utf-8", "replace"), reason="name is not UTF-8"
                        )
                    )
                    continue
                try:
                    est = e.stat(follow_symlinks=False)
                    if follow and stat.S_ISLNK(est.st_mode):
                        est = e.stat(follow_symlinks=True)
                except OSError as exc:
                    if isinstance(exc, FileNotFoundError) and follow:
                        tree.skipped.append(Skipped(path=spath, reason="dangling symlink"))
                    elif not isinstance(exc, FileNotFoundError):  # vanished between listing and stat: ignore
                        tree.skipped.append(Skipped(path=spath, reason=_reason(exc)))
                    continue
                if stat.S_ISDIR(est.st_mode):
                    if exclude.match(rel):
                        continue
                    key = (est.st_dev, est.st_ino)
                    if key in visited:
                        tree.skipped.append(Skipped(path=spath, reason="directory loop through a symlink"))
                        continue
                    visited.add(key)
                    subdirs.append((e.path, rel))
                    continue
                if exclude.match(rel) or (include and not include.match(rel)):
                    continue
                if stat.S_ISREG(est.st_mode):
                    tree.files.append(_file(spath, e.path, est))
                elif stat.S_ISLNK(est.st_mode):
                    try:
                        target = os.readlink(e.path)
                    except OSError as exc:
                        tree.skipped.append(Skipped(path=spath, reason=_reason(exc)))
                        continue
                    if not _utf8(target):
                        tree.skipped.append(Skipped(path=spath, reason="symlink target is not UTF-8"))
                        continue
                    tree.symlinks.append(SourceSymlink(path=spath, abs_path=e.path, target=target))
                else:
                    tree.skipped.append(
                        Skipped(path=spath, reason="not a regular file (fifo, socket or device)")
                    )
            stack.extend(reversed(subdirs))


def _file(spath: str, abs_path: str, st: os.stat_result) -> SourceFile:
    return SourceFile(
        path=spath,
        abs_path=abs_path,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
        mode=stat.S_IMODE(st.st_mode),
        inode=st.st_ino,
    )


def walk_sets(sets: list[BackupSet]) -> SourceTree:
    tree = SourceTree()
    for s in sets:
        walk_set(s, tree)
    return tree
