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
from llm_upkeep.models.evaluate import CandidateCheck, verify_candidate
from llm_upkeep.models.hashing import Hasher
from llm_upkeep.models.inventory import Problem, compare_version_pin, version_files
from llm_upkeep.models.lock import LockError, read_lock


def recheck_candidate(cfg: Config, m: Managed, selector: str, verified_digest: str | None) -> CandidateCheck:
    """The candidate against what its verification established; problems mean: do not switch."""
    if m.store == "ollama":  # blobs against their names, manifest against the registry's digest
        return verify_candidate(cfg, m, selector, expected_digest=verified_digest)
    # Files: against the pin the verification wrote; never pin again (that would trust a new file).
    t0 = time.monotonic()
    assert m.versions_dir is not None
    version = version_name(m, selector) or Path(selector).name
    out = CandidateCheck(ok=False, selector=selector, version=version)
    lock_file = lock_path(cfg)
    try:
        lock = read_lock(lock_file)
    except LockError as exc:
        lock = None
        out.problems.append(Problem(model=version, file=str(lock_file), expected="readable lock", actual=str(exc),
                                    kind="missing"))  # fmt: skip
    pins = lock.endpoints.get(m.name) if lock else None
    pin = pins.version(version) if pins else None
    with Hasher(cfg.models.hash_workers) as h:
        if pin is None and not out.problems:
            out.problems.append(Problem(model=version, file=str(lock_file), expected="a pin", actual="none",
                                        kind="missing"))  # fmt: skip
        elif pin is not None:
            vf = version_files(m.versions_dir, version)
            digests = h.hash_many([vf.abs(r) for r in vf.files]) if vf else {}
            out.problems = compare_version_pin(pin, vf, digests)
        out.files, out.bytes = h.files_read, h.bytes_read
    out.ok = not out.problems
    out.seconds = round(time.monotonic() - t0, 3)
    return out
