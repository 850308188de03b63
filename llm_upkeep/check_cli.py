"""`llm-upkeep check` (registered in cli.TOP_REGISTRARS): the daily checks now, without Prefect.

Exit codes as everywhere: 0 all ok, 1 degraded, 2 config or usage error (or nothing to check).
"""

from __future__ import annotations

import asyncio

from llm_upkeep.cli import (
    EXIT_DEGRADED,
    EXIT_OK,
    EXIT_USAGE,
    add_common,
    emit_json,
    precheck_config,
    print_health,
)


def cmd_check(args) -> int:
    from llm_upkeep.quick_check import run_quick_check

    cfg = precheck_config(args.config)
    result = asyncio.run(run_quick_check(cfg, args.endpoint or None))
    if args.json:
        emit_json({**result.to_json(), "duration_s": result.duration_s})
    else:
        print_health(result)
    if result.status == "nothing_checked":
        return EXIT_USAGE
    return EXIT_OK if result.status == "ok" else EXIT_DEGRADED


def add_check_command(sub) -> None:
    p = sub.add_parser(
        "check",
        help="the daily checks now, without Prefect: probe every endpoint once, read GPUs and disks",
        description="Probe every endpoint once (no retries), read GPU and disk checks, print a table "
        "or --json. Read-only: no restart, alert, log rotation or history; no Prefect server needed.",
    )
    add_common(p)
    p.add_argument("--endpoint", action="append", metavar="NAME", help="only this endpoint (repeatable)")
    p.set_defaults(func=cmd_check)
