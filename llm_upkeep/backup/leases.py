"""One backup at a time, and no garbage collection under a running backup.

Locally, flock(2) on a lock file in the state dir (released by the kernel when its holder exits).
Remotely, between hosts sharing a bucket, two kinds of marker objects under locks/, each
created with S3's conditional write (``If-None-Match: *``, atomic on the server):

* a backup creates ``locks/backup-<id>.json`` first, then looks for prune markers and waits
  while one is live;
* a prune creates the one ``locks/prune.json`` (so one prune sweeps at a time; a finished
  prune's marker is removed with ``If-Match`` on its ETag before it is taken over), then looks
  for backup leases and sweeps nothing while one is live.

Each side writes its own marker before reading the other's, and S3 lists are strongly
consistent, so at least one of them sees the other: a prune never deletes an object that a
running backup has seen as present or has uploaded. Markers expire (``lease_ttl_hours``,
refreshed while running) so a crashed host cannot block pruning forever.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from llm_upkeep.backup.errors import BackupError
from llm_upkeep.backup.store import LOCKS, S3Store

log = logging.getLogger("llm_upkeep.backup")

HOST = socket.gethostname()


def _proc_start(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def pid_alive(pid: int, started: float | None) -> bool:
    """True when that pid runs and (if known) is the same process, not a reused pid."""
    now_start = _proc_start(pid)
    if now_start is None:
        return False
    return started is None or abs(now_start - started) < 1.0


class LocalLock:
    """Exclusive lock on a file in the state dir, held with flock(2) for as long as we run.

    The kernel lock is the truth: it is released when the holder exits, however it exits, so
    there is no staleness to guess. The JSON written into the file (pid, host, purpose) only
    names the holder in the refusal. (Before, a lock file that existed but was not yet written
    read as stale and was deleted, so two backups, or a backup and a prune, could run at once.)
    """

    def __init__(self, path: Path, purpose: str):
        self.path = path
        self.purpose = purpose
        self._fd: int | None = None

    def _info(self) -> dict:
        return {
            "pid": os.getpid(),
            "pid_start": _proc_start(os.getpid()),
            "host": HOST,
            "purpose": self.purpose,
            "started": time.time(),
        }

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_capped(fd)
                os.close(fd)
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0) or 0))
                raise BackupError(
                    "locked",
                    f"another {holder.get('purpose', 'backup')} is running (pid {holder.get('pid', '?')} on "
                    f"{holder.get('host', HOST)} since {since}); lock file {self.path}",
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder unlinked the file between our open and our flock
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(self._info()).encode(), 0)
            os.fsync(fd)
            self._fd = fd
            return
        raise BackupError("locked", f"could not take the lock {self.path}")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: a waiter that opened it re-checks the inode
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> LocalLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


MAX_LOCK_BYTES = 64 * 1024
"""A lock file or lease marker is a few hundred bytes; anything longer is not ours (read no more)."""


def _read_capped(fd: int) -> dict:
    """The holder's description from a lock file, {} when unreadable (it only names the holder)."""
    try:
        data = os.pread(fd, MAX_LOCK_BYTES, 0)
        d = json.loads(data)
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


@dataclass
class LeaseInfo:
    rel: str
    kind: str
    ident: str
    host: str
    pid: int
    pid_start: float | None
    started: float
    expires: float

    @property
    def live(self) -> bool:
        if self.expires < time.time():
            return False
        if self.host == HOST and not pid_alive(self.pid, self.pid_start):
            return False
        return True


class RemoteLease:
    def __init__(self, store: S3Store, kind: str, ident: str, ttl_s: float, rel: str | None = None):
        self.store = store
        self.kind = kind
        self.ident = ident
        self.ttl_s = ttl_s
        self.rel = rel or f"{LOCKS}{kind}-{ident}.json"
        self.started = time.time()
        self.expires = 0.0
        self._written = 0.0

    def write(self, *, create_only: bool = False) -> None:
        """Write (or refresh) the marker; ``create_only``: only if no object has its key (S3's
        atomic If-None-Match: *), else BackupError 'exists'."""
        now = time.time()
        self.expires = now + self.ttl_s
        self.store.put_json(
            self.rel,
            {
                "kind": self.kind,
                "id": self.ident,
                "host": HOST,
                "pid": os.getpid(),
                "pid_start": _proc_start(os.getpid()),
                "started": self.started,
                "expires": self.expires,
            },
            create_only=create_only,
        )
        self._written = now

    def refresh_if_due(self) -> None:
        if time.time() - self._written > min(self.ttl_s / 4, 600):
            self.write()

    def ensure_live(self) -> None:
        if time.time() >= self.expires:
            raise BackupError(
                "lease_expired",
                f"the {self.kind} lease expired while running; a prune may have run meanwhile, run it again",
            )

    def release(self) -> None:
        try:
            self.store.delete_one(self.rel)
        except BackupError as exc:
            log.warning("could not remove lease %s (it will expire): %s", self.rel, exc)


