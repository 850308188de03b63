"""`llm-upkeep run daily-health` through the warm background runner (llm_upkeep/background.py).

Kept apart from cli.py so the command's fast path stays readable: resolve the config file to an
absolute path (the runner's working directory is not the caller's), ask the runner, turn a
failure to start into one clear line (exit 2), never a traceback.
"""

from __future__ import annotations

import os
import sys

from llm_upkeep.background import BackgroundError, run_in_background
from llm_upkeep.redact import redact


def run_daily_health_in_background(cfg, kwargs: dict):
    """The flow's HealthResult, or None after printing why the runner could not run it."""
    from llm_upkeep.health import HealthResult

    kwargs = dict(kwargs)
    if cfg.source:
        kwargs["config_path"] = os.path.abspath(cfg.source)
    try:
        ans = run_in_background(cfg.state_path, "daily-health", kwargs)
    except BackgroundError as exc:
        what = "cannot start the local Prefect server/runner" if exc.kind == "start" else "the flow run failed"
        print(f"llm-upkeep: {what}: {redact(exc)}", file=sys.stderr)
        return None
    print(f"llm-upkeep: daily-health ran on the background runner (Prefect API {ans.get('api_url')}; "
          f"log {cfg.state_path / 'cli' / 'runner.log'})", file=sys.stderr)  # fmt: skip
    return HealthResult.model_validate(ans["result"])
