"""`llm-upkeep run runbook`: registered in llm_upkeep.cli.RUN_REGISTRARS.

Exit codes: 0 no incident or every incident recovered, 1 an incident escalated (or, with
--dry-run, any incident), 2 config error. With --json exactly one JSON object goes to stdout:
{"flow": "runbook", "status", "incidents": [{"target", "symptom", "cause", "evidence", "action", "result"}]}.
"""

from __future__ import annotations

import argparse
import sys


def _out(line: str) -> None:
    from llm_upkeep.redact import redact

    sys.stdout.write(redact(line) + "\n")


def _print_result(result) -> None:
    dry = " (dry run: nothing changed)" if result.dry_run else ""
    _out(
        f"runbook: {result.status.upper()}{dry} ({len(result.incidents)} incident(s), {result.duration_s:.1f} s)"
    )
    for inc in result.incidents:
        _out(f"  {inc.symptom} on {inc.target}: {inc.diagnosis.cause}")
        for e in inc.diagnosis.evidence[:4]:
            _out(f"      evidence: {e}")
        for r in inc.results:
            _out(f"      {r.action}: {r.status}: {r.detail}")
        _out(f"      result: {inc.summary}")


def cmd_run_runbook(args) -> int:
    from llm_upkeep.cli import EXIT_DEGRADED, EXIT_OK, emit_json, precheck_config, run_flow

    precheck_config(args.config)
    from flows.runbook import runbook

    result = run_flow(
        runbook, config_path=args.config, dry_run=args.dry_run, wait_for_approval=args.wait_for_approval
    )
    if args.json:
        emit_json(result.to_json())
    else:
        _print_result(result)
    return EXIT_OK if result.status in ("ok", "recovered") else EXIT_DEGRADED


def add_run_runbook(run_subparsers) -> None:
    from llm_upkeep.cli import add_common

    p: argparse.ArgumentParser = run_subparsers.add_parser(
        "runbook", help="emergency runbook: diagnose every endpoint, fix, verify, escalate"
    )
    add_common(p)
    p.add_argument("--dry-run", action="store_true", help="diagnose and describe the fixes; change nothing")
    p.add_argument(
        "--wait-for-approval",
        action="store_true",
        help="pause for approval of risky fixes in the Prefect UI (needs PREFECT_API_URL of a running server); "
        "without it they are escalated unless runbook.allow_risky_fixes",
    )
    p.set_defaults(func=cmd_run_runbook)