def list_leases(store: S3Store, skip: frozenset[str] = frozenset()) -> list[LeaseInfo]:
    """Every marker under locks/ but those in ``skip`` (our own: no need to read it back)."""
    return list_leases_of(store, [o for o in store.list(LOCKS) if o["rel"] not in skip])


def list_leases_of(store: S3Store, objects: list[dict]) -> list[LeaseInfo]:
    """The leases these listed marker objects describe ({"rel", "last_modified"} each)."""
    out: list[LeaseInfo] = []
    for o in objects:
        try:
            d = json.loads(store.get_bytes(o["rel"], MAX_LOCK_BYTES))
            out.append(
                LeaseInfo(
                    rel=o["rel"],
                    kind=str(d["kind"]),
                    ident=str(d["id"]),
                    host=str(d["host"]),
                    pid=int(d["pid"]),
                    pid_start=d.get("pid_start"),
                    started=float(d["started"]),
                    expires=float(d["expires"]),
                )
            )
        except BackupError as exc:
            if exc.kind == "not_found":
                continue  # released between list and get
            if exc.kind != "too_large":
                raise
            out.append(_unreadable(o))  # a marker is a few hundred bytes: this one is not ours
        except (ValueError, KeyError, TypeError):
            out.append(_unreadable(o))
    return out


def _unreadable(o: dict) -> LeaseInfo:
    """An unreadable marker counts as live until it is a day old: err on the side of not deleting."""
    age = time.time() - o["last_modified"].timestamp()
    return LeaseInfo(o["rel"], "unknown", o["rel"], "?", -1, None, time.time() - age, time.time() - age + 86400)


def begin_backup_lease(store: S3Store, snapshot_id: str, ttl_s: float, prune_wait_s: float) -> RemoteLease:
    """Write our lease, then wait while a prune elsewhere is sweeping."""
    lease = RemoteLease(store, "backup", snapshot_id, ttl_s)
    lease.write(create_only=True)  # never take over another run's marker, even with our id
    deadline = time.monotonic() + prune_wait_s
    try:
        while True:
            leases = list_leases(store, skip=frozenset({lease.rel}))
            for other in leases:
                if (
                    other.kind == "backup"
                    and other.rel != lease.rel
                    and other.host == HOST
                    and not other.live
                ):
                    store.delete_one(other.rel)  # our own host's dead backup: its lease only blocks pruning
            pruning = [x for x in leases if x.kind in ("prune", "unknown") and x.live]
            if not pruning:
                return lease
            if time.monotonic() >= deadline:
                raise BackupError(
                    "prune_in_progress",
                    f"a prune is running ({pruning[0].rel} from {pruning[0].host}); try again later",
                    retryable=True,
                )
            time.sleep(min(2.0, max(0.05, deadline - time.monotonic())))
    except BaseException:
        lease.release()
        raise


PRUNE_MARKER = f"{LOCKS}prune.json"
"""One key for every host's prune: created with If-None-Match: *, so one prune sweeps at a time."""


def _take_prune_marker(store: S3Store, marker: RemoteLease) -> str | None:
    """Create the one prune marker; None when taken, else why not (another prune is live).

    A marker whose prune is over (expired, or a dead process of this host) is removed with
    If-Match on the ETag we read, so two hosts taking it over cannot both succeed."""
    for _ in range(3):
        try:
            marker.write(create_only=True)
            return None
        except BackupError as exc:
            if exc.kind != "exists":
                raise
        head = store.head(PRUNE_MARKER)
        if head is None:
            continue  # released meanwhile: try again
        found = list_leases_of(store, [{"rel": PRUNE_MARKER, "last_modified": head["LastModified"]}])
        if not found:
            continue  # released between head and get
        holder = found[0]
        if holder.live:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.started))
            return f"another prune is running ({holder.host}, pid {holder.pid}, since {since}); objects were not swept"
        log.warning("removing the marker of a finished prune (%s from %s)", PRUNE_MARKER, holder.host)
        try:
            store.delete_one(PRUNE_MARKER, if_match=head.get("ETag"))
        except BackupError as exc:
            if exc.kind != "changed":
                raise
    return "another prune took the prune marker first; objects were not swept"


def begin_prune_marker(
    store: S3Store, ttl_s: float
) -> tuple[RemoteLease | None, str | None, list[LeaseInfo]]:
    """Take the prune marker; if another prune or a live backup lease exists, withdraw and say why."""
    ident = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
    marker = RemoteLease(store, "prune", ident, ttl_s, rel=PRUNE_MARKER)
    why = _take_prune_marker(store, marker)
    if why is not None:
        return None, why, list_leases(store, skip=frozenset({PRUNE_MARKER}))
    leases = list_leases(store, skip=frozenset({marker.rel}))
    blocking = [x for x in leases if x.kind in ("backup", "unknown") and x.live]
    if blocking:
        marker.release()
        b = blocking[0]
        return None, f"a backup holds a live lease ({b.rel} from {b.host}); objects were not swept", leases
    return marker, None, leases
