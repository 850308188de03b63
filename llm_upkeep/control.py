"""Run parameters against the host's config: a parameter may narrow what the config allows, never widen.

Why: anyone who can reach the Prefect API (the UI, a script, a leaked token) can start a
deployment's flow run with parameters of their choosing, and the run executes on the host with
the service's rights. The host's config is the operator's decision, so it is the authority:

- the config file itself comes from the host ($LLM_UPKEEP_CONFIG, set by the unit's env file,
  `llm-upkeep serve` and `llm-upkeep worker`) or from the deployment's stored parameters; a run
  that names another file is refused unless that config lists it in [control].allowed_config_paths
  (another file's `restart.command` would otherwise run with the service's rights);
- an approval parameter may make approval stricter (auto -> manual), never looser.

A process that calls a flow directly (``llm-upkeep run ... --config F``, tests) is the operator at
the host's shell: its parameters are the host's own choice. Only runs of a deployment are checked.
Pure logic, no Prefect: tasks/run_config.py gathers what the run context says.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from llm_upkeep.configbase import Section

APPROVAL_STRICTNESS = {"auto": 0, "manual": 1}


class ParameterRefused(Exception):
    """A run parameter asks for more than the host's config allows; nothing was done."""


class ControlConfig(Section):
    allowed_config_paths: list[str] = Field(
        default_factory=list,
        description="Config files a deployment's flow run may name in its config_path parameter besides "
        "this host's own ($LLM_UPKEEP_CONFIG, else the deployment's stored config_path). Empty: only the "
        "host's own; any other path is refused, because that file's commands would run with this service's "
        "rights.",
    )


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    pa, pb = Path(os.path.expanduser(a)), Path(os.path.expanduser(b))
    try:
        return pa.resolve() == pb.resolve() or os.path.samefile(pa, pb)
    except OSError:
        return False


def authorized_config_path(
    requested: str | None,
    *,
    in_deployment: bool,
    host_path: str | None,
    allowed: list[str] | None = None,
) -> str | None:
    """The config file this run may load.

    ``host_path``: $LLM_UPKEEP_CONFIG, else the deployment's stored config_path (None: neither).
    ``allowed``: the host config's [control].allowed_config_paths (read by the caller from host_path).
    Raises ParameterRefused for a deployment run that names another file without the host's leave.
    """
    if not in_deployment or not requested:
        return requested or host_path
    if host_path and _same_file(requested, host_path):
        return host_path
    for a in allowed or []:
        if _same_file(requested, a):
            return requested
    where = (
        f"this host's config is {host_path}" if host_path
        else "this host names no config ($LLM_UPKEEP_CONFIG is unset and the deployment stores no config_path)"
    )  # fmt: skip
    raise ParameterRefused(
        f"config_path {requested!r} refused: {where}; a run may name another config file only when the "
        "host's config lists it in [control].allowed_config_paths"
    )


def effective_approval(configured: str, requested: str | None, *, source: str | None = None) -> str:
    """The approval policy of a run: the configured one, or a stricter one the run asked for."""
    if requested is None or requested == configured:
        return configured
    if requested not in APPROVAL_STRICTNESS:
        raise ParameterRefused(f"approval {requested!r} refused: expected one of {sorted(APPROVAL_STRICTNESS)}")
    if APPROVAL_STRICTNESS[requested] < APPROVAL_STRICTNESS.get(configured, 1):
        raise ParameterRefused(
            f"approval {requested!r} refused: [models].approval is {configured!r} in {source or 'the config'}; "
            "a run may make approval stricter, never looser"
        )
    return requested
