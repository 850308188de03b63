"""The last N lines of a server or kernel log, classified: the runbook's "check logs" step.

A tail reads backwards from the end of the file in blocks, so a multi-gigabyte log costs what
its last N lines cost. Line classes (oom, crash, xid, ...) come from the weekly review's
classifier when it is installed (llm_upkeep.review.logscan), else from a small local table.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime

import psutil

from llm_upkeep.bounded_run import run_bounded
from llm_upkeep.childenv import child_env
from llm_upkeep.redact import redact
from llm_upkeep.runbook.config import RunbookLogSource

log = logging.getLogger(__name__)

BLOCK = 64 * 1024
MAX_TAIL_BYTES = 8 * 1024 * 1024
MAX_LINE = 2000

_OOM = re.compile(
    r"out of memory|cudamalloc failed|kv cache|insufficient memory|requires more system memory|"
    r"unable to allocate|failed to allocate|oom-kill|killed process",
    re.I,
)
_CRASH = re.compile(
    r"panic:|segmentation fault|segfault|sigsegv|sigabrt|core dumped|fatal error|terminate called|"
    r"runner process (?:has )?terminated|main process exited|exited with (?:code|status) [1-9]|ggml_assert|"
    r"enginedeaderror|died unexpectedly",
    re.I,
)
_XID = re.compile(r"NVRM: Xid \(([^)]*)\):\s*(\d+)", re.I)
_SYSLOG_TS = re.compile(r"^(?:<\d+>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)")
_ISO_TS = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,]\d+)?(Z|[+-]\d\d:?\d\d)?")
_DMESG_TS = re.compile(r"^\[\s*(\d+\.\d+)\]")
_MONTHS = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}


@dataclass
class LogTail:
    """What one log source gave: its last lines, or why it could not be read."""

    source: str
    kind: str
    lines: list[str] = field(default_factory=list)
    error: str | None = None

    def matching(self, cls: str) -> list[str]:
        return [ln for ln in self.lines if classify_log_line(ln, self.kind) == cls]


@dataclass
class XidEvent:
    code: int
    device: str
    line: str
    name: str
    action: str
    severity: str
    ts: float | None


def tail_file(path: str, n: int) -> list[str]:
    """Last n lines of a text file, reading backwards in blocks (at most MAX_TAIL_BYTES)."""
    with open(os.path.expanduser(path), "rb") as f:
        f.seek(0, os.SEEK_END)
        pos = f.tell()
        data = b""
        while pos > 0 and data.count(b"\n") <= n and len(data) < MAX_TAIL_BYTES:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    lines = data.decode("utf-8", "replace").splitlines()
    if pos > 0 and lines:
        lines = lines[1:]  # the first one is probably cut
    return [ln[:MAX_LINE] for ln in lines[-n:]]


def tail_command(cmd: list[str], n: int, timeout_s: float) -> list[str]:
    """Last n lines of a command's output; a failure is raised as OSError with a readable message."""
    try:  # only the last KEEP_BYTES of what it prints are held, however much that is
        proc = run_bounded(cmd, timeout_s=timeout_s, env=child_env())
    except subprocess.TimeoutExpired:
        raise OSError(f"timed out after {timeout_s:g} s") from None
    if proc.returncode != 0 and not proc.stdout:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise OSError(f"exit status {proc.returncode}: {err[0][:MAX_LINE]}")
    lines = proc.stdout.decode("utf-8", "replace").splitlines()
    if proc.dropped_stdout and lines:
        lines = lines[1:]  # the first kept one is probably cut
    return [ln[:MAX_LINE] for ln in lines[-n:]]


def read_log(src: RunbookLogSource, n: int, timeout_s: float, target: str = "") -> LogTail:
    """Never raises: an unreadable log is a LogTail with error (redacted)."""
    out = LogTail(source=src.name, kind=src.kind)
    try:
        if src.path:
            lines = tail_file(src.path, n)
        elif src.unit:  # the unit's journal (llm_upkeep/journal.py), newest n entries
            from llm_upkeep.journal import entries_as_text, read_journal

            got = read_journal(src.unit, directory=src.journal_dir, last=n, timeout_s=timeout_s)
            if got.error and not got.entries:
                raise OSError(got.error)
            lines = entries_as_text(got.entries).decode("utf-8", "replace").splitlines()[-n:]
        else:
            cmd = [a.replace("{lines}", str(n)).replace("{target}", target) for a in src.command]
            lines = tail_command(cmd, n, timeout_s)
        out.lines = [redact(ln) for ln in lines]
    except OSError as exc:
        out.error = redact(f"{type(exc).__name__}: {exc.strerror or exc}")
    return out


def classify_log_line(line: str, kind: str = "server") -> str | None:
    """oom | crash_restart | xid | cuda_error | connection_refused | timeout | http_5xx | None."""
    try:
        from llm_upkeep.review.logscan import classify_line
    except ImportError:
        classify_line = None
    if classify_line is not None:
        try:
            return classify_line(line.lower().encode(), "kernel" if kind == "kernel" else "ollama")
        except Exception:  # an incompatible review module must not break the runbook
            classify_line = None
    if _XID.search(line):
        return "xid"
    if _OOM.search(line):
        return "oom"
    if _CRASH.search(line):
        return "crash_restart"
    return None


def line_time(line: str, now: float | None = None) -> float | None:
    """Epoch seconds of a syslog, ISO or dmesg stamp at the start of a line; None when undated."""
    now = time.time() if now is None else now
    head = line[:200]
    m = _SYSLOG_TS.match(head)
    if m and m.group(1) in _MONTHS:
        ref = datetime.fromtimestamp(now)
        try:
            dt = datetime(
                ref.year, _MONTHS[m.group(1)], int(m.group(2)), *(int(m.group(i)) for i in (3, 4, 5))
            )
        except ValueError:
            return None
        if dt.timestamp() > now + 2 * 86400:
            dt = dt.replace(year=ref.year - 1)  # syslog has no year: December's lines read in January
        return dt.timestamp()
    m = _ISO_TS.search(head)
    if m:
        stamp = m.group(0).replace(",", ".").replace(" ", "T")
        try:
            dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return None
        return dt.timestamp()
    m = _DMESG_TS.match(head)
    if m:
        return psutil.boot_time() + float(m.group(1))
    return None


def recent(lines: list[str], window_s: float, now: float | None = None) -> list[str]:
    """Lines not older than the window (undated lines count as recent: better one repeat than a miss)."""
    now = time.time() if now is None else now
    out = []
    for ln in lines:
        t = line_time(ln, now)
        if t is None or now - t <= window_s:
            out.append(ln)
    return out


def find_xids(lines: list[str], now: float | None = None) -> list[XidEvent]:
    """XID events with NVIDIA's meaning and action (the review's table when installed)."""
    try:
        from llm_upkeep.review.xid import describe_xid
    except ImportError:
        describe_xid = None
    out: list[XidEvent] = []
    for ln in lines:
        m = _XID.search(ln)
        if not m:
            continue
        code, device = int(m.group(2)), m.group(1).removeprefix("PCI:")
        name, action, severity = (
            f"XID {code}",
            "Collect nvidia-bug-report and check NVIDIA's XID catalog.",
            "alert",
        )
        if describe_xid is not None:
            try:
                info = describe_xid(code)
                name, action, severity = info.name, info.action, info.severity
            except Exception as exc:  # keep the generic description
                log.debug("describe_xid(%s) failed: %s", code, exc)
        out.append(XidEvent(code=code, device=device, line=ln, name=name, action=action, severity=severity,
                            ts=line_time(ln, now)))  # fmt: skip
    return out
