"""Re-hash the approved candidate right before the switch.

Why: approval can take hours (a person in the UI). What was verified when the run started is
not necessarily what is on disk when the switch happens: a file in versions_dir or a blob in the
Ollama store can be replaced meanwhile. The switch goes ahead only when the candidate still
matches the pin written at verification (files) or the manifest digest the registry gave and
every blob still matches its name (Ollama).
"""

from __future__ import annotations

import time
from pathlib import Path

from llm_upkeep.config import Config
from llm_upkeep.models.active import version_name
from llm_upkeep.models.endpoints import Managed, lock_path
from llm_upkeep.models.evaluate import CandidateCheck
from llm_upkeep.models.hashing import Hasher
from llm_upkeep.models.inventory import Problem, compare_version_pin, version_files
from llm_upkeep.models.lock import LockError, read_lock
from llm_upkeep.models.promote import verify_ollama_tag
from llm_upkeep.models.store import StoreError, read_manifest


def recheck_candidate(cfg: Config, m: Managed, selector: str, verified_digest: str | None) -> CandidateCheck:
    """The candidate against what its verification established; problems mean: do not switch."""
    t0 = time.monotonic()
    with Hasher(cfg.models.hash_workers) as h:
        if m.store == "ollama":
            out = CandidateCheck(ok=False, selector=selector, version=selector)
            out.problems = verify_ollama_tag(m, selector, h)
            try:
                man = read_manifest(m.models_dir or "", selector)
                out.digest = man.digest
                if verified_digest and man.digest != verified_digest:
                    out.problems.append(Problem(model=selector, file=str(man.path), expected=verified_digest,
                                                actual=man.digest, kind="manifest"))  # fmt: skip
            except StoreError:
                pass  # verify_ollama_tag reported the missing manifest
        else:
            assert m.versions_dir is not None
            version = version_name(m, selector) or Path(selector).name
            out = CandidateCheck(ok=False, selector=selector, version=version)
            try:
                lock = read_lock(lock_path(cfg))
            except LockError as exc:
                lock = None
                out.problems.append(Problem(model=version, file=str(lock_path(cfg)), expected="readable lock",
                                            actual=str(exc), kind="missing"))  # fmt: skip
            pins = lock.endpoints.get(m.name) if lock else None
            pin = pins.version(version) if pins else None
            if pin is None and not out.problems:
                out.problems.append(Problem(model=version, file=str(lock_path(cfg)), expected="a pin",
                                            actual="none", kind="missing"))  # fmt: skip
            elif pin is not None:
                vf = version_files(m.versions_dir, version)
                digests = h.hash_many([vf.abs(r) for r in vf.files]) if vf else {}
                out.problems = compare_version_pin(pin, vf, digests)
        out.files, out.bytes = h.files_read, h.bytes_read
    out.ok = not out.problems
    out.seconds = round(time.monotonic() - t0, 3)
    return out
