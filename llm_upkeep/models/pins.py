"""`models pin`: write models.lock from what is installed, refusing to pin a corrupted blob."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from llm_upkeep.config import Config
from llm_upkeep.models.endpoints import lock_path, managed_endpoint, managed_endpoints
from llm_upkeep.models.hashing import Hasher
from llm_upkeep.models.inventory import (
    Problem,
    check_blobs,
    list_versions,
    load_manifest,
    tag_blob_paths,
    tag_pin,
    version_files,
    version_pin,
)
from llm_upkeep.models.lock import EndpointPins, Lock, update_lock
from llm_upkeep.models.store import list_models


class PinReport(BaseModel):
    ok: bool = Field(description="Every installed model was pinned (nothing corrupted or unreadable).")
    lock_file: str = Field(description="The lock file written.")
    written: bool = Field(default=False, description="The lock file was (re)written.")
    pinned: dict[str, list[str]] = Field(
        default_factory=dict, description="Endpoint -> models/versions pinned."
    )
    problems: list[Problem] = Field(default_factory=list, description="What could not be pinned, and why.")
    files_hashed: int = Field(default=0, description="Files read.")
    bytes_hashed: int = Field(default=0, description="Bytes read.")
    seconds: float = Field(default=0.0, description="Wall time.")

    def public(self) -> dict:
        d = self.model_dump(mode="json", exclude={"problems"})
        d["problems"] = [p.public() for p in self.problems]
        return d


def pin_models(cfg: Config, *, endpoint: str | None = None, hasher: Hasher | None = None) -> PinReport:
    """Pin every installed tag / version of the endpoint(s); an endpoint with a problem keeps its old pins."""
    t0 = time.monotonic()
    lp = lock_path(cfg)
    report = PinReport(ok=True, lock_file=str(lp))
    targets = [managed_endpoint(cfg, endpoint)] if endpoint else managed_endpoints(cfg)
    own = hasher is None
    h = hasher or Hasher(cfg.models.hash_workers)
    new: dict[str, EndpointPins] = {}
    try:
        for m in targets:
            pins = EndpointPins(store=m.store)  # type: ignore[arg-type]
            problems: list[Problem] = []
            if m.store == "ollama":
                assert m.models_dir is not None
                pins.models_dir = str(m.models_dir)
                mans = []
                for n in list_models(m.models_dir):
                    man, err = load_manifest(m.models_dir, n.short)
                    if man is None:
                        problems.append(Problem(model=n.short, file=str(m.models_dir / n.manifest_relpath),
                                                expected="readable manifest", actual=err or "unreadable",
                                                kind="unreadable"))  # fmt: skip
                    else:
                        mans.append(man)
                digests = h.hash_many([p for man in mans for p in tag_blob_paths(m.models_dir, man)])
                for man in mans:
                    bad = check_blobs(m.models_dir, man, digests)
                    problems += bad
                    if not bad:
                        pins.upsert_tag(tag_pin(man, m.models_dir))
            else:
                assert m.versions_dir is not None
                pins.versions_dir = str(m.versions_dir)
                vfs = [vf for n in list_versions(m.versions_dir) if (vf := version_files(m.versions_dir, n))]
                digests = h.hash_many([vf.abs(r) for vf in vfs for r in vf.files])
                for vf in vfs:
                    pin, bad = version_pin(vf, digests)
                    problems += bad
                    if pin is not None:
                        pins.upsert_version(pin)
            report.problems += problems
            if problems:
                continue
            new[m.name] = pins
            report.pinned[m.name] = [t.name for t in pins.tags] + [v.name for v in pins.versions]
        report.files_hashed, report.bytes_hashed = h.files_read, h.bytes_read
    finally:
        if own:
            h.close()

    def change(lock: Lock) -> None:
        lock.endpoints.update(new)

    if new:
        update_lock(lp, change)
        report.written = True
    report.ok = not report.problems
    report.seconds = round(time.monotonic() - t0, 3)
    return report
