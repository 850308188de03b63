"""What is installed, and how it differs from a pin: shared by `models pin` and `models verify`.

Every comparison works on digests computed by one Hasher, so a blob shared by ten tags, or a
version reachable through the active symlink, is read once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from llm_upkeep.models.hashing import FileHash, Hasher
from llm_upkeep.models.lock import FilePin, LayerPin, TagPin, VersionPin, now_iso
from llm_upkeep.models.store import Manifest, StoreError, blob_path, read_manifest


class Problem(BaseModel):
    """One thing on disk that is not what it should be."""

    model: str = Field(description="Model (tag) or version name.")
    file: str = Field(description="The file concerned (absolute path).")
    expected: str = Field(description="What it should be: sha256:<hex>, N bytes, or present.")
    actual: str = Field(description="What it is: sha256:<hex>, N bytes, missing, unreadable: ...")
    kind: str = Field(
        default="digest", exclude=True, description="digest|size|missing|unreadable|extra|manifest."
    )

    def public(self) -> dict[str, str]:
        return {"model": self.model, "file": self.file, "expected": self.expected, "actual": self.actual}


def sha(hx: str | None) -> str:
    return f"sha256:{hx}" if hx else "unknown"


def _read_problem(model: str, r: FileHash, expected: str) -> Problem:
    kind = "missing" if r.error == "missing" else "unreadable"
    return Problem(model=model, file=r.path, expected=expected, actual=r.error or "unreadable", kind=kind)


# ------------------------------------------------------------------ Ollama tags


def tag_blob_paths(models_dir: Path, m: Manifest) -> list[str]:
    return [str(blob_path(models_dir, la.digest)) for la in m.layers]


def check_blobs(models_dir: Path, m: Manifest, digests: dict[str, FileHash]) -> list[Problem]:
    """Each blob's sha256 must equal its name and its size the manifest's."""
    out = []
    for la in m.layers:
        p = str(blob_path(models_dir, la.digest))
        r = digests[os.path.abspath(p)]
        if not r.ok:
            out.append(_read_problem(m.name.short, r, la.digest))
        elif r.size != la.size:
            out.append(Problem(model=m.name.short, file=p, expected=f"{la.size} bytes", actual=f"{r.size} bytes",
                               kind="size"))  # fmt: skip
        elif f"sha256:{r.sha256}" != la.digest:
            out.append(Problem(model=m.name.short, file=p, expected=la.digest, actual=sha(r.sha256)))
    return out


def tag_pin(m: Manifest, models_dir: Path) -> TagPin:
    return TagPin(
        name=m.name.short, manifest=str(m.path.relative_to(models_dir)), digest=m.digest, size=m.model_bytes,
        layers=[LayerPin(digest=la.digest, size=la.size, media_type=la.media_type) for la in m.layers],
        pinned_at=now_iso(),
    )  # fmt: skip


def compare_tag_pin(models_dir: Path, pin: TagPin, m: Manifest | None, err: str | None) -> list[Problem]:
    """The manifest on disk against its pin (the blobs are checked by check_blobs)."""
    mpath = str(models_dir / pin.manifest)
    if m is None:
        actual = "missing" if err and "no manifest" in err else (err or "unreadable")
        return [Problem(model=pin.name, file=mpath, expected=pin.digest, actual=actual, kind="missing")]
    if m.digest != pin.digest:
        return [Problem(model=pin.name, file=mpath, expected=pin.digest, actual=m.digest, kind="manifest")]
    return []


def load_manifest(models_dir: Path, name: str) -> tuple[Manifest | None, str | None]:
    try:
        return read_manifest(models_dir, name), None
    except StoreError as exc:
        return None, str(exc)


# ------------------------------------------------------------------ file-based versions


def list_versions(versions_dir: Path) -> list[str]:
    """Version entries: files or directories, not hidden (temp files), not symlinks (active links)."""
    if not versions_dir.is_dir():
        return []
    out = []
    for p in sorted(versions_dir.iterdir()):
        if p.name.startswith(".") or p.is_symlink():
            continue
        if p.is_file() or p.is_dir():
            out.append(p.name)
    return out


@dataclass
class VersionFiles:
    name: str
    root: Path
    files: list[str] = field(default_factory=list)  # relative to root

    def abs(self, rel: str) -> str:
        return os.path.abspath(self.root / rel)


def version_files(versions_dir: Path, name: str) -> VersionFiles | None:
    """A file version is rooted at versions_dir; a directory version at itself (files recursive,
    symlinked files followed, as in a Hugging Face snapshot)."""
    p = versions_dir / name
    if p.is_file():
        return VersionFiles(name, versions_dir, [name])
    if p.is_dir():
        files = []
        for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                full = Path(dirpath) / f
                if f.startswith(".") or not full.is_file():
                    continue
                files.append(str(full.relative_to(p)))
        return VersionFiles(name, p, files)
    return None


def version_pin(vf: VersionFiles, digests: dict[str, FileHash]) -> tuple[VersionPin | None, list[Problem]]:
    files, problems = [], []
    for rel in vf.files:
        r = digests[vf.abs(rel)]
        if not r.ok:
            problems.append(_read_problem(vf.name, r, "readable file"))
            continue
        files.append(FilePin(path=rel, sha256=r.sha256 or "", size=r.size or 0))
    if problems:
        return None, problems
    return VersionPin(name=vf.name, root=str(vf.root), files=files, pinned_at=now_iso()), []


def compare_version_pin(
    pin: VersionPin, vf: VersionFiles | None, digests: dict[str, FileHash]
) -> list[Problem]:
    root = Path(pin.root)
    if vf is None:
        return [Problem(model=pin.name, file=str(root / pin.files[0].path) if pin.files else str(root),
                        expected="present", actual="missing", kind="missing")]  # fmt: skip
    out = []
    pinned = {f.path for f in pin.files}
    for f in pin.files:
        p = os.path.abspath(root / f.path)
        r = digests.get(p)
        if r is None or not r.ok:
            r = r or FileHash(p, None, None, "missing")
            out.append(_read_problem(pin.name, r, sha(f.sha256)))
        elif r.size != f.size:
            out.append(Problem(model=pin.name, file=p, expected=f"{f.size} bytes", actual=f"{r.size} bytes",
                               kind="size"))  # fmt: skip
        elif r.sha256 != f.sha256:
            out.append(Problem(model=pin.name, file=p, expected=sha(f.sha256), actual=sha(r.sha256)))
    for rel in vf.files:
        if rel not in pinned:
            r = digests.get(vf.abs(rel))
            out.append(Problem(model=pin.name, file=vf.abs(rel), expected="absent (not pinned)",
                               actual=sha(r.sha256) if r and r.ok else "present", kind="extra"))  # fmt: skip
    return out


def hash_all(hasher: Hasher, paths: list[str]) -> dict[str, FileHash]:
    return hasher.hash_many(paths) if paths else {}
