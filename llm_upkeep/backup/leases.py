"""One backup at a time, and no garbage collection under a running backup.

Locally, a lock file in the state dir (O_EXCL; a lock whose process is gone is stale).
Remotely, between hosts sharing a bucket, two kinds of marker objects under locks/:

* a backup writes ``locks/backup-<id>.json`` first, then looks for prune markers and waits
  while one is live;
* a prune writes ``locks/prune-<id>.json`` first, then looks for backup leases and sweeps
  nothing while one is live.

Each side writes its own marker before reading the other's, and S3 lists are strongly
consistent, so at least one of them sees the other: a prune never deletes an object that a
running backup has seen as present or has uploaded. Markers expire (``lease_ttl_hours``,
refreshed while running) so a crashed host cannot block pruning forever.
"""

from __future__ import annotations

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
    """Exclusive lock file; a leftover from a dead process is taken over, a live one refused."""

    def __init__(self, path: Path, purpose: str):
        self.path = path
        self.purpose = purpose
        self._held = False

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
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read()
                if holder is not None and not self._stale(holder):
                    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
                    raise BackupError(
                        "locked",
                        f"another {holder.get('purpose', 'backup')} is running (pid {holder.get('pid')} on "
                        f"{holder.get('host')} since {since}); lock file {self.path}",
                    ) from None
                log.warning("removing stale lock %s (%s)", self.path, holder)
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(self._info(), f)
                f.flush()
                os.fsync(f.fileno())
            self._held = True
            return
        raise BackupError("locked", f"could not take the lock {self.path}")

    def _read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return None

    def _stale(self, holder: dict) -> bool:
        if not holder:
            return True  # vanished or empty: its writer died between create and write
        if holder.get("host") != HOST:
            return False  # cannot check another host's processes
        return not pid_alive(int(holder.get("pid", -1)), holder.get("pid_start"))

    def release(self) -> None:
        if not self._held:
            return
        holder = self._read()
        if holder and holder.get("pid") == os.getpid():
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        self._held = False

    def __enter__(self) -> LocalLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


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
    def __init__(self, store: S3Store, kind: str, ident: str, ttl_s: float):
        self.store = store
        self.kind = kind
        self.ident = ident
        self.ttl_s = ttl_s
        self.rel = f"{LOCKS}{kind}-{ident}.json"
        self.started = time.time()
        self.expires = 0.0
        self._written = 0.0

    def write(self) -> None:
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
    out: list[LeaseInfo] = []
    for o in store.list(LOCKS):
        if o["rel"] in skip:
            continue
        try:
            d = json.loads(store.get_bytes(o["rel"]))
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
            raise
        except (ValueError, KeyError, TypeError):
            # Unreadable marker: treat as live until it is old, so we err on the side of not deleting.
            age = time.time() - o["last_modified"].timestamp()
            out.append(
                LeaseInfo(
                    o["rel"], "unknown", o["rel"], "?", -1, None, time.time() - age, time.time() - age + 86400
                )
            )
    return out


def begin_backup_lease(store: S3Store, snapshot_id: str, ttl_s: float, prune_wait_s: float) -> RemoteLease:
    """Write our lease, then wait while a prune elsewhere is sweeping."""
    lease = RemoteLease(store, "backup", snapshot_id, ttl_s)
    lease.write()
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


def begin_prune_marker(
    store: S3Store, ttl_s: float
) -> tuple[RemoteLease | None, str | None, list[LeaseInfo]]:
    """Write the prune marker; if a live backup lease exists, withdraw and say why."""
    marker = RemoteLease(
        store, "prune", f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}", ttl_s
    )
    marker.write()
    leases = list_leases(store, skip=frozenset({marker.rel}))
    blocking = [x for x in leases if x.kind in ("backup", "unknown") and x.live]
    if blocking:
        marker.release()
        b = blocking[0]
        return None, f"a backup holds a live lease ({b.rel} from {b.host}); objects were not swept", leases
    return marker, None, leases
