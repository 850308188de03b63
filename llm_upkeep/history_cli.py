"""`llm-upkeep history`: print the stored series (checks, benchmark summaries, GPU samples).

The history store is what the weekly review's trends read; this command shows the same rows to a
person (a table), a script (--json: one document) or a spreadsheet (--csv). No Prefect import:
it answers in well under a second.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from pathlib import Path

from llm_upkeep.cli import EXIT_OK, EXIT_USAGE, emit_json

CHECK_COLUMNS = ["ts", "flow", "host", "check_name", "target", "status", "value", "value_text", "unit",
                 "threshold", "detail"]  # fmt: skip
GPU_COLUMNS = ["ts", "host", "gpu", "name", "temperature_c", "memory_used_bytes", "memory_total_bytes",
               "utilization_percent", "power_w", "power_limit_w", "throttle_reasons"]  # fmt: skip


def _clean(v):
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def cmd_history(args) -> int:
    from llm_upkeep import history
    from llm_upkeep.cli import precheck_config

    cfg = precheck_config(args.config)
    try:
        since = history.parse_since(args.since) if args.since else None
        until = history.parse_since(args.until) if args.until else None
    except ValueError as exc:
        print(f"llm-upkeep history: {exc}", file=sys.stderr)
        return EXIT_USAGE
    state = Path(os.path.expanduser(cfg.state_dir))  # not cfg.state_path: reading creates nothing
    df = history.query_series(state, args.series, check=args.check, target=args.target, host=args.host,
                              since=since, until=until)  # fmt: skip
    cols = GPU_COLUMNS if args.series == "gpu" else CHECK_COLUMNS
    rows = [] if df.empty else [{c: _clean(r[c]) for c in cols if c in df.columns}
                                for r in df.to_dict(orient="records")]  # fmt: skip
    if args.limit:
        rows = rows[-args.limit:]
    if args.json:
        emit_json({"series": args.series, "state_dir": str(state), "count": len(rows), "rows": rows})
    elif args.csv:
        w = csv.DictWriter(sys.stdout, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    else:
        _print_table(rows, args.series)
    return EXIT_OK


def _print_table(rows: list[dict], series: str) -> None:
    if not rows:
        print(f"no {series} rows stored for this selection")
        return
    if series == "gpu":
        for r in rows:
            used = r.get("memory_used_bytes")
            total = r.get("memory_total_bytes")
            mem = f"{used / 2**30:.1f}/{total / 2**30:.0f} GiB" if used is not None and total else "—"
            print(f"{r['ts'][:19]}  {r['host']}:{r['gpu']}  {_f(r.get('temperature_c'), '°C')}  {mem}  "
                  f"{_f(r.get('utilization_percent'), '%')}  {_f(r.get('power_w'), 'W')}")  # fmt: skip
        return
    for r in rows:
        val = r.get("value") if r.get("value") is not None else (r.get("value_text") or "—")
        unit = f" {r['unit']}" if r.get("unit") else ""
        print(f"{r['ts'][:19]}  {r['flow'] or '':<16} {r['check_name']:<24} {r['target'] or '':<18} "
              f"{r['status']:<8} {val}{unit}")  # fmt: skip


def _f(v, unit: str) -> str:
    return "—" if v is None else f"{v:g} {unit}"


def add_history_command(sub) -> None:
    p = sub.add_parser("history", help="print the stored history: checks, benchmark summaries, GPU samples")
    p.add_argument("--config", metavar="F", help="config file (else $LLM_UPKEEP_CONFIG, else ./llm-upkeep.toml)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    fmt.add_argument("--csv", action="store_true", help="print CSV with a header row")
    p.add_argument("--series", choices=["checks", "benchmark", "gpu"], default="checks",
                   help="checks (every check, default), benchmark (weekly summaries) or gpu (GPU samples)")
    p.add_argument("--check", metavar="C", help="only this check (e.g. ttft, gpu_memory, benchmark_ttft_p50_s)")
    p.add_argument("--target", metavar="T", help="only this target (endpoint name; GPU: N or host:N)")
    p.add_argument("--host", metavar="H", help="only rows recorded for this fleet host")
    p.add_argument("--since", metavar="D", help="from this date/time (ISO, UTC) or age (7d, 12h, 3w)")
    p.add_argument("--until", metavar="D", help="before this date/time or age")
    p.add_argument("--limit", type=int, metavar="N", help="only the last N rows")
    p.set_defaults(func=cmd_history)
