"""Offline verification of model files against models.lock (runbook: gibberish = corrupted file).

Ollama: every blob's sha256 must equal its name and its size the manifest's; every pinned
manifest must still have its pinned digest. Files: every pinned file's sha256 and size. Without
pins an Ollama store is still checked for self-consistency (blob name = content), which is
exactly what a corrupted download or a flipped bit breaks.

All files of a run are hashed together in one parallel pass, each read once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from llm_upkeep.config import Config
from llm_upkeep.models.active import read_active
from llm_upkeep.models.endpoints import Managed, lock_path, managed_endpoint, managed_endpoints
from llm_upkeep.models.hashing import FileHash, Hasher
from llm_upkeep.models.inventory import (
    Problem,
    check_blobs,
    compare_tag_pin,
    compare_version_pin,
    list_versions,
    load_manifest,
    tag_blob_paths,
    version_files,
)
from llm_upkeep.models.lock import EndpointPins, Lock, LockError, read_lock
from llm_upkeep.models.store import list_models, parse_model_name


class EndpointSummary(BaseModel):
    endpoint: str = Field(description="Endpoint name.")
    store: str = Field(description="ollama | files.")
    pinned: bool = Field(description="The lock has pins for this endpoint.")
    models: int = Field(default=0, description="Models (tags) or versions checked.")
    files: int = Field(default=0, description="Files (blobs) checked.")
    bytes: int = Field(default=0, description="Bytes of those files.")
    problems: int = Field(default=0, description="Problems found.")
    active: str | None = Field(default=None, description="The active model or version.")


class VerifyReport(BaseModel):
    """What `models verify` found; ``ok`` is False when anything differs from what it should be."""

    ok: bool = Field(description="No problem found.")
    problems: list[Problem] = Field(default_factory=list, description="Each file that is wrong.")
    warnings: list[str] = Field(default_factory=list, description="Things not checked, and why.")
    endpoints: list[EndpointSummary] = Field(default_factory=list, description="Per endpoint.")
    lock_file: str | None = Field(default=None, description="The lock file used.")
    files_hashed: int = Field(default=0, description="Files read (each at most once).")
    bytes_hashed: int = Field(default=0, description="Bytes read.")
    seconds: float = Field(default=0.0, description="Wall time.")

    @property
    def throughput_mb_s(self) -> float:
        return self.bytes_hashed / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def public(self) -> dict:
        d = self.model_dump(mode="json", exclude={"problems"})
        return {"ok": self.ok, "problems": [p.public() for p in self.problems], **{k: v for k, v in d.items()
                if k != "ok"}}  # fmt: skip


Deferred = Callable[[dict[str, FileHash]], list[Problem]]


def _plan_ollama(m: Managed, pins: EndpointPins | None, warnings: list[str], summary: EndpointSummary):
    """(paths to hash, checks to run once they are hashed, problems known without hashing)."""
    models_dir = m.models_dir
    assert models_dir is not None
    paths: list[str] = []
    checks: list[Deferred] = []
    problems: list[Problem] = []
    installed = {n: n.short for n in list_models(models_dir)}
    if pins and pins.tags:
        names = [t.name for t in pins.tags]
        pinned = {parse_model_name(t.name) for t in pins.tags}
        extra = sorted(s for n, s in installed.items() if n not in pinned)
        if extra:
            warnings.append(
                f"{m.name}: installed but not pinned (blobs checked, not the tag): {', '.join(extra)}"
            )
            names += extra
    else:
        names = sorted(installed.values())
        if not models_dir.is_dir():
            warnings.append(f"{m.name}: Ollama store {models_dir} not found; nothing to verify")
        else:
            warnings.append(f"{m.name}: no pins; checked each blob against its own name and size only")
    for name in names:
        pin = pins.tag(name) if pins else None
        man, err = load_manifest(models_dir, name)
        if pin is not None:
            problems += compare_tag_pin(models_dir, pin, man, err)
        elif man is None:
            problems.append(Problem(model=name, file=str(models_dir), expected="readable manifest",
                                    actual=err or "unreadable", kind="unreadable"))  # fmt: skip
        if man is not None:
            paths += tag_blob_paths(models_dir, man)
            checks.append(lambda d, man=man: check_blobs(models_dir, man, d))
            summary.models += 1
    return paths, checks, problems


def _plan_files(m: Managed, pins: EndpointPins | None, warnings: list[str], summary: EndpointSummary):
    vdir = m.versions_dir
    assert vdir is not None
    paths: list[str] = []
    checks: list[Deferred] = []
    present = list_versions(vdir)
    pinned = {v.name for v in (pins.versions if pins else [])}
    if not pins or not pins.versions:
        warnings.append(f"{m.name}: no pins for {vdir}; run `llm-upkeep models pin` (files are not checked)")
    for v in pins.versions if pins else []:
        vf = version_files(vdir, v.name) if v.name in present else None
        paths += [os.path.abspath(Path(v.root) / f.path) for f in v.files]
        if vf is not None:
            paths += [vf.abs(r) for r in vf.files]
        checks.append(lambda d, v=v, vf=vf: compare_version_pin(v, vf, d))
        summary.models += 1
    unpinned = [n for n in present if n not in pinned]
    if unpinned and pinned:
        warnings.append(f"{m.name}: versions present but not pinned: {', '.join(unpinned)}")
    return paths, checks, []


def verify_models(cfg: Config, *, endpoint: str | None = None, hasher: Hasher | None = None) -> VerifyReport:
    """Verify what is on disk against models.lock, for one endpoint or every managed one.

    Never raises for what it finds (problems, unreadable lock); a config error (unknown
    endpoint) raises ConfigError.
    """
    t0 = time.monotonic()
    report = VerifyReport(ok=True)
    lp = lock_path(cfg)
    report.lock_file = str(lp)
    lock: Lock | None
    try:
        lock = read_lock(lp)
    except LockError as exc:
        report.problems.append(Problem(model="(models.lock)", file=str(lp), expected="a readable lock file",
                                       actual=str(exc), kind="unreadable"))  # fmt: skip
        lock = None
    if lock is None and not report.problems:
        report.warnings.append(f"no lock file at {lp}; run `llm-upkeep models pin` to pin what is installed")
    targets = [managed_endpoint(cfg, endpoint)] if endpoint else managed_endpoints(cfg)
    if not targets:
        report.warnings.append("no managed endpoints: add [[models.endpoints]] or a local Ollama endpoint")

    own = hasher is None
    h = hasher or Hasher(cfg.models.hash_workers)
    try:
        plans = []
        all_paths: list[str] = []
        for m in targets:
            pins = lock.endpoints.get(m.name) if lock else None
            s = EndpointSummary(endpoint=m.name, store=m.store, pinned=bool(pins))
            try:
                s.active = read_active(m)
            except Exception as exc:  # the active selector is evidence; its failure is a warning
                report.warnings.append(f"{m.name}: cannot read the active version: {exc}")
            if m.store == "ollama":
                paths, checks, early = _plan_ollama(m, pins, report.warnings, s)
            else:
                paths, checks, early = _plan_files(m, pins, report.warnings, s)
            plans.append((s, paths, checks, early))
            all_paths += paths
        digests = h.hash_many(all_paths)
        for s, paths, checks, early in plans:
            found = list(early)
            for c in checks:
                found += c(digests)
            uniq = {os.path.abspath(p) for p in paths}
            s.files = len(uniq)
            s.bytes = sum((digests[p].size or 0) for p in uniq if p in digests)
            s.problems = len(found)
            report.problems += found
            report.endpoints.append(s)
        report.files_hashed = h.files_read if own else len(digests)
        report.bytes_hashed = h.bytes_read if own else sum(r.size or 0 for r in digests.values())
    finally:
        if own:
            h.close()
    report.ok = not report.problems
    report.seconds = round(time.monotonic() - t0, 3)
    return report
