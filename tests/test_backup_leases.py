"""The local backup/prune lock is exclusive between processes (flock), whatever the file holds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm_upkeep.backup.errors import BackupError
from llm_upkeep.backup.leases import LocalLock

ROOT = Path(__file__).resolve().parent.parent

HOLD_EMPTY = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)  # created, not yet written
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""

RACE = """
import os, sys, time
from pathlib import Path
from llm_upkeep.backup.errors import BackupError
from llm_upkeep.backup.leases import LocalLock
lock, inside, go, n = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
got = overlaps = refused = 0
for _ in range(n):
    try:
        with LocalLock(lock, sys.argv[5]):
            got += 1
            try:
                fd = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                overlaps += 1
                continue
            os.close(fd)
            time.sleep(0.0005)
            os.unlink(inside)
    except BackupError:
        refused += 1
    time.sleep(0.0002)  # give the other side a chance between rounds
print(got, overlaps, refused)
"""


def test_a_lock_file_created_but_not_yet_written_is_not_taken_over(tmp_path):
    """Review finding: the holder creates the file, then writes it; in between it read as stale
    and was deleted, so a second backup (or a prune) ran beside the first."""
    path = tmp_path / "backup.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_EMPTY, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert path.read_bytes() == b""
        with pytest.raises(BackupError) as ei:
            LocalLock(path, "prune").acquire()
        assert ei.value.kind == "locked"
        assert path.exists(), "the live holder's lock file must not be deleted"
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    with LocalLock(path, "prune"):  # the holder is gone: the kernel released its lock
        assert json.loads(path.read_text())["purpose"] == "prune"


def test_two_processes_racing_for_the_lock_never_both_hold_it(tmp_path):
    lock, inside, go = tmp_path / "backup.lock", tmp_path / "inside", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen([sys.executable, "-c", RACE, str(lock), str(inside), str(go), "300", purpose],
                         stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
        for purpose in ("backup", "prune")
    ]
    assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]
    go.touch()  # both spin on this file: they start together
    results = [tuple(map(int, p.communicate(timeout=120)[0].split())) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(r[1] for r in results) == 0, f"both held the lock at once: {results}"
    assert sum(r[0] for r in results) > 0 and sum(r[2] for r in results) > 0, results  # they really contended


def test_leftover_lock_files_are_taken_over_because_nobody_holds_them(tmp_path):
    """Contents only name a holder; with no process holding the flock, a leftover (dead pid,
    other host, garbage) is free, and a live holder is refused whatever the file says."""
    path = tmp_path / "backup.lock"
    for leftover in (json.dumps({"pid": 1, "host": "other-host", "started": time.time()}), "{garbage", ""):
        path.write_text(leftover)
        with LocalLock(path, "backup"):
            assert json.loads(path.read_text())["pid"] == os.getpid()
            with pytest.raises(BackupError) as ei:
                LocalLock(path, "prune").acquire()  # same process, another open file: still refused
            assert str(os.getpid()) in str(ei.value) and socket.gethostname() in str(ei.value)
        assert not path.exists()
