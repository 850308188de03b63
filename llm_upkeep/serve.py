"""`llm-upkeep serve`: one process serves every deployment of prefect.yaml on its schedule.

For a single host with no work pool and no worker: Prefect's Runner registers the deployments
(cron, timezone, active flag, parameters from prefect.yaml) and runs each flow run in a
subprocess. pause_on_shutdown is off, so restarting the service (a deploy, a reboot) never
leaves the schedules paused.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

from llm_upkeep.config import ENV_CONFIG
from llm_upkeep.configbase import ConfigError
from llm_upkeep.deploy import (
    DeploymentSpec,
    ScheduleSpec,
    import_flow,
    load_deployments,
    project_dir,
    with_config_path,
)

log = logging.getLogger(__name__)


def to_schedule(s: ScheduleSpec):
    from prefect.schedules import Cron, Interval, RRule

    common = {"timezone": s.timezone, "active": s.active, "parameters": s.parameters, "slug": s.slug}
    if s.cron is not None:
        kw = {} if s.day_or is None else {"day_or": s.day_or}
        return Cron(s.cron, **common, **kw)
    if s.rrule is not None:
        return RRule(s.rrule, **common)
    anchor = datetime.fromisoformat(s.anchor_date) if s.anchor_date else None
    return Interval(timedelta(seconds=s.interval or 0), anchor_date=anchor, **common)


def build_runner_deployments(root: Path, specs: list[DeploymentSpec], config_path: str | None = None) -> list:
    """RunnerDeployments for `specs`; flows are referenced by module path so any cwd works."""
    from prefect.deployments.runner import EntrypointType

    out = []
    for spec in specs:
        flow = import_flow(spec, root)
        out.append(
            flow.to_deployment(
                name=spec.name,
                description=spec.description,
                tags=spec.tags,
                parameters=with_config_path(spec, flow, config_path),
                schedules=[to_schedule(s) for s in spec.schedules],
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return out


def serve_project(
    config_path: str | None = None,
    *,
    root: str | os.PathLike | None = None,
    names: list[str] | None = None,
    limit: int | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; the Runner cancels in-flight runs on SIGTERM."""
    from prefect import serve

    base = project_dir(root)
    specs = load_deployments(base)
    if names:
        unknown = sorted(set(names) - {s.name for s in specs})
        if unknown:
            raise ConfigError(f"no deployment named {', '.join(unknown)}", file=base / "prefect.yaml")
        specs = [s for s in specs if s.name in names]
    if config_path:
        # Flow-run subprocesses inherit it; config_path parameters make it visible in the UI too.
        os.environ[ENV_CONFIG] = str(Path(config_path).resolve())
    deployments = build_runner_deployments(base, specs, config_path)
    log.info("serving %d deployment(s) from %s", len(deployments), base / "prefect.yaml")
    serve(*deployments, pause_on_shutdown=False, limit=limit, print_starting_message=True)
