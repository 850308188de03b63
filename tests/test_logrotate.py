"""Log rotation on real files: nothing is ever lost, live files are never touched."""

from __future__ import annotations

import errno
import fcntl
import gzip
import hashlib
import os
import random
import time
from collections import Counter
from pathlib import Path

import llm_upkeep.logrotate as lr
from llm_upkeep.checks import Status
from llm_upkeep.config import LogsConfig
from llm_upkeep.logrotate import check_rotation, rotate_logs, scan_writers

DAY = 86400


def cfg_for(*dirs, **kw) -> LogsConfig:
    kw.setdefault("min_free_bytes", 0)
    return LogsConfig(dirs=[str(d) for d in dirs], **kw)


def make_log(path: Path, content: bytes, age_days: float, *, extra_ns: int = 0) -> int:
    path.write_bytes(content)
    mtime_ns = int((time.time() - age_days * DAY) * 1e9) + extra_ns
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return os.stat(path).st_mtime_ns


def contents(root: Path) -> Counter:
    """Every log's bytes, decompressed where gzipped: the multiset that must never change."""
    out: Counter = Counter()
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            out[hashlib.sha256(gzip.decompress(data) if p.suffix == ".gz" else data).hexdigest()] += 1
    return out


def tree_state(root: Path) -> dict:
    return {
        str(p): (p.read_bytes(), os.lstat(p).st_mtime_ns, os.lstat(p).st_ino)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def temps_in(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if lr.TEMP_RE.match(p.name)]


def line_block(i: int, n: int) -> bytes:
    return b"".join(
        b'{"request": %d, "line": %d, "prompt": "test", "ttft_ms": %d}\n' % (i, j, i * j) for j in range(n)
    )


def test_thousand_files_mixed_ages_with_a_live_one(tmp_path):
    logs = tmp_path / "llm-audit"
    logs.mkdir()
    rng = random.Random(7)
    old, young = {}, {}
    for i in range(1000):
        p = logs / f"audit-{i:04d}.jsonl"
        if i == 0:
            content = b""  # an empty log is still a log
        elif i == 1:
            content = line_block(1, 40_000) + os.urandom(300_000)  # several MiB: many chunks
        else:
            content = line_block(i, rng.randint(1, 60))
        age = rng.uniform(1, 29) if i % 3 == 0 else rng.uniform(31, 400)
        mtime_ns = make_log(p, content, age, extra_ns=rng.randint(0, 999_999_999) if i > 2 else 0)
        (young if i % 3 == 0 else old)[p] = (content, mtime_ns, os.stat(p).st_mode)
    os.chmod(logs / "audit-0002.jsonl", 0o640)
    old[logs / "audit-0002.jsonl"] = (
        *old[logs / "audit-0002.jsonl"][:2],
        os.stat(logs / "audit-0002.jsonl").st_mode,
    )
    (logs / "notes.txt").write_bytes(b"not a log")
    make_log(logs / "notes.txt", b"not a log", 100)

    # The server's current log: open for append and written a moment ago.
    live = logs / "audit-live.jsonl"
    live_handle = open(live, "ab")  # held open across the rotation on purpose
    live_handle.write(line_block(9999, 5))
    live_handle.flush()
    # An old file a process still holds open for writing (idle for months): only /proc shows it.
    held = logs / "audit-held.jsonl"
    make_log(held, line_block(8888, 3), 90)
    held_handle = open(held, "ab")
    try:
        before = contents(tmp_path)
        live_before = live.read_bytes()
        report = rotate_logs(cfg_for(logs))

        assert report.errors == []
        assert report.stopped is None
        assert report.files_compressed == len(old) == 666
        compressed = {Path(c["path"]) for c in report.compressed}
        assert compressed == set(old)
        for p, (content, mtime_ns, mode) in old.items():
            gz = p.with_name(p.name + ".gz")
            assert not p.exists(), p
            assert gzip.decompress(gz.read_bytes()) == content, p
            st = os.stat(gz)
            assert st.st_mtime_ns == mtime_ns, p
            assert st.st_mode == mode, p
        for p, (content, mtime_ns, _mode) in young.items():
            assert p.read_bytes() == content and os.stat(p).st_mtime_ns == mtime_ns
            assert not p.with_name(p.name + ".gz").exists()
        assert live.read_bytes() == live_before and not Path(str(live) + ".gz").exists()
        assert held.exists() and not Path(str(held) + ".gz").exists()
        reasons = {s["path"]: s["reason"] for s in report.skipped}
        assert reasons[str(live)].startswith("still being written")
        assert reasons[str(held)] == f"still being written (open for writing by pid {os.getpid()})"
        assert sum(1 for r in reasons.values() if r == "not old enough") == len(young)
        assert (logs / "notes.txt").read_bytes() == b"not a log"
        assert contents(tmp_path) == before  # nothing lost, nothing duplicated
        assert temps_in(tmp_path) == []
        saved = sum(c["original_bytes"] - c["compressed_bytes"] for c in report.compressed)
        assert report.bytes_saved == saved > 0

        result = check_rotation(report)
        assert (result.check, result.status, result.value, result.unit) == (
            "log_rotation",
            Status.OK,
            666,
            "files",
        )
        assert result.target == str(logs)
        assert "compressed 666 files" in result.detail

        # The live writer keeps working on its file.
        live_handle.write(b'{"after": true}\n')
        live_handle.flush()
        assert live.read_bytes() == live_before + b'{"after": true}\n'
    finally:
        live_handle.close()
        held_handle.close()

    again = rotate_logs(cfg_for(logs))
    assert again.files_compressed == 1  # the held file, now closed
    assert again.errors == []
    assert gzip.decompress((logs / "audit-held.jsonl.gz").read_bytes()) == line_block(8888, 3)


def _old_logs(d: Path, n: int, age: float = 60) -> dict[Path, tuple[bytes, int]]:
    d.mkdir(exist_ok=True)
    out = {}
    for i in range(n):
        p = d / f"f{i:02d}.jsonl"
        content = line_block(i, 200)
        out[p] = (content, make_log(p, content, age + i))
    return out


def test_enospc_mid_file_keeps_the_original_and_stops(tmp_path, monkeypatch):
    files = _old_logs(tmp_path / "logs", 10)
    before = contents(tmp_path)
    real_write_all = lr._write_all
    seen: list[str] = []

    def full_disk_on_fourth_file(fd, data):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name not in seen:
            seen.append(name)
        if len(seen) == 4 and os.fstat(fd).st_size > 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write_all(fd, data)

    monkeypatch.setattr(lr, "_write_all", full_disk_on_fourth_file)
    report = rotate_logs(cfg_for(tmp_path / "logs"))

    paths = sorted(files)
    assert [Path(c["path"]) for c in report.compressed] == paths[:3]
    fourth = paths[3]
    assert fourth.read_bytes() == files[fourth][0] and os.stat(fourth).st_mtime_ns == files[fourth][1]
    assert not Path(str(fourth) + ".gz").exists()
    assert temps_in(tmp_path) == []
    assert report.stopped and "No space left on device" in report.stopped
    assert report.errors == [{"path": str(fourth), "error": "OSError: [Errno 28] No space left on device"}]
    space_skips = [Path(s["path"]) for s in report.skipped if s["reason"] == "disk space low"]
    assert space_skips == paths[3:]
    for p in paths[4:]:
        assert p.read_bytes() == files[p][0]
    assert len(seen) == 4  # nothing was started after the failure
    assert contents(tmp_path) == before
    assert check_rotation(report).status == Status.WARN


def test_free_space_below_minimum_compresses_nothing(tmp_path):
    files = _old_logs(tmp_path / "logs", 3)
    report = rotate_logs(cfg_for(tmp_path / "logs", min_free_bytes=2**62))
    assert report.files_compressed == 0
    assert [s["reason"] for s in report.skipped] == ["disk space low"] * 3
    assert "below min_free_bytes" in report.errors[0]["error"]
    assert all(p.read_bytes() == c for p, (c, _) in files.items())
    assert check_rotation(report).status == Status.WARN


def test_free_space_falling_while_writing_stops(tmp_path, monkeypatch):
    files = _old_logs(tmp_path / "logs", 2)
    monkeypatch.setattr(lr, "SPACE_CHECK_BYTES", 1)
    monkeypatch.setattr(lr, "_free_bytes_fd", lambda fd: 0)
    report = rotate_logs(cfg_for(tmp_path / "logs", min_free_bytes=1))
    assert report.files_compressed == 0 and report.stopped
    assert "fell below" in report.errors[0]["error"]
    assert temps_in(tmp_path) == []
    assert all(p.read_bytes() == c for p, (c, _) in files.items())


def test_file_modified_during_compression_is_kept(tmp_path, monkeypatch):
    files = _old_logs(tmp_path / "logs", 3)
    victim = sorted(files)[1]
    real = lr._compress_to_temp

    def append_while_compressing(src_fd, tmp_fd, name, *args):
        result = real(src_fd, tmp_fd, name, *args)
        if name == victim.name:
            with open(victim, "ab") as f:
                f.write(b'{"late": "line"}\n')
        return result

    monkeypatch.setattr(lr, "_compress_to_temp", append_while_compressing)
    report = rotate_logs(cfg_for(tmp_path / "logs"))
    assert victim.read_bytes() == files[victim][0] + b'{"late": "line"}\n'
    assert not Path(str(victim) + ".gz").exists()
    assert {"path": str(victim), "reason": "changed during compression"} in report.skipped
    assert report.files_compressed == 2
    assert temps_in(tmp_path) == []


def test_file_changed_after_gz_placed_keeps_original_and_removes_our_gz(tmp_path, monkeypatch):
    files = _old_logs(tmp_path / "logs", 2)
    victim = sorted(files)[0]
    real_scan = lr.scan_writers
    scans = []

    def write_before_final_check(*args, **kw):
        scans.append(1)
        if len(scans) == 2:  # the check right before originals are removed
            assert Path(str(victim) + ".gz").exists()
            with open(victim, "ab") as f:
                f.write(b"x\n")
        return real_scan(*args, **kw)

    monkeypatch.setattr(lr, "scan_writers", write_before_final_check)
    report = rotate_logs(cfg_for(tmp_path / "logs"))
    assert victim.read_bytes() == files[victim][0] + b"x\n"
    assert not Path(str(victim) + ".gz").exists()
    assert {"path": str(victim), "reason": "changed during compression"} in report.skipped
    assert report.files_compressed == 1


def test_file_opened_for_writing_during_compression_is_kept(tmp_path, monkeypatch):
    files = _old_logs(tmp_path / "logs", 2)
    victim = sorted(files)[1]
    real_scan = lr.scan_writers
    handles = []

    def open_before_final_check(*args, **kw):
        if len(handles) == 0 and Path(str(victim) + ".gz").exists():
            handles.append(open(victim, "ab"))
        return real_scan(*args, **kw)

    monkeypatch.setattr(lr, "scan_writers", open_before_final_check)
    try:
        report = rotate_logs(cfg_for(tmp_path / "logs"))
    finally:
        for h in handles:
            h.close()
    assert handles, "the hook never ran"
    assert victim.read_bytes() == files[victim][0]
    assert not Path(str(victim) + ".gz").exists()
    reasons = {s["path"]: s["reason"] for s in report.skipped}
    assert reasons[str(victim)] == "still being written (opened for writing during compression)"


def test_verification_failure_keeps_the_original(tmp_path, monkeypatch):
    files = _old_logs(tmp_path / "logs", 1)
    (p,) = files
    real = lr._compress_to_temp

    def wrong_digest(*args):
        _sha, n = real(*args)
        return "0" * 64, n

    monkeypatch.setattr(lr, "_compress_to_temp", wrong_digest)
    report = rotate_logs(cfg_for(tmp_path / "logs"))
    assert report.files_compressed == 0
    assert "round trip mismatch" in report.errors[0]["error"]
    assert p.read_bytes() == files[p][0] and not Path(str(p) + ".gz").exists()
    assert temps_in(tmp_path) == []


def test_existing_gz_is_never_overwritten(tmp_path):
    files = _old_logs(tmp_path / "logs", 1)
    (p,) = files
    gz = Path(str(p) + ".gz")
    gz.write_bytes(gzip.compress(b"an older, different rotation\n"))
    gz_before = gz.read_bytes()
    report = rotate_logs(cfg_for(tmp_path / "logs"))
    assert report.skipped == [{"path": str(p), "reason": "already compressed target exists"}]
    assert gz.read_bytes() == gz_before
    assert p.read_bytes() == files[p][0]
    assert temps_in(tmp_path) == []


def test_gz_appearing_during_compression_is_not_overwritten(tmp_path, monkeypatch):
    files = _old_logs(tmp_path / "logs", 1)
    (p,) = files
    gz = Path(str(p) + ".gz")
    real = lr._compress_to_temp

    def someone_else_gzips(*args):
        gz.write_bytes(b"theirs")
        return real(*args)

    monkeypatch.setattr(lr, "_compress_to_temp", someone_else_gzips)
    report = rotate_logs(cfg_for(tmp_path / "logs"))
    assert gz.read_bytes() == b"theirs"
    assert p.read_bytes() == files[p][0]
    assert report.skipped == [{"path": str(p), "reason": "already compressed target exists"}]
    assert temps_in(tmp_path) == []


def test_crash_after_placing_gz_is_finished_by_the_next_run(tmp_path):
    files = _old_logs(tmp_path / "logs", 1)
    (p,) = files
    gz = Path(str(p) + ".gz")
    gz.write_bytes(gzip.compress(files[p][0]))
    stale = p.parent / f".{p.name}.gz.tmp-0123abcd"
    stale.write_bytes(b"half a gzip")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    fresh = p.parent / ".other.jsonl.gz.tmp-89abcdef"
    fresh.write_bytes(b"maybe in use")

    report = rotate_logs(cfg_for(tmp_path / "logs"))
    assert not p.exists()
    assert gzip.decompress(gz.read_bytes()) == files[p][0]
    assert report.files_compressed == 1
    assert report.stale_temps_removed == [str(stale)]
    assert not stale.exists() and fresh.exists()


def test_dry_run_changes_nothing(tmp_path):
    d = tmp_path / "logs"
    _old_logs(d, 4)
    make_log(d / "ancient.jsonl.gz", gzip.compress(b"old\n"), 500)
    make_log(d / "young.jsonl", b"new\n", 2)
    stale = d / ".x.jsonl.gz.tmp-0123abcd"
    stale.write_bytes(b"")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    before = tree_state(tmp_path)
    dir_mtime = os.stat(d).st_mtime_ns

    report = rotate_logs(cfg_for(d, delete_after_days=365), dry_run=True)
    assert tree_state(tmp_path) == before
    assert os.stat(d).st_mtime_ns == dir_mtime
    assert report.dry_run and report.files_compressed == 4
    assert all(c["compressed_bytes"] is None for c in report.compressed)
    assert report.deleted == [str(d / "ancient.jsonl.gz")]
    assert report.stale_temps_removed == [str(stale)]
    assert report.bytes_saved == 0
    assert "would compress 4 files" in check_rotation(report).detail


def test_old_gz_deleted_only_when_configured(tmp_path):
    d = tmp_path / "logs"
    d.mkdir()
    make_log(d / "a.jsonl.gz", gzip.compress(b"a"), 400)
    make_log(d / "b.jsonl.gz", gzip.compress(b"b"), 40)
    make_log(d / "other.gz", gzip.compress(b"c"), 400)
    assert rotate_logs(cfg_for(d)).deleted == []
    assert (d / "a.jsonl.gz").exists()
    report = rotate_logs(cfg_for(d, delete_after_days=365))
    assert report.deleted == [str(d / "a.jsonl.gz")]
    assert not (d / "a.jsonl.gz").exists()
    assert (d / "b.jsonl.gz").exists() and (d / "other.gz").exists()


def test_recursive_and_odd_files(tmp_path):
    d = tmp_path / "logs"
    sub = d / "model-a" / "2026"
    sub.mkdir(parents=True)
    make_log(sub / "deep.jsonl", b"deep\n", 60)
    make_log(d / "top.jsonl", b"top\n", 60)
    make_log(d / "linked.jsonl", b"two names\n", 60)
    os.link(d / "linked.jsonl", tmp_path / "elsewhere.jsonl")
    os.symlink(d / "top.jsonl", d / "alias.jsonl")

    flat = rotate_logs(cfg_for(d))
    assert [c["path"] for c in flat.compressed] == [str(d / "top.jsonl")]
    assert (sub / "deep.jsonl").exists()
    reasons = {s["path"]: s["reason"] for s in flat.skipped}
    assert reasons[str(d / "linked.jsonl")] == "has other hard links"
    assert reasons[str(d / "alias.jsonl")] == "not a regular file"

    deep = rotate_logs(cfg_for(d, recursive=True))
    assert [c["path"] for c in deep.compressed] == [str(sub / "deep.jsonl")]
    assert gzip.decompress((sub / "deep.jsonl.gz").read_bytes()) == b"deep\n"


def test_missing_dir_and_locked_dir(tmp_path):
    report = rotate_logs(cfg_for(tmp_path / "nope"))
    assert report.errors[0]["path"] == str(tmp_path / "nope")
    assert "FileNotFoundError" in report.errors[0]["error"]
    assert check_rotation(report).status == Status.ERROR

    d = tmp_path / "logs"
    files = _old_logs(d, 1)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        report = rotate_logs(cfg_for(d))
    finally:
        os.close(fd)
    assert report.errors == [{"path": str(d), "error": "another log rotation is running on this directory"}]
    assert all(p.exists() for p in files)
    assert check_rotation(rotate_logs(LogsConfig())).status == Status.SKIPPED


def test_scan_writers_sees_write_modes_only(tmp_path, monkeypatch):
    paths = {mode: tmp_path / f"{mode.replace('+', 'plus')}.log" for mode in ("rb", "ab", "r+b", "wb")}
    for p in paths.values():
        p.write_bytes(b"x")
    handles = {mode: open(p, mode) for mode, p in paths.items()}
    try:
        keys = {m: (os.stat(p).st_dev, os.stat(p).st_ino) for m, p in paths.items()}
        scan = scan_writers(set(keys.values()))
        assert keys["rb"] not in scan.writers
        for mode in ("ab", "r+b", "wb"):
            assert os.getpid() in scan.writers[keys[mode]], mode

        # Processes whose fds cannot be read are counted, not fatal.
        real_listdir = os.listdir

        def deny_own(path):
            if path == f"/proc/{os.getpid()}/fd":
                raise PermissionError(errno.EACCES, "denied")
            return real_listdir(path)

        monkeypatch.setattr(lr.os, "listdir", deny_own)
        scan = scan_writers(set(keys.values()))
        assert scan.unreadable_pids >= 1 and keys["ab"] not in scan.writers
    finally:
        for h in handles.values():
            h.close()
