"""`llm-upkeep backup run|list|verify|restore|prune`.

Exit codes: 0 ok, 1 failed (verification problems, S3 errors, restore refused), 2 config or
usage error (including backup not configured). With --json exactly one JSON document goes to
stdout; logs and progress bars go to stderr (bars only when stderr is a terminal).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

from llm_upkeep.backup.errors import BackupError, NotConfiguredError
from llm_upkeep.backup.report import human_bytes
from llm_upkeep.configbase import ConfigError
from llm_upkeep.redact import redact

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("llm_upkeep.backup")

_USAGE_KINDS = {"not_configured", "bad_snapshot_id", "no_match"}


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def _progress_bars() -> Iterator[Any]:
    """A progress callback drawing rich bars on a terminal; None (no output) otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bars = Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[items]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def update(p) -> None:
        if p.phase not in tasks:
            tasks[p.phase] = bars.add_task(p.phase, total=max(p.total_bytes, 1), items="")
        bars.update(
            tasks[p.phase],
            completed=min(p.done_bytes, p.total_bytes),
            total=max(p.total_bytes, 1),
            items=f"{p.done_items}/{p.total_items}",
        )

    with bars:
        yield update


def _load(args: argparse.Namespace):
    from llm_upkeep.config import load_config

    cfg = load_config(args.config)
    if not cfg.backup.configured:
        raise NotConfiguredError(cfg.source)
    return cfg


def _host(args: argparse.Namespace, cfg) -> str | None:
    """The snapshot namespace a command acts on: --host, else this host's (see fleet.this_host)."""
    from llm_upkeep.fleet import this_host

    return this_host(cfg, getattr(args, "host", None))


def _fail(args: argparse.Namespace, exc: BackupError) -> int:
    print(f"llm-upkeep backup: {exc.kind}: {exc}", file=sys.stderr)
    if args.json:
        _emit(exc.public())
    return EXIT_USAGE if exc.kind in _USAGE_KINDS else EXIT_FAILED


