"""The `llm-upkeep` command.

Exit codes: 0 all ok, 1 degraded / alerted / verification failed, 2 config or usage error (also:
no config file anywhere, or a run that had nothing to check).
With --json exactly one JSON document goes to stdout; logs always go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from llm_upkeep.configbase import ConfigError
from llm_upkeep.control import ParameterRefused
from llm_upkeep.redact import redact

EXIT_OK, EXIT_DEGRADED, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("llm_upkeep")


def _quiet_prefect_defaults() -> None:
    """Offline-friendly defaults; an explicit environment always wins."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="F", help="config file (else $LLM_UPKEEP_CONFIG, else ./llm-upkeep.toml)"
    )
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")


def precheck_config(path: str | None):
    """Fail fast (exit 2) on a broken config, before paying for a Prefect server start."""
    from llm_upkeep.config import load_config

    return load_config(path)


def run_flow(fn: Callable, **kwargs) -> Any:
    """Call a Prefect flow in-process (a temporary local server when PREFECT_API_URL is unset)."""
    _quiet_prefect_defaults()
    res = fn(**kwargs)
    if asyncio.iscoroutine(res):
        res = asyncio.run(res)
    return res


# ---------------------------------------------------------------- run daily-health


def print_health(result) -> None:
    icon = {"ok": "ok   ", "warn": "WARN ", "alert": "ALERT", "error": "ERROR", "skipped": "skip "}
    print(f"{result.flow}: {result.status.upper()} ({len(result.checks)} checks, {result.duration_s:.1f} s)")
    if result.error:
        print(f"  {result.error}")
    for c in result.checks:
        val = "" if c.value is None else f" {c.value}{(' ' + c.unit) if c.unit else ''}"
        thr = "" if c.threshold is None else f" (threshold {c.threshold:g})"
        det = f"  {c.detail}" if c.detail else ""
        print(f"  {icon[c.status]} {c.check:<18} {c.target:<20}{val}{thr}{det}")
    for a in result.actions:
        print(f"  action: restart {a.target}: {a.decision} ({a.reason}) recovered={a.recovered}")
    for d in result.alerts:
        print(f"  slack: {d.status}{(': ' + d.error) if d.error else ''}")


def cmd_run_daily_health(args) -> int:
    cfg = precheck_config(args.config)
    kwargs = {"config_path": args.config, "allow_restart": not args.no_restart, "chain_runbook": not args.no_runbook}
    from llm_upkeep import background

    if background.enabled() and not args.in_process:
        from llm_upkeep.cli_runner import run_daily_health_in_background

        result = run_daily_health_in_background(cfg, kwargs)
        if result is None:
            return EXIT_USAGE
    else:
        from flows.daily_health import daily_health

        result = run_flow(daily_health, **kwargs)
    if args.json:
        emit_json(result.to_json())
    else:
        print_health(result)
    if result.status == "nothing_checked":
        return EXIT_USAGE
    return EXIT_OK if result.status == "ok" else EXIT_DEGRADED


def cmd_config_check(args) -> int:
    from llm_upkeep.fleet_config import fleet_warnings

    cfg = precheck_config(args.config)
    warnings = fleet_warnings(cfg)
    if args.json:
        emit_json({"ok": True, "source": cfg.source, "warnings": warnings, "config": cfg.model_dump(mode="json")})
    else:
        print(f"config ok: {cfg.source or '(built-in defaults)'}; {len(cfg.endpoints)} endpoint(s)")
        for w in warnings:
            print(f"llm-upkeep: config warning: {w} ({cfg.source})", file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------- parser

# Feature modules register their commands here: (module, function(subparsers)).
RUN_REGISTRARS: list[tuple[str, str]] = [
    ("llm_upkeep.bench.cli", "add_run_weekly_benchmark"),
    ("llm_upkeep.security.cli", "add_run_security_audit"),
    ("llm_upkeep.cost.cli", "add_run_cost_review"),
    ("llm_upkeep.review.cli", "add_run_weekly_review"),
    ("llm_upkeep.review.cli", "add_run_gpu_sampling"),
    ("llm_upkeep.models.cli", "add_models_run_commands"),
    ("llm_upkeep.runbook.cli", "add_run_runbook"),
    ("llm_upkeep.liveness.cli", "add_run_liveness"),
]
TOP_REGISTRARS: list[tuple[str, str]] = [
    ("llm_upkeep.ops_cli", "add_ops_commands"),
    ("llm_upkeep.models.cli", "add_models_commands"),
    ("llm_upkeep.backup.cli", "add_backup_commands"),
    ("llm_upkeep.onboard.cli", "add_init_command"),
    ("llm_upkeep.history_cli", "add_history_command"),
    ("llm_upkeep.check_cli", "add_check_command"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-upkeep", description="Maintenance autopilot for self-hosted LLMs."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run one flow now")
    run_sub = run.add_subparsers(dest="flow", required=True, metavar="FLOW")
    p = run_sub.add_parser("daily-health", help="probe endpoints, GPUs, disks; rotate logs; alert")
    add_common(p)
    p.add_argument("--no-restart", action="store_true", help="never restart, even when the runbook says so")
    p.add_argument("--no-runbook", action="store_true", help="do not chain the emergency runbook when degraded")
    p.add_argument("--in-process", action="store_true",
                   help="run the flow in this process, not on the warm background runner (docs/daily-health.md)")  # fmt: skip
    p.set_defaults(func=cmd_run_daily_health)

    p = sub.add_parser("config", help="validate the config file")
    p.add_argument("action", choices=["check"])
    add_common(p)
    p.set_defaults(func=cmd_config_check)

    import importlib

    for mod, fn in RUN_REGISTRARS:
        getattr(importlib.import_module(mod), fn)(run_sub)
    for mod, fn in TOP_REGISTRARS:
        getattr(importlib.import_module(mod), fn)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    from llm_upkeep.redact import install_log_redaction

    install_log_redaction()
    try:
        from llm_upkeep.noconfig import COMMANDS_WITHOUT_CONFIG, require_config_file

        if args.command not in COMMANDS_WITHOUT_CONFIG:
            require_config_file(getattr(args, "config", None))  # defaults alone check nothing
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"llm-upkeep: config error: {redact(exc)}", file=sys.stderr)
        if getattr(args, "json", False):
            emit_json({"error": "config", "message": redact(exc), "file": exc.file, "key": exc.key,
                       **getattr(exc, "extra", {})})  # fmt: skip
        return EXIT_USAGE
    except ParameterRefused as exc:
        print(f"llm-upkeep: refused: {redact(exc)}", file=sys.stderr)
        if getattr(args, "json", False):
            emit_json({"error": "refused", "message": redact(exc)})
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("llm-upkeep: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
