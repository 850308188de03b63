"""`llm-upkeep run security-audit`: registered in llm_upkeep.cli.RUN_REGISTRARS.

Exit codes: 0 no finding at medium or above, 1 such findings or a section that failed, 2 config error.
With --json exactly one JSON object goes to stdout: {"flow": "security-audit", "status", "findings", ...}.
"""

from __future__ import annotations

import argparse
import sys


def _out(line: str) -> None:
    from llm_upkeep.redact import redact

    sys.stdout.write(redact(line) + "\n")


def _print_result(result) -> None:
    c = result.counts()
    _out(f"security-audit: {result.status.upper()} ({c['critical']} critical, {c['high']} high, "
         f"{c['medium']} medium, {c['low']} low; {result.duration_s:.1f} s)")  # fmt: skip
    for f in result.findings:
        _out(f"  {f.severity.upper():<8} {f.title}")
        for e in f.evidence[:3]:
            _out(f"           - {e}")
        _out(f"           fix: {f.fix}")
    for s in result.sections:
        if s.status != "ok":
            _out(f"  section {s.name}: {s.status}: {'; '.join(s.notes)}")
    for d in result.alerts:
        _out(f"  slack: {d.status}{(': ' + d.error) if d.error else ''}")


def cmd_run_security_audit(args) -> int:
    from llm_upkeep.cli import EXIT_DEGRADED, EXIT_OK, emit_json, precheck_config, run_flow

    precheck_config(args.config)
    from flows.security_audit import security_audit

    result = run_flow(security_audit, config_path=args.config)
    if args.json:
        emit_json(result.to_json())
    else:
        _print_result(result)
    return EXIT_OK if result.status == "ok" else EXIT_DEGRADED


def add_run_security_audit(run_subparsers) -> None:
    from llm_upkeep.cli import add_common

    p: argparse.ArgumentParser = run_subparsers.add_parser(
        "security-audit", help="exposure, CVEs, firewall, file permissions, access logs (reads only)"
    )
    add_common(p)
    p.set_defaults(func=cmd_run_security_audit)
