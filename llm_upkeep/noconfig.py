"""Nothing checked is not "ok": a command that finds no config file says where it looked and
suggests `llm-upkeep init` (exit 2), and a run that measured nothing says so instead of passing.

Why: on built-in defaults there are no endpoints, no model pins, no backup sets; a daily health
on them probes nothing and would answer "ok", exit 0, which a new user (or a cron job) reads as
"all is well".
"""

from __future__ import annotations

import os
from pathlib import Path

from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.config import DEFAULT_CONFIG_NAME, ENV_CONFIG, find_config_path
from llm_upkeep.configbase import ConfigError

# Commands that work without a host config: they write one, run their own, or only talk to Prefect.
COMMANDS_WITHOUT_CONFIG = frozenset({"init", "demo", "deploy", "serve", "worker"})
INIT_HINT = "run `llm-upkeep init` to find this host's servers and GPUs and write one"


class NoConfigError(ConfigError):
    """No config file anywhere; ``looked_in`` lists the places, for people and for --json."""

    def __init__(self, looked_in: list[str]):
        self.looked_in = looked_in
        super().__init__("no config file found; looked in: " + "; ".join(looked_in) + f". {INIT_HINT} "
                         "(or pass --config FILE)")  # fmt: skip
        self.extra = {"looked_in": looked_in, "hint": INIT_HINT}


def places_looked(path: str | None = None) -> list[str]:
    env = os.environ.get(ENV_CONFIG)
    return [
        f"--config: {path}" if path else "--config: not given",
        f"${ENV_CONFIG}: {env}" if env else f"${ENV_CONFIG}: not set",
        f"{Path.cwd() / DEFAULT_CONFIG_NAME}: no such file",
    ]


def require_config_file(path: str | None = None) -> Path:
    """The config file a command will read; NoConfigError when there is none (defaults are not a config)."""
    found = find_config_path(path)  # a named but missing file is already a ConfigError
    if found is None:
        raise NoConfigError(places_looked(path))
    return found


def nothing_checked(checks: list[CheckResult], *, probed: int, probes_expected: bool) -> str | None:
    """Why a health run covered nothing, or None when it measured something worth a verdict."""
    if probes_expected and probed == 0:
        return (
            "nothing checked: no endpoint is configured, so no server was probed (add [[endpoints]]; "
            + INIT_HINT
            + ")"
        )
    if not any(c.status != Status.SKIPPED for c in checks):
        return (
            "nothing checked: every check was skipped ("
            + (", ".join(sorted({c.check for c in checks})) or "none")
            + ")"
        )
    return None
