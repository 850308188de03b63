"""sha256 of many large files at disk speed, each file read at most once per run.

Why threads: hashlib releases the GIL while it hashes a buffer larger than 2 KiB, and the
kernel reads ahead while a thread hashes, so a small pool keeps every core and the disk busy
(sha256sum uses one core). Big reads (4 MiB into a reused buffer, POSIX_FADV_SEQUENTIAL)
keep the per-call overhead negligible. Largest files go first so the pool ends together.

Why dedupe: Ollama models share blobs and a version may be reachable through a symlink or a
hard link; a run asks for the same file many times but reads it once, keyed by path and by
(device, inode).
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

BUF_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileHash:
    path: str
    sha256: str | None  # hex; None when the file could not be read
    size: int | None
    error: str | None = None  # "missing" | "unreadable: <reason>" | "changed while read"

    @property
    def ok(self) -> bool:
        return self.sha256 is not None


def default_workers() -> int:
    return max(2, os.cpu_count() or 1)


_local = threading.local()


def _buffer(size: int) -> bytearray:
    buf = getattr(_local, "buf", None)
    if buf is None or len(buf) != size:
        buf = bytearray(size)
        _local.buf = buf
    return buf


def sha256_file(path: str, buf_size: int = BUF_SIZE) -> FileHash:
    """One sequential read of the whole file; errors are returned, not raised."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return FileHash(path, None, None, "missing")
    except OSError as exc:
        return FileHash(path, None, None, f"unreadable: {exc.strerror or exc}")
    try:
        before = os.fstat(fd)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        h = hashlib.sha256()
        buf = _buffer(buf_size)
        view = memoryview(buf)
        total = 0
        with open(fd, "rb", buffering=0, closefd=False) as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(view[:n])
                total += n
        after = os.fstat(fd)
    except OSError as exc:
        return FileHash(path, None, None, f"unreadable: {exc.strerror or exc}")
    finally:
        os.close(fd)
    if total != after.st_size or (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        return FileHash(path, None, total, "changed while read")
    return FileHash(path, h.hexdigest(), total)


class Hasher:
    """A per-run pool: ``hash_many`` / ``submit`` never read the same file twice."""

    def __init__(self, workers: int = 0, buf_size: int = BUF_SIZE):
        self.workers = workers or default_workers()
        self.buf_size = buf_size
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sha256")
        self._lock = threading.Lock()
        self._by_path: dict[str, Future[FileHash]] = {}
        self._by_inode: dict[tuple[int, int], Future[FileHash]] = {}
        self.files_read = 0
        self.bytes_read = 0

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _read(self, path: str) -> FileHash:
        r = sha256_file(path, self.buf_size)
        with self._lock:
            if r.size:
                self.bytes_read += r.size
            self.files_read += 1
        return r

    def submit(self, path: str | os.PathLike) -> Future[FileHash]:
        p = os.path.abspath(os.fspath(path))
        with self._lock:
            fut = self._by_path.get(p)
            if fut is not None:
                return fut
            try:
                st = os.stat(p)
                key = (st.st_dev, st.st_ino)
            except OSError:
                key = None
            if key is not None and key in self._by_inode:
                fut = _renamed(self._by_inode[key], p)
            else:
                fut = self._pool.submit(self._read, p)
                if key is not None:
                    self._by_inode[key] = fut
            self._by_path[p] = fut
            return fut

    def hash(self, path: str | os.PathLike) -> FileHash:
        return self.submit(path).result()

    def hash_many(self, paths: list[str | os.PathLike]) -> dict[str, FileHash]:
        """Hash all paths (largest first); keys are the absolute paths asked for."""
        sized = []
        for p in {os.path.abspath(os.fspath(x)) for x in paths}:
            try:
                sized.append((os.stat(p).st_size, p))
            except OSError:
                sized.append((0, p))
        sized.sort(reverse=True)
        futs = {p: self.submit(p) for _, p in sized}
        return {p: f.result() for p, f in futs.items()}


def _renamed(src: Future[FileHash], path: str) -> Future[FileHash]:
    """The digest of another path to the same inode, reported under this path."""
    out: Future[FileHash] = Future()

    def done(f: Future[FileHash]) -> None:
        try:
            r = f.result()
        except BaseException as exc:  # a cancelled or crashed read fails this path the same way
            out.set_exception(exc)
            return
        out.set_result(FileHash(path, r.sha256, r.size, r.error))

    src.add_done_callback(done)
    return out
