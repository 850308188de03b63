"""What a run may select: candidates from configured places, rollbacks to recorded versions.

Why: evaluate-model and rollback-model take their candidate / target as run parameters, and a
run can be started by anyone who reaches the Prefect API. Without these checks a run could
promote any file the service can read (``candidate=/home/x/evil.gguf``) or "roll back" to any
path. The host's config names where candidates may come from ([models].candidate_registries,
[[models.endpoints]].candidate_dirs); a rollback target must be a version this host pinned in
models.lock or switched to or from before (the history).
"""

from __future__ import annotations

import os
from pathlib import Path

from llm_upkeep.clients.ollama import same_model
from llm_upkeep.config import Config
from llm_upkeep.control import ParameterRefused
from llm_upkeep.models.active import read_history
from llm_upkeep.models.endpoints import Managed, lock_path, models_state_dir
from llm_upkeep.models.lock import LockError, read_lock
from llm_upkeep.models.store import parse_model_name


def _inside(p: Path, root: Path) -> bool:
    try:
        p.relative_to(root)
        return True
    except ValueError:
        return False


def candidate_roots(m: Managed) -> list[Path]:
    """versions_dir and the endpoint's candidate_dirs, resolved (symlinks followed)."""
    roots = [m.versions_dir] if m.versions_dir is not None else []
    roots += [Path(os.path.expanduser(d)) for d in m.settings.candidate_dirs]
    return [r.resolve() for r in roots]


def allowed_candidate(cfg: Config, m: Managed, candidate: str) -> str:
    """The candidate as it may be used (a resolved path for files), or ParameterRefused.

    Ollama: the name's registry must be in [models].candidate_registries. Files: a version name in
    versions_dir, or a path that (symlinks resolved) lies in versions_dir or a candidate_dirs entry.
    """
    if m.store == "ollama":
        try:
            reg = parse_model_name(candidate).registry
        except ValueError as exc:
            raise ParameterRefused(f"candidate {candidate!r} refused: {exc}") from None
        allowed = cfg.models.candidate_registries
        if reg.lower() not in {r.lower() for r in allowed}:
            raise ParameterRefused(
                f"candidate {candidate!r} refused: registry {reg} is not in [models].candidate_registries "
                f"({', '.join(allowed) or 'none'}) of {cfg.source or 'the config'}"
            )
        return candidate
    assert m.versions_dir is not None
    if "/" not in candidate and not candidate.startswith("~") and (m.versions_dir / candidate).exists():
        p = m.versions_dir / candidate
    else:
        p = Path(os.path.expanduser(candidate))
    real = p.resolve()
    roots = candidate_roots(m)
    if not any(_inside(real, r) for r in roots):
        raise ParameterRefused(
            f"candidate {candidate!r} refused: it is not in {m.name}'s versions_dir or candidate_dirs "
            f"({', '.join(map(str, roots))}); add its directory to candidate_dirs of [[models.endpoints]] "
            f"{m.name} in {cfg.source or 'the config'}"
        )
    return str(p) if p.parent == m.versions_dir else str(real)


def recorded_versions(cfg: Config, m: Managed) -> list[str]:
    """Versions this host knows: pinned in models.lock, or switched to or from (history)."""
    out: list[str] = []
    try:
        lock = read_lock(lock_path(cfg))
    except LockError:
        lock = None
    pins = lock.endpoints.get(m.name) if lock else None
    if pins is not None:
        if m.store == "ollama":
            out += [t.name for t in pins.tags]
        elif m.versions_dir is not None:
            out += [str(m.versions_dir / v.name) for v in pins.versions]
    for r in read_history(models_state_dir(cfg, m.name)):
        out += [v for v in (r.from_version, r.to_version) if v]
    return list(dict.fromkeys(out))


def allowed_rollback_target(cfg: Config, m: Managed, to: str) -> str:
    """The selector a rollback `to` may switch to: only a recorded version, else ParameterRefused."""
    known = recorded_versions(cfg, m)
    if m.store == "ollama":
        for k in known:
            if same_model(k, to):
                return k
    else:
        p = Path(os.path.expanduser(to))
        if not p.is_absolute() and m.versions_dir is not None:
            p = m.versions_dir / to
        for k in known:
            if os.path.abspath(k) == os.path.abspath(p):
                return k
    raise ParameterRefused(
        f"rollback target {to!r} refused: not a version {m.name} has pinned in models.lock or switched to or "
        f"from before ({', '.join(known[-6:]) or 'none recorded'})"
    )
