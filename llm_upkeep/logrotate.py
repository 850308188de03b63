"""The playbook's ``find -mtime +30 -exec gzip`` done so that no log line can be lost.

gzip(1) on a file that a server still appends to loses every line written after it read the
file, and on a full disk it can leave a truncated .gz. Here each file is compressed into a
temp file in the same directory, fsynced, decompressed again and compared by SHA-256 with
what was read, moved into place without ever overwriting an existing .gz, and the original
is removed only after the directory entry is durable and only if nobody changed the file or
holds it open for writing meanwhile. Memory use is constant: files are streamed in chunks.
"""

from __future__ import annotations

import errno
import fcntl
import fnmatch
import gzip
import hashlib
import logging
import os
import re
import secrets
import stat
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from llm_upkeep.checks import CheckResult, Status
from llm_upkeep.config import LogsConfig

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
STALE_TEMP_SECONDS = 3600.0
# Re-check free space this often while writing one file, so a huge log cannot eat the margin.
SPACE_CHECK_BYTES = 64 * 1024 * 1024
# The original is removed in batches: one /proc scan and two directory fsyncs per batch.
FLUSH_FILES = 64
FLUSH_SECONDS = 1.0

TEMP_RE = re.compile(r"^\..+\.gz\.tmp-[0-9a-f]{8}$")
_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}

REASON_WRITING = "still being written"
REASON_YOUNG = "not old enough"
REASON_SPACE = "disk space low"
REASON_TARGET = "already compressed target exists"
REASON_CHANGED = "changed during compression"


class CompressedEntry(TypedDict):
    path: str
    original_bytes: int
    compressed_bytes: int | None  # None in a dry run


class SkippedEntry(TypedDict):
    path: str
    reason: str


class ErrorEntry(TypedDict):
    path: str
    error: str


class RotationReport(BaseModel):
    dirs: list[str] = Field(default_factory=list, description="Directories rotated.")
    dry_run: bool = Field(default=False, description="Nothing was changed; entries say what would be done.")
    compressed: list[CompressedEntry] = Field(default_factory=list, description="Files replaced by a .gz.")
    deleted: list[str] = Field(default_factory=list, description="Old .gz files removed.")
    skipped: list[SkippedEntry] = Field(default_factory=list, description="Files left alone, with why.")
    errors: list[ErrorEntry] = Field(default_factory=list, description="Failures; the original is kept.")
    stale_temps_removed: list[str] = Field(default_factory=list, description="Leftovers of a crashed run.")
    notes: list[str] = Field(default_factory=list, description="Limits of this run worth knowing.")
    stopped: str | None = Field(default=None, description="Why compression stopped before the end.")
    bytes_saved: int = Field(default=0, description="Original bytes minus compressed bytes.")
    files_compressed: int = Field(default=0, description="len(compressed).")


# ---- who writes to a file -------------------------------------------------------------------------


@dataclass
class WriterScan:
    writers: dict[tuple[int, int], set[int]] = field(default_factory=dict)  # (dev, ino) -> pids
    unreadable_pids: int = 0
    at: float = 0.0


def _is_write_flags(flags: int) -> bool:
    acc = flags & os.O_ACCMODE
    return acc in (os.O_WRONLY, os.O_RDWR) or bool(flags & os.O_APPEND)


