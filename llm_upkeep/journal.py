"""systemd journal as a log source: `journalctl -u UNIT -o json` over a time window (or the
journal files of another machine with --file/--directory), with a saved cursor so that each entry
is read once across runs.

Why journalctl and not the files: the journal's on-disk format is journald's business; its reader
is the stable interface (and the one an operator uses: ``journalctl -u ollama``). Ollama's Linux
install logs only there. Every call has a time budget and a size limit; a missing journalctl, an
unreadable directory or a bad cursor is a classified result, never an exception.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from llm_upkeep.childenv import child_env
from llm_upkeep.redact import redact

JOURNALCTL = "journalctl"
MAX_LINE_BYTES = 1 << 20
"""Longest entry line read. journalctl -o json prints fields over 4 KiB as null unless --all, so
a longer line is not a real entry (a broken journal or reader); it is skipped, never held."""


@dataclass
class JournalEntry:
    ts: float  # epoch seconds (the entry's realtime stamp)
    message: str
    priority: int | None = None
    unit: str | None = None


@dataclass
class JournalRead:
    entries: list[JournalEntry] = field(default_factory=list)
    cursor: str | None = None  # of the last entry read (saved when a cursor file is given)
    command: list[str] = field(default_factory=list)
    error: str | None = None
    truncated: bool = False  # stopped at max_entries / max_bytes
    skipped_before_since: int = 0  # entries after the cursor but before the window
    oversized: int = 0  # lines longer than MAX_LINE_BYTES, skipped unread


def _at(ts: float) -> str:
    return f"@{ts:.6f}"


def journal_command(
    unit: str | None, *, since: float | None = None, until: float | None = None, after_cursor: str | None = None,
    directory: str | None = None, files: list[str] | tuple[str, ...] = (), journalctl: str = JOURNALCTL,
    last: int | None = None,
) -> list[str]:  # fmt: skip
    """The journalctl argument list (journalctl takes only one of --since and --after-cursor)."""
    cmd = [journalctl, "-o", "json", "--no-pager", "-q"]
    if directory:
        cmd += ["--directory", directory]
    for f in files:
        cmd += ["--file", f]
    if unit:
        cmd += ["-u", unit]
    if after_cursor:
        cmd += ["--after-cursor", after_cursor]
    elif since is not None:
        cmd += ["--since", _at(since)]
    if until is not None:
        cmd += ["--until", _at(until)]
    if last is not None:
        cmd += ["-n", str(last)]
    return cmd


def _message(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # journald sends non-UTF-8 or binary MESSAGE as a byte array
        try:
            return bytes(int(b) & 0xFF for b in value).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return ""
    return "" if value is None else str(value)


def parse_entry(line: str) -> tuple[JournalEntry, str | None] | None:
    try:
        d = json.loads(line)
        ts = int(d["__REALTIME_TIMESTAMP"]) / 1e6
    except (ValueError, KeyError, TypeError):
        return None
    prio = d.get("PRIORITY")
    entry = JournalEntry(
        ts=ts, message=_message(d.get("MESSAGE")).rstrip("\n"),
        priority=int(prio) if isinstance(prio, str) and prio.isdigit() else None, unit=d.get("_SYSTEMD_UNIT"),
    )  # fmt: skip
    return entry, d.get("__CURSOR")


def load_cursor(path: str | os.PathLike | None) -> str | None:
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def save_cursor(path: str | os.PathLike, cursor: str) -> None:
    """Replace the cursor file atomically (a crash leaves the old cursor, never half a new one)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=p.name + ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(cursor + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_journal(
    unit: str | None,
    *,
    since: float | None = None,
    until: float | None = None,
    cursor_file: str | os.PathLike | None = None,
    directory: str | None = None,
    files: list[str] | tuple[str, ...] = (),
    timeout_s: float = 60.0,
    max_entries: int = 2_000_000,
    max_bytes: int = 512 << 20,
    journalctl: str = JOURNALCTL,
    last: int | None = None,
) -> JournalRead:
    """Entries of ``unit`` in [since, until), after the saved cursor when there is one; the cursor
    file is advanced only after a complete read."""
    cursor_file = os.path.expanduser(cursor_file) if cursor_file else None
    cursor = load_cursor(cursor_file)
    cmd = journal_command(unit, since=since, until=until, after_cursor=cursor, directory=directory, files=files,
                          journalctl=journalctl, last=last)  # fmt: skip
    out = JournalRead(command=cmd)
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=child_env()
        )
    except OSError as exc:
        out.error = f"cannot run {journalctl}: {exc.strerror or exc}"
        return out
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    t0 = time.monotonic()
    last_cursor = None
    read = 0
    try:
        assert proc.stdout is not None
        while True:
            # One line is read at most MAX_LINE_BYTES (+1 to tell "longer") and never past
            # max_bytes: `for raw in stdout` would hold a 100 MB line whole before any check.
            raw = proc.stdout.readline(min(MAX_LINE_BYTES, max(0, max_bytes - read)) + 1)
            if not raw:
                break
            read += len(raw)
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                out.oversized += 1
                while raw and not raw.endswith(b"\n") and read <= max_bytes:  # skip the rest of it
                    raw = proc.stdout.readline(min(MAX_LINE_BYTES, max(0, max_bytes - read)) + 1)
                    read += len(raw)
                raw = b""
            if read > max_bytes or len(out.entries) >= max_entries:
                out.truncated = True
                proc.kill()
                break
            if not raw:
                continue
            got = parse_entry(raw.decode("utf-8", "replace"))
            if got is None:
                continue
            entry, cur = got
            last_cursor = cur or last_cursor
            if since is not None and entry.ts < since:
                out.skipped_before_since += 1
                continue
            out.entries.append(entry)
        proc.wait()
        err = proc.stderr.read().decode("utf-8", "replace").strip() if proc.stderr else ""
    finally:
        timer.cancel()
        for s in (proc.stdout, proc.stderr):
            if s:
                s.close()
    if time.monotonic() - t0 >= timeout_s and proc.returncode and proc.returncode < 0:
        out.error = f"journalctl did not finish within {timeout_s:g} s"
    elif out.truncated:
        out.error = f"stopped after {len(out.entries)} entries / {read} bytes (limit reached)"
    elif proc.returncode not in (0, None):
        out.error = redact(f"journalctl exited {proc.returncode}: {err[-300:]}")
    out.cursor = last_cursor or cursor
    if cursor_file and out.error is None and last_cursor:
        save_cursor(cursor_file, last_cursor)
    return out


def entries_as_text(entries: list[JournalEntry]) -> bytes:
    """One line per entry, ISO time first: the form every log scanner here already reads."""
    lines = []
    for e in entries:
        when = datetime.fromtimestamp(e.ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for part in e.message.splitlines() or [""]:
            lines.append(f"{when} {part}")
    return ("\n".join(lines) + "\n").encode() if lines else b""
