"""Real journal files for tests: entries in journal export format, written to a .journal file by
Debian's systemd-journal-remote (the files `journalctl --file/--directory` reads)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT_ID = "0123456789abcdef0123456789abcdef"
BOOT_US = 1_793_491_200_000_000  # 2026-11-01 00:00 UTC: the one boot every test entry belongs to


def journal_tools_missing() -> str | None:
    if not os.access(JOURNAL_REMOTE, os.X_OK):
        return f"{JOURNAL_REMOTE} is missing: apt-get install systemd-journal-remote (see .ci/run)"
    if shutil.which("journalctl") is None:
        return "journalctl is missing: apt-get install systemd (see .ci/run)"
    return None


def entry(at: datetime, message: str, *, unit: str = "ollama.service", pid: int = 812, priority: int = 6,
          systemd: bool = False) -> dict[str, str]:  # fmt: skip
    """One entry; systemd=True makes it PID 1's message about the unit (what `-u` also matches)."""
    us = int(at.timestamp() * 1e6)
    d = {"__REALTIME_TIMESTAMP": str(us), "__MONOTONIC_TIMESTAMP": str(us - BOOT_US), "_BOOT_ID": BOOT_ID,
         "_HOSTNAME": "gpu-01", "PRIORITY": str(priority), "MESSAGE": message}  # fmt: skip
    if systemd:
        d |= {"_PID": "1", "_COMM": "systemd", "SYSLOG_IDENTIFIER": "systemd", "UNIT": unit,
              "_SYSTEMD_UNIT": "init.scope"}  # fmt: skip
    else:
        d |= {"_PID": str(pid), "_COMM": unit.split(".")[0], "SYSLOG_IDENTIFIER": unit.split(".")[0],
              "_SYSTEMD_UNIT": unit}  # fmt: skip
    return d


def write_journal(path: Path, entries: list[dict[str, str]]) -> Path:
    """Write entries (oldest first) as a real journal file; path must end in .journal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    export = path.with_suffix(".export")
    seqnum_id = uuid.uuid4().hex
    with open(export, "w", encoding="utf-8") as f:
        for i, e in enumerate(entries, 1):
            f.write(f"__CURSOR=s={seqnum_id};i={i}\n")
            for k, v in e.items():
                assert "\n" not in v, "multi-line values need the binary export form"
                f.write(f"{k}={v}\n")
            f.write("\n")
    subprocess.run(
        [JOURNAL_REMOTE, "-o", str(path), str(export)], check=True, capture_output=True, timeout=60
    )
    export.unlink()
    return path
