"""The config a flow run may load: the host's, whatever its config_path parameter says.

Every flow calls :func:`load_run_config` instead of ``load_config(config_path)``. The decision is
llm_upkeep.control.authorized_config_path; this module only reads what the Prefect run context
knows (is this a deployment's run, and which config_path did the deployment store).
"""

from __future__ import annotations

import os

from llm_upkeep.config import ENV_CONFIG, Config, load_config
from llm_upkeep.control import authorized_config_path


def _deployment_id():
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    run = ctx.flow_run if ctx else None
    return getattr(run, "deployment_id", None)


def _deployment_config_path(deployment_id) -> str | None:
    """The config_path the deployment stores (what `serve --config` registered), None when none."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        dep = client.read_deployment(deployment_id)
    value = (dep.parameters or {}).get("config_path")
    return str(value) if value else None


def load_run_config(config_path: str | None) -> Config:
    """The host's config for this run; raises ParameterRefused when the run names another file
    the host's config does not allow (ConfigError when the file itself is broken)."""
    dep = _deployment_id()
    host = os.environ.get(ENV_CONFIG) or None
    if dep is not None and host is None:
        host = _deployment_config_path(dep)
    allowed: list[str] = []
    if dep is not None and config_path and host:
        allowed = load_config(host).control.allowed_config_paths
    return load_config(
        authorized_config_path(config_path, in_deployment=dep is not None, host_path=host, allowed=allowed)
    )
