"""Error-log review: turn one streamed scan into findings a person can act on.

Findings, each with evidence lines: XIDs (with NVIDIA's meaning and action), bursts of one
failure class, OOM/CUDA errors, crashes and restarts, repeated identical failures (normalized
messages) and request-volume anomalies per hour against the same hour in the previous weeks
(robust z-score: median and MAD). Sporadic timeouts or 5xx are counted, not findings.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from llm_upkeep.checks import SEVERITY, CheckResult, Status
from llm_upkeep.review.config import ReviewConfig
from llm_upkeep.review.logscan import CLASSES, Evidence, LogScan, SourceVolume, scan_logs
from llm_upkeep.review.window import ReviewWindow
from llm_upkeep.review.xid import describe_xid

CLASS_LABELS = {
    "timeout": "timeouts",
    "http_5xx": "HTTP 5xx",
    "oom": "out of memory / KV cache",
    "cuda_error": "CUDA errors",
    "xid": "GPU XID events",
    "crash_restart": "crashes / restarts",
    "connection_refused": "connection refused",
}

ACTIONS = {
    "oom": "KV cache overflow (runbook): reduce concurrent requests or the context window.",
    "cuda_error": "Check GPU health (XIDs, nvidia-smi -q) and restart the serving process; reset the GPU if it repeats.",
    "crash_restart": "Read the crash evidence; restart limits only hide a cause that is still there.",
    "connection_refused": "Process crashed (runbook): check logs, restart, increase the restart limit.",
    "timeout": "Find the slow path: long contexts, saturation, or a hung process (restart).",
    "http_5xx": "Check the server log around these requests for the failing cause.",
}

BURST_CLASSES = ("oom", "cuda_error", "timeout", "http_5xx", "connection_refused")
_BURST_ALERT = {"oom", "cuda_error"}


class Finding(BaseModel):
    kind: Literal["xid", "burst", "errors", "crash", "repeated", "volume", "coverage"] = Field(
        description="What rule produced it."
    )
    cls: str | None = Field(default=None, description="Failure class, when it is about one.")
    severity: Literal["warn", "alert"] = Field(description="warn or alert.")
    title: str = Field(description="One line.")
    detail: str = Field(default="", description="Why it matters / what was measured.")
    action: str | None = Field(default=None, description="What to do.")
    count: int = Field(default=0, description="Lines (or requests) behind it.")
    first: datetime | None = Field(default=None, description="First occurrence (UTC).")
    last: datetime | None = Field(default=None, description="Last occurrence (UTC).")
    evidence: list[str] = Field(default_factory=list, description="Log lines that show it (redacted).")


class RepeatedFailure(BaseModel):
    cls: str = Field(description="Failure class.")
    message: str = Field(description="Normalized message (numbers, ids, addresses, times stripped).")
    count: int = Field(description="Lines in the week.")
    first: datetime | None = Field(default=None, description="First seen (UTC).")
    last: datetime | None = Field(default=None, description="Last seen (UTC).")
    sources: list[str] = Field(default_factory=list, description="Sources it came from.")
    evidence: list[str] = Field(default_factory=list, description="Raw lines (redacted).")


class VolumeAnomaly(BaseModel):
    source: str = Field(description="Log source.")
    hour: datetime = Field(description="Start of the hour (UTC).")
    count: int = Field(description="Requests in that hour.")
    median: float = Field(description="Median of the baseline hours.")
    mad: float = Field(description="Median absolute deviation of the baseline hours.")
    z: float = Field(description="Robust z-score.")
    direction: Literal["spike", "drop"] = Field(description="Above or below the baseline.")
    baseline_hours: int = Field(description="How many baseline hours were compared.")
    evidence: list[str] = Field(default_factory=list, description="What was measured and a request line.")


class ErrorReview(BaseModel):
    verdict: Status = Field(description="Worst finding: ok, warn or alert.")
    summary: str = Field(description="One line for people.")
    window_start: datetime = Field(description="Review week start (UTC).")
    window_end: datetime = Field(description="Review week end (UTC).")
    files: int = Field(default=0, description="Files read.")
    bytes_scanned: int = Field(default=0, description="Bytes read (uncompressed).")
    lines_scanned: int = Field(default=0, description="Lines read.")
    totals: dict[str, int] = Field(default_factory=dict, description="Lines per class in the week.")
    counts_by_day: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Day -> class -> lines."
    )
    findings: list[Finding] = Field(default_factory=list, description="Everything that needs a look.")
    top_repeated: list[RepeatedFailure] = Field(default_factory=list, description="Most repeated failures.")
    volume_anomalies: list[VolumeAnomaly] = Field(default_factory=list, description="Unusual request hours.")
    volume_notes: list[str] = Field(default_factory=list, description="Why a volume check did not run.")
    problems: list[str] = Field(default_factory=list, description="Missing or unreadable logs.")
    checks: list[CheckResult] = Field(default_factory=list, description="Counts as checks, for history.")


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _fmt(ts: float | None) -> str:
    return "?" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%a %Y-%m-%d %H:%M:%S")


def find_bursts(times: list[float], window_s: float, min_count: int) -> list[tuple[float, float, int]]:
    """(start, end, count) of runs where at least min_count events fall within window_s."""
    n = len(times)
    marked = [False] * n
    j = 0
    last_marked = -1
    for i in range(n):
        while times[i] - times[j] > window_s:
            j += 1
        if i - j + 1 >= min_count:
            for k in range(max(j, last_marked + 1), i + 1):
                marked[k] = True
            last_marked = i
    bursts: list[tuple[float, float, int]] = []
    i = 0
    while i < n:
        if not marked[i]:
            i += 1
            continue
        k = i
        while k + 1 < n and marked[k + 1] and times[k + 1] - times[k] <= window_s:
            k += 1
        bursts.append((times[i], times[k], k - i + 1))
        i = k + 1
    return bursts


def _samples_between(scan: LogScan, cls: str, t0: float, t1: float, limit: int) -> list[str]:
    out: list[str] = []
    for hour in range(int(t0 // 3600), int(t1 // 3600) + 1):
        for ev in scan.hour_samples.get((cls, hour), []):
            if ev.ts is not None and t0 <= ev.ts <= t1 and len(out) < limit:
                out.append(ev.render())
    return out


def robust_z(x: float, baseline: list[float]) -> tuple[float, float, float]:
    """(z, median, MAD); the scale never drops below Poisson noise sqrt(median), nor below 1."""
    med = statistics.median(baseline)
    mad = statistics.median([abs(v - med) for v in baseline])
    sigma = max(1.4826 * mad, med**0.5, 1.0)
    return (x - med) / sigma, med, mad


def volume_anomalies(
    vol: SourceVolume, window: ReviewWindow, cfg: ReviewConfig
) -> tuple[list[VolumeAnomaly], str | None]:
    """Hours of the week whose request count is far from the same hour in the previous weeks."""
    if vol.first_ts is None or vol.last_ts is None:
        return [], f"{vol.source}: no dated request lines" + (
            f" ({vol.undated} undated)" if vol.undated else ""
        )
    # Only whole hours the log covers: the first and last hour of a log are partial.
    lo = max(int(vol.first_ts // 3600) + 1, int(window.baseline_start_s // 3600))
    hi = min(int(vol.last_ts // 3600) - 1, int(window.end_s // 3600) - 1)
    week0 = int(window.start_s // 3600)
    period = 24 if cfg.volume_baseline == "hour_of_day" else 168
    base_hours = range(lo, min(hi + 1, week0))
    by_slot: dict[int, list[float]] = {}
    for h in base_hours:
        by_slot.setdefault(h % period, []).append(float(vol.hourly.get(h, 0)))
    week_hours = range(max(lo, week0), hi + 1)
    if not week_hours:
        return [], f"{vol.source}: no complete hour of requests in the review week"
    out: list[VolumeAnomaly] = []
    skipped = 0
    for h in week_hours:
        base = by_slot.get(h % period, [])
        if len(base) < cfg.volume_min_baseline_hours:
            skipped += 1
            continue
        x = vol.hourly.get(h, 0)
        z, med, mad = robust_z(x, base)
        if abs(z) >= cfg.volume_z_threshold and abs(x - med) >= cfg.volume_min_delta:
            when = datetime.fromtimestamp(h * 3600, UTC)
            prev = vol.hourly.get(h - 168)
            ev = [
                f"{vol.source}: {x} requests {when:%a %Y-%m-%d %H:00}-{(when + timedelta(hours=1)):%H:00} UTC; "
                f"baseline median {med:g} (MAD {mad:g}) over {len(base)} earlier hours; robust z {z:+.1f}"
                + (f"; same hour a week before: {prev}" if prev is not None else "")
            ]
            sample = vol.samples.get(h)
            if sample is not None:
                ev.append("first request that hour: " + sample.text)
            out.append(
                VolumeAnomaly(
                    source=vol.source, hour=when, count=x, median=med, mad=mad, z=round(z, 2),
                    direction="spike" if x > med else "drop", baseline_hours=len(base), evidence=ev,
                )
            )  # fmt: skip
    note = None
    if skipped == len(week_hours):
        note = (
            f"{vol.source}: not enough history for a baseline (need {cfg.volume_min_baseline_hours} earlier "
            f"hours per {'hour of day' if period == 24 else 'hour of week'}; logs start {_fmt(vol.first_ts)})"
        )
    return out, note


def review_scan(scan: LogScan, cfg: ReviewConfig) -> ErrorReview:
    """Findings, counts and checks from one scan."""
    window = scan.window
    n_ev = cfg.evidence_lines
    findings: list[Finding] = []
    problems = [f"source {s}: no file matches {p}" for s, p in scan.missing]
    problems += [f"source {f.source}: {f.path}: {f.error}" for f in scan.files if f.error]
    for p in problems:
        findings.append(
            Finding(kind="coverage", severity="warn", title=p, detail="this log was not (fully) read")
        )

    # XIDs, one finding per code and device
    for (code, dev), st in sorted(scan.xids.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        info = describe_xid(code)
        findings.append(
            Finding(
                kind="xid", cls="xid", severity=info.severity, title=f"XID {code} ({info.name}) on GPU {dev}: {st.count}x",
                detail=info.meaning, action=info.action, count=st.count, first=_dt(st.first_ts),
                last=_dt(st.last_ts), evidence=[e.render() for e in st.samples],
            )
        )  # fmt: skip

    # bursts, and OOM/CUDA errors outside bursts
    window_s = cfg.burst_window_minutes * 60
    for cls in BURST_CLASSES:
        times = sorted(scan.class_times.get(cls, []))
        bursts = find_bursts(times, window_s, cfg.burst_min_count)
        in_bursts = 0
        for t0, t1, n in bursts:
            in_bursts += n
            mins = (t1 - t0) / 60
            findings.append(
                Finding(
                    kind="burst", cls=cls, severity="alert" if cls in _BURST_ALERT else "warn",
                    title=f"Burst of {CLASS_LABELS[cls]}: {n} in {mins:.1f} min from {_fmt(t0)} UTC",
                    detail=f"{n} {CLASS_LABELS[cls]} lines within {cfg.burst_window_minutes:g}-minute windows",
                    action=ACTIONS.get(cls), count=n, first=_dt(t0), last=_dt(t1),
                    evidence=_samples_between(scan, cls, t0, t1, n_ev),
                )
            )  # fmt: skip
        rest = len(times) - in_bursts
        if cls in _BURST_ALERT and rest > 0:
            findings.append(
                Finding(
                    kind="errors", cls=cls, severity="warn", title=f"{rest} {CLASS_LABELS[cls]} line(s) outside bursts",
                    action=ACTIONS.get(cls), count=rest, first=_dt(times[0]), last=_dt(times[-1]),
                    evidence=_samples_between(scan, cls, times[0], times[-1], n_ev),
                )
            )  # fmt: skip

    totals = scan.total_by_class
    if totals["crash_restart"]:
        times = sorted(scan.class_times.get("crash_restart", []))
        n = totals["crash_restart"]
        ev = _samples_between(scan, "crash_restart", times[0], times[-1], n_ev) if times else []
        if not ev:
            ev = [e.render() for r in scan.repeats.values() if r.cls == "crash_restart" for e in r.samples][
                :n_ev
            ]
        findings.append(
            Finding(
                kind="crash", cls="crash_restart", severity="alert" if n >= cfg.crash_alert_count else "warn",
                title=f"{n} crash/restart line(s)", action=ACTIONS["crash_restart"], count=n,
                first=_dt(times[0]) if times else None, last=_dt(times[-1]) if times else None, evidence=ev,
            )
        )  # fmt: skip

    # repeated identical failures
    reps = sorted(scan.repeats.values(), key=lambda r: (-r.count, r.cls, r.message))
    top = [
        RepeatedFailure(
            cls=r.cls, message=r.message, count=r.count, first=_dt(r.first_ts), last=_dt(r.last_ts),
            sources=sorted(r.sources), evidence=[e.render() for e in r.samples],
        )
        for r in reps[: cfg.top_n]
    ]  # fmt: skip
    for r in top:
        if r.count >= cfg.repeat_min_count and r.cls != "xid":
            findings.append(
                Finding(
                    kind="repeated", cls=r.cls, severity="warn", title=f"Repeated {CLASS_LABELS[r.cls]}: {r.count}x '{r.message[:160]}'",
                    detail=f"the same failure (normalized) {r.count} times from {', '.join(r.sources)}",
                    action=ACTIONS.get(r.cls), count=r.count, first=r.first, last=r.last, evidence=r.evidence,
                )
            )  # fmt: skip

    # request volume
    anomalies: list[VolumeAnomaly] = []
    notes: list[str] = []
    for vol in scan.volume.values():
        found, note = volume_anomalies(vol, window, cfg)
        anomalies += found
        if note:
            notes.append(note)
    for a in anomalies:
        findings.append(
            Finding(
                kind="volume", severity="warn",
                title=f"Request {a.direction} on {a.source}: {a.count} requests at {a.hour:%a %Y-%m-%d %H:00} UTC "
                f"(usually {a.median:g})",
                detail=f"robust z {a.z:+.1f} against {a.baseline_hours} earlier hours",
                action="Check for a runaway client, a new integration or a retry storm; consider rate limits."
                if a.direction == "spike" else "Check for an outage, a broken client or a routing change.",
                count=a.count, first=a.hour, last=a.hour + timedelta(hours=1), evidence=a.evidence,
            )
        )  # fmt: skip

    # counts per day (every day of the week, even quiet ones)
    days: dict[str, dict[str, int]] = {}
    d = window.start
    while d < window.end:
        days[d.strftime("%Y-%m-%d")] = dict.fromkeys(CLASSES, 0)
        d += timedelta(days=1)
    for (day, cls), n in sorted(scan.counts.items()):
        days.setdefault(day, dict.fromkeys(CLASSES, 0))[cls] += n

    sev = max((SEVERITY[Status(f.severity)] for f in findings), default=0)
    verdict = {0: Status.OK, 2: Status.WARN, 3: Status.ALERT}[sev]
    checks = _checks(findings, totals, scan, anomalies)
    incidents = [f for f in findings if f.kind != "coverage"]
    summary = (
        f"{len(incidents)} finding(s) in {len(scan.files)} file(s), {scan.lines:,} lines"
        if incidents
        else f"no incidents in {len(scan.files)} file(s), {scan.lines:,} lines"
    )
    if problems:
        summary += f"; {len(problems)} log problem(s)"
    findings.sort(key=lambda f: (-SEVERITY[Status(f.severity)], f.first or window.start))
    return ErrorReview(
        verdict=verdict, summary=summary, window_start=window.start, window_end=window.end,
        files=len(scan.files), bytes_scanned=scan.bytes_read, lines_scanned=scan.lines, totals=totals,
        counts_by_day=days, findings=findings, top_repeated=top, volume_anomalies=anomalies,
        volume_notes=notes, problems=problems, checks=checks,
    )  # fmt: skip


def _checks(findings: list[Finding], totals: dict[str, int], scan: LogScan, anomalies) -> list[CheckResult]:
    out = []
    for cls in CLASSES:
        sev = max((SEVERITY[Status(f.severity)] for f in findings if f.cls == cls), default=0)
        out.append(
            CheckResult(
                check=f"log_{cls}", target="week", status={0: Status.OK, 2: Status.WARN, 3: Status.ALERT}[sev],
                value=totals[cls], unit="lines", detail=CLASS_LABELS[cls],
            )
        )  # fmt: skip
    for name in scan.volume:
        n = sum(1 for a in anomalies if a.source == name)
        out.append(
            CheckResult(
                check="request_volume", target=name, status=Status.WARN if n else Status.OK, value=n,
                unit="anomalous hours", detail="hours far from the same hour in earlier weeks",
            )
        )  # fmt: skip
    missing = [f for f in findings if f.kind == "coverage"]
    out.append(
        CheckResult(
            check="log_sources", target="all", status=Status.WARN if missing else Status.OK, value=len(scan.files),
            unit="files", detail="; ".join(f.title for f in missing)[:500],
        )
    )  # fmt: skip
    return out


def review_error_logs(cfg: ReviewConfig, window: ReviewWindow) -> ErrorReview:
    """Scan every configured log once and review it."""
    if not cfg.sources:
        return ErrorReview(
            verdict=Status.SKIPPED, summary="no log sources configured ([[review.sources]])",
            window_start=window.start, window_end=window.end,
            checks=[CheckResult(check="log_sources", target="all", status=Status.SKIPPED, detail="none configured")],
        )  # fmt: skip
    return review_scan(scan_logs(cfg, window), cfg)


__all__ = [
    "ErrorReview",
    "Evidence",
    "Finding",
    "RepeatedFailure",
    "VolumeAnomaly",
    "review_error_logs",
    "review_scan",
]