def _guard(fn):
    """Config and backup errors become one stderr line (and one JSON object), never a traceback."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ConfigError as exc:
            print(f"llm-upkeep: config error: {redact(exc)}", file=sys.stderr)
            if args.json:
                _emit({"error": "config", "message": redact(exc), "file": exc.file, "key": exc.key})
            return EXIT_USAGE
        except BackupError as exc:
            return _fail(args, exc)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_guard
def handle_run(args: argparse.Namespace) -> int:
    from llm_upkeep.backup.snapshot import run_backup

    cfg = _load(args)
    with _progress_bars() as bar:
        result = run_backup(cfg.backup, cfg.state_path, on_progress=bar, host=_host(args, cfg))
    for s in result.skipped:
        log.warning("skipped %s: %s", s.path, s.reason)
    if args.json:
        _emit(result.model_dump(mode="json"))
    else:
        print(
            f"snapshot {result.snapshot}: {result.files} files, {human_bytes(result.bytes)}; uploaded "
            f"{result.uploaded_objects} objects ({human_bytes(result.uploaded_bytes)}), reused "
            f"{result.reused_objects}; {len(result.skipped)} skipped; {result.duration_s:.1f} s"
        )
        for s in result.skipped:
            print(f"  skipped {s.path}: {s.reason}")
    return EXIT_OK


@_guard
def handle_list(args: argparse.Namespace) -> int:
    from llm_upkeep.backup.retention import list_snapshots
    from llm_upkeep.backup.snapshot import ALL_NAMESPACES, open_store

    cfg = _load(args)
    snaps = list_snapshots(open_store(cfg.backup), ALL_NAMESPACES if args.all_hosts else _host(args, cfg))
    if args.json:
        _emit([s.model_dump(mode="json") for s in snaps])
    else:
        if not snaps:
            print("no snapshots")
        for s in snaps:
            size = human_bytes(s.bytes) if s.bytes is not None else "?"
            print(
                f"{s.snapshot}  {s.created:%Y-%m-%d %H:%M:%S}Z  {s.files if s.files is not None else '?'} files  {size}"
            )
    return EXIT_OK


@_guard
def handle_verify(args: argparse.Namespace) -> int:
    from llm_upkeep.backup.restore import resolve_snapshot
    from llm_upkeep.backup.snapshot import open_store
    from llm_upkeep.backup.verify import verify_snapshot

    cfg = _load(args)
    store = open_store(cfg.backup)
    sid = resolve_snapshot(store, args.snapshot, _host(args, cfg))
    with _progress_bars() as bar:
        res = verify_snapshot(
            store, sid, deep=args.deep or args.sample is not None, sample=args.sample, on_progress=bar
        )
    if args.json:
        _emit(res.model_dump(mode="json"))
    else:
        verdict = "OK" if res.ok else f"FAILED ({len(res.problems)} problems)"
        print(
            f"snapshot {res.snapshot}: {verdict}; {res.objects} objects checked, {res.deep_checked} rehashed"
        )
        for p in res.problems:
            print(f"  {p.problem}: {p.path or ''} {p.object or ''} {p.detail}")
    return EXIT_OK if res.ok else EXIT_FAILED


@_guard
def handle_restore(args: argparse.Namespace) -> int:
    from llm_upkeep.backup.restore import restore_snapshot
    from llm_upkeep.backup.snapshot import open_store

    cfg = _load(args)
    store = open_store(cfg.backup)
    with _progress_bars() as bar:
        res = restore_snapshot(
            store, args.snapshot, args.to, patterns=args.path, force=args.force, on_progress=bar,
            host=_host(args, cfg),
        )  # fmt: skip
    if args.json:
        _emit(res.model_dump(mode="json"))
    else:
        verdict = "restored" if res.ok else "NOT restored" if res.files == 0 else "partly restored"
        print(
            f"snapshot {res.snapshot} {verdict} to {res.to}: {res.files} files ({human_bytes(res.bytes)}), "
            f"{res.identical} already identical, {res.symlinks} symlinks"
        )
        for p in res.problems:
            print(f"  {p.problem}: {p.path or ''} {p.detail}")
    return EXIT_OK if res.ok else EXIT_FAILED


@_guard
def handle_prune(args: argparse.Namespace) -> int:
    from llm_upkeep.backup.retention import prune

    cfg = _load(args)
    res = prune(cfg.backup, cfg.state_path, dry_run=args.dry_run, host=_host(args, cfg))
    if args.json:
        _emit(res.model_dump(mode="json"))
    else:
        would = "would delete" if res.dry_run else "deleted"
        print(
            f"kept {len(res.kept)} snapshots; {would} {len(res.deleted_snapshots)} snapshots and "
            f"{res.deleted_objects} objects ({human_bytes(res.deleted_bytes)})"
        )
        if res.sweep_skipped:
            print(f"  objects not swept: {res.sweep_skipped}")
    return EXIT_OK


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="F", help="config file (else $LLM_UPKEEP_CONFIG, else ./llm-upkeep.toml)"
    )
    p.add_argument(
        "--host", metavar="NAME", help="fleet host whose snapshot namespace to use (default: this host's)"
    )
    p.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")


def add_backup_commands(subparsers: Any) -> None:
    """Register `backup` and its sub-commands on the top-level parser's subparsers."""
    backup = subparsers.add_parser(
        "backup", help="content-addressed backups to S3: run, list, verify, restore, prune"
    )
    sub = backup.add_subparsers(dest="backup_command", required=True, metavar="ACTION")

    p = sub.add_parser("run", help="back up the configured sets now (uploads only new content)")
    _common(p)
    p.set_defaults(func=handle_run)

    p = sub.add_parser("list", help="list snapshots, oldest first")
    p.add_argument("--all-hosts", action="store_true", help="every host's snapshots, not only this host's")
    _common(p)
    p.set_defaults(func=handle_list)

    p = sub.add_parser("verify", help="check every object of a snapshot with HeadObject + checksum")
    p.add_argument("snapshot", metavar="SNAPSHOT", help="snapshot id or 'latest'")
    p.add_argument("--deep", action="store_true", help="also download and rehash every object")
    p.add_argument(
        "--sample", type=int, metavar="N", help="deep-check only N random objects (implies --deep)"
    )
    _common(p)
    p.set_defaults(func=handle_verify)

    p = sub.add_parser("restore", help="restore a snapshot into a directory")
    p.add_argument("snapshot", metavar="SNAPSHOT", help="snapshot id or 'latest'")
    p.add_argument("--to", required=True, metavar="DIR", help="destination directory (created if missing)")
    p.add_argument(
        "--path",
        action="append",
        metavar="GLOB",
        help="restore only matching paths (repeatable), e.g. 'configs/**'",
    )
    p.add_argument("--force", action="store_true", help="replace existing files that differ")
    _common(p)
    p.set_defaults(func=handle_restore)

    p = sub.add_parser("prune", help="keep the last keep_snapshots snapshots; delete unreferenced objects")
    p.add_argument("--dry-run", action="store_true", help="report what would be deleted, delete nothing")
    _common(p)
    p.set_defaults(func=handle_prune)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m llm_upkeep.backup.cli backup run ...`)."""
    parser = argparse.ArgumentParser(prog="llm-upkeep")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    add_backup_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from llm_upkeep.redact import install_log_redaction

    install_log_redaction()
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