def _fd_flags(pid: str, fd: str) -> int | None:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as f:
            for line in f:
                if line.startswith(b"flags:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        return None
    return None


def scan_writers(interesting: set[tuple[int, int]] | None = None, proc: str = "/proc") -> WriterScan:
    """Files open for writing by any process, found through /proc/PID/fd and fdinfo.

    The fd link is stat'ed rather than its text compared, so a writer in another mount
    namespace (a container) is still matched by device and inode.
    """
    scan = WriterScan(at=time.monotonic())
    try:
        pids = [e.name for e in os.scandir(proc) if e.name.isdigit()]
    except OSError:
        scan.unreadable_pids = -1
        return scan
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except PermissionError:
            scan.unreadable_pids += 1
            continue
        except OSError:  # the process exited meanwhile
            continue
        for fd in fds:
            link = f"{fd_dir}/{fd}"
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if not target.startswith("/") or target.startswith(("/dev/", "/proc/", "/sys/")):
                continue
            try:
                st = os.stat(link)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if not stat.S_ISREG(st.st_mode) or (interesting is not None and key not in interesting):
                continue
            flags = _fd_flags(pid, fd)
            if flags is None or _is_write_flags(flags):  # unknown flags: assume the worst
                scan.writers.setdefault(key, set()).add(int(pid))
    return scan


# ---- one file ---------------------------------------------------------------------------------------


class _LowSpace(Exception):
    pass


class _Changed(Exception):
    pass


class _TargetExists(Exception):
    pass


class _VerifyFailed(Exception):
    pass


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class _Sink:
    """File object for GzipFile that writes through _write_all and watches free space."""

    def __init__(self, fd: int, min_free_bytes: int):
        self.fd = fd
        self.min_free_bytes = min_free_bytes
        self.written = 0
        self._next_check = SPACE_CHECK_BYTES

    def write(self, data) -> int:
        _write_all(self.fd, data)
        n = len(data) if not isinstance(data, memoryview) else data.nbytes
        self.written += n
        if self.written >= self._next_check:
            self._next_check = self.written + SPACE_CHECK_BYTES
            if _free_bytes_fd(self.fd) < self.min_free_bytes:
                raise _LowSpace(f"free space fell below {self.min_free_bytes} bytes while writing")
        return n

    def flush(self) -> None:
        return None


def _free_bytes_fd(fd: int) -> int:
    st = os.fstatvfs(fd)
    return st.f_bavail * st.f_frsize


def _free_bytes(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _drop_cache(fd: int) -> None:
    """Keep a multi-GB log from evicting the model server's page cache; make verify read the disk."""
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError as e:
            log.debug("posix_fadvise failed: %s", e)


def _compress_to_temp(src_fd: int, tmp_fd: int, name: str, mtime: float, level: int, min_free: int):
    """Stream src into a gzip member in tmp; return (sha256 hex, bytes read)."""
    h = hashlib.sha256()
    n = 0
    sink = _Sink(tmp_fd, min_free)
    with gzip.GzipFile(filename=name, mode="wb", compresslevel=level, fileobj=sink, mtime=int(mtime)) as gz:
        while True:
            chunk = os.read(src_fd, CHUNK)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
            gz.write(chunk)
    return h.hexdigest(), n


def _hash_gzip(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
        while True:
            chunk = gz.read(CHUNK)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        _drop_cache(raw.fileno())
    return h.hexdigest(), n


def _hash_file(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        while True:
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
    finally:
        os.close(fd)
    return h.hexdigest(), n


def _gzip_isize(path: str) -> int | None:
    """Uncompressed size mod 2**32 from the gzip trailer: a cheap test before hashing."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < 18:
            return None
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


def _verify_gzip(tmp_path: str, sha: str, size: int) -> None:
    """Decompress what was written and compare it with what was read."""
    try:
        got_sha, got_size = _hash_gzip(tmp_path)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        if isinstance(e, OSError) and e.errno is not None:
            raise
        raise _VerifyFailed(f"written .gz does not decompress: {type(e).__name__}: {e}") from e
    if (got_sha, got_size) != (sha, size):
        raise _VerifyFailed(f"round trip mismatch: read {size} bytes, .gz holds {got_size} bytes")


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as e:
        log.warning("could not remove temp file %s: %s", path, e)


def _place(tmp_path: str, gz_path: str) -> None:
    """Give the temp file its final name; never replace an existing file."""
    try:
        os.link(tmp_path, gz_path)  # fails with EEXIST atomically, unlike os.replace
    except FileExistsError:
        raise _TargetExists(REASON_TARGET) from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        # A filesystem without hard links: check, then rename (a tiny window, the best available).
        if os.path.lexists(gz_path):
            raise _TargetExists(REASON_TARGET) from None
        os.replace(tmp_path, gz_path)
        return
    os.unlink(tmp_path)


@dataclass
class _Pending:
    path: str
    gz_path: str
    identity: tuple[int, int, int, int]
    gz_ino: int
    original_bytes: int
    compressed_bytes: int
    created: bool  # False when recovering a .gz a crashed run left next to its original


def _compress_one(path: str, st: os.stat_result, level: int, min_free: int) -> _Pending:
    directory, name = os.path.split(path)
    gz_path = path + ".gz"
    src_fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    tmp_path = None
    tmp_fd = -1
    try:
        if _identity(os.fstat(src_fd)) != _identity(st):
            raise _Changed(REASON_CHANGED)
        tmp_path = os.path.join(directory, f".{name}.gz.tmp-{secrets.token_hex(4)}")
        tmp_fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        sha, size = _compress_to_temp(src_fd, tmp_fd, name, st.st_mtime, level, min_free)
        _drop_cache(src_fd)
        os.fsync(tmp_fd)
        _drop_cache(tmp_fd)
        _verify_gzip(tmp_path, sha, size)
        # The bytes we compressed must be the whole file as it still is.
        if size != st.st_size or _identity(os.fstat(src_fd)) != _identity(st):
            raise _Changed(REASON_CHANGED)
        if _identity(os.lstat(path)) != _identity(st):
            raise _Changed(REASON_CHANGED)
        os.fchmod(tmp_fd, stat.S_IMODE(st.st_mode))
        try:
            os.fchown(tmp_fd, st.st_uid, st.st_gid)
        except PermissionError as e:
            log.debug("cannot keep owner of %s: %s", path, e)
        os.utime(tmp_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.fsync(tmp_fd)
        gz_st = os.fstat(tmp_fd)
        os.close(tmp_fd)
        tmp_fd = -1
        _place(tmp_path, gz_path)
        tmp_path = None
        return _Pending(path, gz_path, _identity(st), gz_st.st_ino, size, gz_st.st_size, True)
    finally:
        os.close(src_fd)
        if tmp_fd >= 0:
            os.close(tmp_fd)
        if tmp_path is not None:
            _remove_quietly(tmp_path)


# ---- a run ---------------------------------------------------------------------------------------


def _is_space_error(e: BaseException) -> bool:
    return isinstance(e, _LowSpace) or (isinstance(e, OSError) and e.errno in _SPACE_ERRNOS)


def _err_text(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{type(e).__name__}: [Errno {e.errno}] {e.strerror}"
    return f"{type(e).__name__}: {e}"


def find_files(cfg: LogsConfig, top: str) -> tuple[list[str], list[str], list[str]]:
    """(candidates, old-.gz candidates, our temp files) under top."""
    logs, gzs, temps = [], [], []
    gz_pattern = cfg.pattern + ".gz"

    def visit(dirpath: str, names: list[str]) -> None:
        for name in sorted(names):
            full = os.path.join(dirpath, name)
            if TEMP_RE.match(name):
                temps.append(full)
            elif name.endswith(".gz"):
                if fnmatch.fnmatchcase(name, gz_pattern):
                    gzs.append(full)
            elif fnmatch.fnmatchcase(name, cfg.pattern):
                logs.append(full)

    if cfg.recursive:
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            dirnames.sort()
            visit(dirpath, filenames)
    else:
        with os.scandir(top) as it:
            visit(top, [e.name for e in it if not e.is_dir(follow_symlinks=False)])
    return logs, gzs, temps


def ineligible_reason(cfg: LogsConfig, now: float, st: os.stat_result, writers: WriterScan) -> str | None:
    """None when the file may be compressed, else the reason to leave it."""
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_nlink > 1:
        return "has other hard links"
    age = now - st.st_mtime
    key = (st.st_dev, st.st_ino)
    if key in writers.writers:
        pids = ", ".join(str(p) for p in sorted(writers.writers[key]))
        return f"{REASON_WRITING} (open for writing by pid {pids})"
    if age < cfg.quiet_seconds:
        return f"{REASON_WRITING} (modified {max(age, 0):.0f} s ago)"
    if age < cfg.compress_after_days * 86400:
        return REASON_YOUNG
    return None


class _Ledger:
    """What a run did, file by file: the report, and the one way to add to it."""

    def __init__(self, report: RotationReport):
        self.report = report

    def skip(self, path: str, reason: str) -> None:
        self.report.skipped.append(SkippedEntry(path=path, reason=reason))

    def error(self, path: str, e: BaseException | str) -> None:
        text = e if isinstance(e, str) else _err_text(e)
        self.report.errors.append(ErrorEntry(path=path, error=text))

    def record(self, p: _Pending) -> None:
        self.report.compressed.append(
            CompressedEntry(path=p.path, original_bytes=p.original_bytes, compressed_bytes=p.compressed_bytes)
        )
        self.report.bytes_saved += p.original_bytes - p.compressed_bytes


class _Removals:
    """Originals whose .gz is in place wait here and go in batches: only after the directory
    entries of their .gz files are durable, and only if nobody changed or opened them meanwhile
    (else the .gz this run made is taken back and the original stays)."""

    def __init__(self, ledger: _Ledger):
        self.ledger = ledger
        self.pending: list[_Pending] = []
        self.pending_since = 0.0

    def add(self, p: _Pending) -> None:
        if not self.pending:
            self.pending_since = time.monotonic()
        self.pending.append(p)
        if len(self.pending) >= FLUSH_FILES or time.monotonic() - self.pending_since >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Remove originals whose .gz is in place, after a fresh check that nobody touched them."""
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        dirs = sorted({os.path.dirname(p.path) for p in batch})
        for d in dirs:  # the .gz entries must be durable before any original goes
            _fsync_dir(d)
        writers = scan_writers({p.identity[:2] for p in batch})
        for p in batch:
            try:
                st = os.lstat(p.path)
            except FileNotFoundError:
                # Someone else removed it; its content is safe in the .gz.
                self.ledger.record(p)
                continue
            changed = _identity(st) != p.identity
            writing = p.identity[:2] in writers.writers
            if changed or writing:
                reason = (
                    REASON_CHANGED if changed else f"{REASON_WRITING} (opened for writing during compression)"
                )
                if p.created:
                    self._undo(p)
                self.ledger.skip(p.path, reason)
                continue
            try:
                os.unlink(p.path)
            except OSError as e:
                self.ledger.error(p.path, e)
                continue
            self.ledger.record(p)
        for d in dirs:
            _fsync_dir(d)

    def _undo(self, p: _Pending) -> None:
        try:
            if os.lstat(p.gz_path).st_ino == p.gz_ino:
                os.unlink(p.gz_path)
        except OSError as e:
            self.ledger.error(p.gz_path, f"could not remove own .gz after the original changed: {_err_text(e)}")


class _Run(_Ledger):
    """One rotation over the configured directories: per directory, clean up after crashed runs,
    delete very old .gz files, then compress what is due, one file at a time."""

    def __init__(self, cfg: LogsConfig, now: float, dry_run: bool, level: int):
        super().__init__(RotationReport(dirs=list(cfg.dirs), dry_run=dry_run))
        self.cfg = cfg
        self.now = now
        self.dry_run = dry_run
        self.level = level
        self.removals = _Removals(self)
        self.seen: set[tuple[int, int]] = set()

    def clean_temps(self, temps: list[str]) -> None:
        wall = time.time()
        for p in temps:
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode) or wall - st.st_mtime < STALE_TEMP_SECONDS:
                continue
            if self.dry_run:
                self.report.stale_temps_removed.append(p)
                continue
            try:
                os.unlink(p)
                self.report.stale_temps_removed.append(p)
            except OSError as e:
                self.error(p, e)

    def delete_old(self, gzs: list[str], writers: WriterScan) -> None:
        if self.cfg.delete_after_days is None:
            return
        limit = self.cfg.delete_after_days * 86400
        dirs: set[str] = set()
        for p in gzs:
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode) or self.now - st.st_mtime <= limit:
                continue
            if (st.st_dev, st.st_ino) in writers.writers:
                self.skip(p, REASON_WRITING)
                continue
            if not self.dry_run:
                try:
                    os.unlink(p)
                except OSError as e:
                    self.error(p, e)
                    continue
                dirs.add(os.path.dirname(p))
            self.report.deleted.append(p)
        for d in dirs:
            _fsync_dir(d)

    def recover(self, path: str, st: os.stat_result) -> bool:
        """A .gz with exactly this file's content is a crashed run's finished work: finish it."""
        gz_path = path + ".gz"
        try:
            gz_st = os.lstat(gz_path)
            if not stat.S_ISREG(gz_st.st_mode) or _gzip_isize(gz_path) != st.st_size % 2**32:
                return False
            if _hash_gzip(gz_path) != _hash_file(path):
                return False
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile):
            return False
        self.removals.add(
            _Pending(path, gz_path, _identity(st), gz_st.st_ino, st.st_size, gz_st.st_size, False)
        )
        return True

    def compress(self, logs: list[str], writers: WriterScan) -> None:
        for path in logs:
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            except OSError as e:
                self.error(path, e)
                continue
            key = (st.st_dev, st.st_ino)
            if key in self.seen:  # overlapping dirs
                continue
            self.seen.add(key)
            reason = ineligible_reason(self.cfg, self.now, st, writers)
            if reason:
                self.skip(path, reason)
                continue
            if self.report.stopped:
                self.skip(path, REASON_SPACE)
                continue
            if os.path.lexists(path + ".gz"):
                if self.dry_run or not self.recover(path, st):
                    self.skip(path, REASON_TARGET)
                continue
            directory = os.path.dirname(path)
            try:
                free = _free_bytes(directory)
            except OSError as e:
                self.error(path, e)
                continue
            if free < self.cfg.min_free_bytes:
                self.stop(
                    path, f"{free} bytes free on the disk, below min_free_bytes {self.cfg.min_free_bytes}"
                )
                continue
            if self.dry_run:
                self.report.compressed.append(
                    CompressedEntry(path=path, original_bytes=st.st_size, compressed_bytes=None)
                )
                continue
            try:
                self.removals.add(_compress_one(path, st, self.level, self.cfg.min_free_bytes))
            except _Changed as e:
                self.skip(path, str(e))
            except _TargetExists:
                self.skip(path, REASON_TARGET)
            except _VerifyFailed as e:
                self.error(path, str(e))
            except OSError as e:
                if _is_space_error(e):
                    self.stop(path, _err_text(e))
                else:
                    self.error(path, e)
            except _LowSpace as e:
                self.stop(path, str(e))
            except Exception as e:  # one odd file must not end the run; its original is untouched
                log.exception("compressing %s failed", path)
                self.error(path, e)

    def stop(self, path: str, why: str) -> None:
        self.error(path, why)
        self.skip(path, REASON_SPACE)
        self.report.stopped = f"{REASON_SPACE}: {why}"
        self.removals.flush()  # files already in place are finished; nothing else is started

    def run_dir(self, top: str) -> None:
        try:
            dir_fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            self.error(top, e)
            return
        try:
            try:
                fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.error(top, "another log rotation is running on this directory")
                return
            logs, gzs, temps = find_files(self.cfg, top)
            self.clean_temps(temps)
            keys = set()
            for p in logs + gzs:
                try:
                    st = os.lstat(p)
                    keys.add((st.st_dev, st.st_ino))
                except OSError:
                    continue
            writers = scan_writers(keys)
            if writers.unreadable_pids:
                self.report.notes.append(
                    f"{top}: could not read the open files of {writers.unreadable_pids} processes "
                    f"(permissions); for those only the {self.cfg.quiet_seconds:g} s quiet period protects "
                    "files still being written"
                )
            self.delete_old(gzs, writers)
            self.compress(logs, writers)
            self.removals.flush()
        except OSError as e:
            self.removals.flush()
            self.error(top, e)
        finally:
            os.close(dir_fd)


def rotate_logs(
    cfg: LogsConfig, *, now: float | None = None, dry_run: bool = False, compresslevel: int = 6
) -> RotationReport:
    """Compress old logs, delete very old .gz files, clean up after crashed runs; never loses data."""
    run = _Run(cfg, time.time() if now is None else now, dry_run, compresslevel)
    for top in cfg.dirs:
        run.run_dir(os.path.expanduser(top))
    r = run.report
    r.files_compressed = len(r.compressed)
    return r


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def check_rotation(report: RotationReport) -> CheckResult:
    """ok when everything due was compressed; warn on errors or a stop for disk space."""
    target = ", ".join(report.dirs) or "(none)"
    if not report.dirs:
        return CheckResult(
            check="log_rotation", target=target, status=Status.SKIPPED, detail="no log directories configured"
        )
    reasons = Counter(s["reason"].split(" (")[0] for s in report.skipped)
    verb = "would compress" if report.dry_run else "compressed"
    parts = [f"{verb} {report.files_compressed} files"]
    if not report.dry_run:
        parts[0] += f" (saved {_human(report.bytes_saved)})"
    if report.deleted:
        parts.append(f"{'would delete' if report.dry_run else 'deleted'} {len(report.deleted)} old .gz files")
    if report.stale_temps_removed:
        parts.append(f"removed {len(report.stale_temps_removed)} temp files of an interrupted run")
    for reason in (REASON_WRITING, REASON_TARGET, REASON_CHANGED, REASON_SPACE):
        if reasons.get(reason):
            parts.append(f"{reasons[reason]} {reason}")
    if report.stopped:
        parts.append(f"stopped: {report.stopped}")
    if report.errors:
        first = report.errors[0]
        parts.append(f"{len(report.errors)} errors, first: {first['path']}: {first['error']}")
    dir_errors = {e["path"] for e in report.errors} >= {os.path.expanduser(d) for d in report.dirs}
    if report.errors and dir_errors and not report.compressed:
        status = Status.ERROR  # no directory could be processed at all
    elif report.errors or report.stopped or reasons.get(REASON_SPACE):
        status = Status.WARN
    else:
        status = Status.OK
    return CheckResult(
        check="log_rotation",
        target=target,
        status=status,
        value=report.files_compressed,
        unit="files",
        detail="; ".join(parts),
    )
