"""Human summaries (markdown for Prefect artifacts) and CheckResults for Slack alerts."""

from __future__ import annotations

from llm_upkeep.backup.models import BackupResult, DrillResult, PruneResult
from llm_upkeep.checks import CheckResult, Status


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_backup_summary(r: BackupResult, where: str, pruned: PruneResult | None = None) -> str:
    speed = human_bytes(r.upload_bytes_per_s) + "/s" if r.uploaded_bytes else "n/a (nothing new)"
    lines = [
        f"# Backup {r.snapshot}",
        "",
        f"Store: `{where}`",
        "",
        "| | |",
        "|---|---|",
        f"| Files | {r.files} ({human_bytes(r.bytes)}) |",
        f"| New objects uploaded | {r.uploaded_objects} ({human_bytes(r.uploaded_bytes)}) |",
        f"| Objects already in the store | {r.reused_objects} |",
        f"| Files hashed (cache misses) | {r.hashed_files} ({human_bytes(r.hashed_bytes)}) |",
        f"| Symlinks | {r.symlinks} |",
        f"| Skipped | {len(r.skipped)} |",
        f"| Duration | {r.duration_s:.1f} s |",
        f"| Upload throughput | {speed} |",
    ]
    if pruned is not None:
        lines.append(
            f"| Retention | kept {len(pruned.kept)}, deleted {len(pruned.deleted_snapshots)} snapshots and "
            f"{pruned.deleted_objects} objects ({human_bytes(pruned.deleted_bytes)}) |"
        )
        if pruned.sweep_skipped:
            lines.append(f"| Sweep skipped | {_md_escape(pruned.sweep_skipped)} |")
    if r.skipped:
        lines += ["", "## Skipped", "", "| Path | Reason |", "|---|---|"]
        lines += [f"| `{_md_escape(s.path)}` | {_md_escape(s.reason)} |" for s in r.skipped[:200]]
        if len(r.skipped) > 200:
            lines.append(f"| ... | {len(r.skipped) - 200} more |")
    return "\n".join(lines) + "\n"


def render_drill_summary(d: DrillResult, where: str) -> str:
    lines = [
        f"# Restore drill: {'OK' if d.ok else 'FAILED'}",
        "",
        f"Snapshot `{d.snapshot}` from `{where}`",
        "",
        "| | |",
        "|---|---|",
        f"| Files sampled | {d.sampled} |",
        f"| Restored and verified (sha256) | {d.restored} ({human_bytes(d.bytes)}) |",
        f"| Byte-identical to the source | {d.matched_source} |",
        f"| Source changed since (not compared) | {d.source_changed} |",
        f"| Duration | {d.duration_s:.1f} s |",
    ]
    if d.problems:
        lines += ["", "## Problems", "", "| Problem | Path | Detail |", "|---|---|---|"]
        lines += [
            f"| {p.problem} | `{_md_escape(p.path or '')}` | {_md_escape(p.detail)} |"
            for p in d.problems[:200]
        ]
    return "\n".join(lines) + "\n"


def backup_checks(r: BackupResult | None, target: str, error: str | None = None) -> list[CheckResult]:
    """One check for the monthly backup: error when it failed, warn when files were skipped."""
    if r is None:
        return [
            CheckResult(check="backup", target=target, status=Status.ERROR, detail=error or "backup failed")
        ]
    status = Status.WARN if r.skipped else Status.OK
    detail = f"snapshot {r.snapshot}: {r.files} files, {r.uploaded_objects} new objects"
    if r.skipped:
        detail += f"; {len(r.skipped)} skipped, e.g. {r.skipped[0].path}: {r.skipped[0].reason}"
    return [
        CheckResult(
            check="backup", target=target, status=status, value=len(r.skipped), unit="skipped", detail=detail
        )
    ]


def drill_checks(d: DrillResult | None, target: str, error: str | None = None) -> list[CheckResult]:
    if d is None:
        return [
            CheckResult(
                check="restore_drill", target=target, status=Status.ERROR, detail=error or "drill failed"
            )
        ]
    if d.ok:
        return [
            CheckResult(
                check="restore_drill", target=target, status=Status.OK, value=d.restored, unit="files"
            )
        ]
    first = d.problems[0]
    return [
        CheckResult(
            check="restore_drill",
            target=target,
            status=Status.ALERT,
            value=len(d.problems),
            unit="problems",
            detail=f"{first.problem}: {first.path or ''} {first.detail}".strip(),
        )
    ]
