"""`llm-upkeep models pin|verify|promote|rollback|list` and `llm-upkeep run evaluate-model|rollback-model`.

Exit codes as everywhere: 0 ok, 1 a problem found or a switch that failed, 2 config/usage error
(unknown endpoint, candidate not found, unreadable lock). With --json exactly one JSON object.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llm_upkeep.cli import (
    EXIT_DEGRADED,
    EXIT_OK,
    EXIT_USAGE,
    add_common,
    emit_json,
    precheck_config,
    run_flow,
)
from llm_upkeep.redact import redact


def _fail(args, kind: str, message: str, code: int = EXIT_USAGE) -> int:
    message = redact(message)
    print(f"llm-upkeep models: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        emit_json({"ok": False, "error": kind, "message": message})
    return code


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _print_problems(problems) -> None:
    for p in problems:
        print(
            f"  PROBLEM {p.model}: {p.file}\n          expected {p.expected}\n          actual   {p.actual}"
        )


def cmd_models_verify(args) -> int:
    from llm_upkeep.models.verify import verify_models

    cfg = precheck_config(args.config)
    report = verify_models(cfg, endpoint=args.endpoint)
    if not report.endpoints and not report.problems:  # verified nothing: not a pass (llm_upkeep/noconfig.py)
        return _fail(args, "nothing_checked", "nothing verified: " + "; ".join(report.warnings))
    if args.json:
        emit_json(report.public())
    else:
        state = "OK" if report.ok else f"{len(report.problems)} PROBLEM(S)"
        print(f"models verify: {state} ({report.files_hashed} files, {_gb(report.bytes_hashed)} in "
              f"{report.seconds:.1f} s, {report.throughput_mb_s:.0f} MB/s); lock {report.lock_file}")  # fmt: skip
        for s in report.endpoints:
            print(f"  {s.endpoint:<20} {s.store:<6} {s.models} model(s), {s.files} file(s), "
                  f"{s.problems} problem(s); active {s.active}")  # fmt: skip
        _print_problems(report.problems)
        for w in report.warnings:
            print(f"  note: {w}")
    return EXIT_OK if report.ok else EXIT_DEGRADED


def cmd_models_pin(args) -> int:
    from llm_upkeep.models.lock import LockError
    from llm_upkeep.models.pins import pin_models

    cfg = precheck_config(args.config)
    try:
        report = pin_models(cfg, endpoint=args.endpoint)
    except LockError as exc:
        return _fail(args, "lock", str(exc))
    if args.json:
        emit_json(report.public())
    else:
        print(f"models pin: {'OK' if report.ok else 'PROBLEMS'}; {report.lock_file} "
              f"{'written' if report.written else 'unchanged'} ({report.files_hashed} files, "
              f"{_gb(report.bytes_hashed)}, {report.seconds:.1f} s)")  # fmt: skip
        for ep, names in report.pinned.items():
            print(f"  {ep}: {len(names)} pinned: {', '.join(names)}")
        _print_problems(report.problems)
    return EXIT_OK if report.ok else EXIT_DEGRADED


def _print_switch(res) -> None:
    state = "OK" if res.ok else ("ROLLED BACK" if res.rolled_back else "FAILED")
    dry = " (dry run)" if res.dry_run else ""
    print(f"models {res.action} {res.endpoint}: {state}{dry} in {res.seconds:.2f} s")
    print(f"  from {res.from_version}\n  to   {res.to_version}")
    if res.restart is not None:
        print(f"  restart: {res.restart.decision} ({res.restart_s} s)")
    if res.ready is not None:
        print(f"  answering: {res.ready.ok} after {res.ready.seconds:.2f} s ({res.ready.attempts} probes)"
              + (f"; last error: {res.ready.last_error}" if res.ready.last_error and not res.ready.ok else ""))  # fmt: skip
    if res.detail:
        print(f"  {res.detail}")
    _print_problems(res.problems)
    for p in res.pruned:
        print(f"  removed old version {p}")


def _switch(args, fn, **kw) -> int:
    from llm_upkeep.models.active import ActiveError
    from llm_upkeep.models.lock import LockError
    from llm_upkeep.models.promote import SwitchError

    cfg = precheck_config(args.config)
    try:
        res = fn(cfg, **kw)
    except (SwitchError, ActiveError, LockError) as exc:
        return _fail(args, "switch", str(exc))
    if args.json:
        emit_json(res.public())
    else:
        _print_switch(res)
    return EXIT_OK if res.ok else EXIT_DEGRADED


def cmd_models_promote(args) -> int:
    from llm_upkeep.models.promote import promote_model

    return _switch(
        args, promote_model, candidate=args.candidate, endpoint=args.endpoint, dry_run=args.dry_run,
        reason=args.reason or "models promote (CLI)", verify=not args.no_verify, expected_sha256=args.sha256,
        auto_rollback=not args.no_rollback,
    )  # fmt: skip


def cmd_models_rollback(args) -> int:
    from llm_upkeep.models.promote import rollback_model

    return _switch(
        args, rollback_model, endpoint=args.endpoint, to=args.to, dry_run=args.dry_run,
        reason=args.reason or "models rollback (CLI)",
    )  # fmt: skip


def list_models_state(cfg, endpoint: str | None = None) -> list[dict[str, Any]]:
    """Per managed endpoint: active selection, versions on disk (pinned or not), recent switches."""
    from llm_upkeep.models.active import read_active, read_history
    from llm_upkeep.models.endpoints import lock_path, managed_endpoint, managed_endpoints, models_state_dir
    from llm_upkeep.models.inventory import list_versions
    from llm_upkeep.models.lock import LockError, read_lock
    from llm_upkeep.models.promote import SwitchError, rollback_target
    from llm_upkeep.models.store import list_models, read_manifest

    try:
        lock = read_lock(lock_path(cfg))
    except LockError:
        lock = None
    out = []
    for m in [managed_endpoint(cfg, endpoint)] if endpoint else [*managed_endpoints(cfg)]:
        pins = lock.endpoints.get(m.name) if lock else None
        entry: dict[str, Any] = {"endpoint": m.name, "store": m.store, "selector": m.selector,
                                 "active": read_active(m), "versions": []}  # fmt: skip
        if m.store == "ollama" and m.models_dir is not None:
            for n in list_models(m.models_dir):
                try:
                    man = read_manifest(m.models_dir, n)
                    digest, size = man.digest, man.model_bytes
                except Exception:  # an unreadable manifest is listed, verify says why
                    digest, size = None, None
                entry["versions"].append({"name": n.short, "digest": digest, "bytes": size,
                                          "pinned": bool(pins and pins.tag(n.short))})  # fmt: skip
        elif m.versions_dir is not None:
            for v in list_versions(m.versions_dir):
                p = m.versions_dir / v
                size = (
                    p.stat().st_size
                    if p.is_file()
                    else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
                )
                entry["versions"].append({"name": v, "path": str(p), "bytes": size,
                                          "pinned": bool(pins and pins.version(v))})  # fmt: skip
        hist = read_history(models_state_dir(cfg, m.name))
        entry["history"] = [r.model_dump(mode="json") for r in hist[-10:]]
        try:
            entry["rollback_to"] = rollback_target(cfg, m)[0]
        except SwitchError:
            entry["rollback_to"] = None
        out.append(entry)
    return out


def cmd_models_list(args) -> int:
    cfg = precheck_config(args.config)
    data = list_models_state(cfg, args.endpoint)
    if args.json:
        emit_json({"ok": True, "endpoints": data})
        return EXIT_OK
    for e in data:
        print(f"{e['endpoint']} ({e['store']}, {e['selector']}): active {e['active']}")
        for v in e["versions"]:
            size = _gb(v["bytes"]) if v.get("bytes") is not None else "?"
            print(f"  {'pinned' if v['pinned'] else 'UNPINNED':<8} {v['name']:<40} {size}")
        print(f"  rollback would restore: {e['rollback_to']}")
        for r in e["history"][-5:]:
            print(
                f"  {r['at'][:19]} {r['action']:<13} {'ok' if r['ok'] else 'FAILED':<6} -> {r['to_version']}"
            )
    return EXIT_OK


def add_models_commands(subparsers) -> None:
    p = subparsers.add_parser("models", help="pin, verify, promote and roll back model versions")
    sub = p.add_subparsers(dest="models_cmd", required=True, metavar="ACTION")

    def common(q: argparse.ArgumentParser) -> None:
        add_common(q)
        q.add_argument(
            "--endpoint", metavar="NAME", help="one managed endpoint (default: all / the only one)"
        )

    q = sub.add_parser("pin", help="write models.lock from what is installed")
    common(q)
    q.set_defaults(func=cmd_models_pin)

    q = sub.add_parser("verify", help="check model files against models.lock, offline")
    common(q)
    q.set_defaults(func=cmd_models_verify)

    q = sub.add_parser("promote", help="make CANDIDATE the active version (swap, restart, probe)")
    q.add_argument("candidate", help="Ollama tag, version name in versions_dir, or a path")
    common(q)
    q.add_argument("--dry-run", action="store_true", help="say what would happen, change nothing")
    q.add_argument("--no-verify", action="store_true", help="skip the candidate's checksum verification")
    q.add_argument("--sha256", metavar="HEX", help="expected sha256 of a single-file candidate (publisher's)")
    q.add_argument("--no-rollback", action="store_true", help="leave a failed promotion in place")
    q.add_argument("--reason", help="recorded in the history and the restart ledger")
    q.set_defaults(func=cmd_models_promote)

    q = sub.add_parser("rollback", help="switch back to the previous version (swap, restart, probe)")
    common(q)
    q.add_argument("--to", metavar="VERSION", help="a version name, path or tag (default: the previous one)")
    q.add_argument("--dry-run", action="store_true", help="say what would happen, change nothing")
    q.add_argument("--reason", help="recorded in the history and the restart ledger")
    q.set_defaults(func=cmd_models_rollback)

    q = sub.add_parser("list", help="active version, versions on disk, recent switches")
    common(q)
    q.set_defaults(func=cmd_models_list)


# ---------------------------------------------------------------- run evaluate-model / rollback-model


def cmd_run_evaluate_model(args) -> int:
    precheck_config(args.config)
    from flows.evaluate_model import evaluate_model

    result = run_flow(
        evaluate_model, candidate=args.candidate, endpoint=args.endpoint, config_path=args.config,
        approval=args.approval, expected_sha256=args.sha256,
    )  # fmt: skip
    if args.json:
        emit_json(result.public())
    else:
        print(f"evaluate-model {result.candidate} for {result.endpoint}: {result.status.upper()}"
              f" ({result.seconds:.1f} s)\n  {result.detail}")  # fmt: skip
    return EXIT_OK if result.status in ("promoted", "rejected", "not_promoted") else EXIT_DEGRADED


def cmd_run_rollback_model(args) -> int:
    precheck_config(args.config)
    from flows.rollback_model import rollback_model_flow

    result = run_flow(rollback_model_flow, endpoint=args.endpoint, to=args.to, config_path=args.config)
    if args.json:
        emit_json(result.public())
    else:
        _print_switch(result)
    return EXIT_OK if result.ok else EXIT_DEGRADED


def add_models_run_commands(run_sub) -> None:
    p = run_sub.add_parser("evaluate-model", help="pull, verify, benchmark in staging, approve, promote")
    p.add_argument("candidate", help="Ollama tag or a model path")
    add_common(p)
    p.add_argument(
        "--endpoint", metavar="NAME", help="endpoint to promote on (default: the only managed one)"
    )
    p.add_argument("--approval", choices=["manual", "auto"], help="override [models].approval")
    p.add_argument("--sha256", metavar="HEX", help="expected sha256 of a single-file candidate")
    p.set_defaults(func=cmd_run_evaluate_model)

    p = run_sub.add_parser("rollback-model", help="switch back to the previous model version")
    add_common(p)
    p.add_argument("--endpoint", metavar="NAME", help="endpoint (default: the only managed one)")
    p.add_argument("--to", metavar="VERSION", help="version, path or tag (default: the previous one)")
    p.set_defaults(func=cmd_run_rollback_model)
