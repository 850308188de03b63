"""Local state in SQLite: the hash cache and an index of what the store holds.

Both are caches. Losing them costs a rehash and some S3 reads, never correctness: the
store's manifests are the truth, and the index is re-checked against the store's listing
of snapshots on every run.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from llm_upkeep.backup.hashing import FileDigest
from llm_upkeep.backup.models import Manifest, ObjRec

# A cache entry is trusted only if the file was last changed this long before it was hashed:
# within a timestamp tick a rewrite can leave size and mtime unchanged ("racily clean").
RACY_NS = 2_000_000_000


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class HashCache:
    """sha256 (and S3 checksums) of files keyed on (path, size, mtime_ns, ctime_ns, inode)."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = _connect(path)
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
            " ctime_ns INTEGER, inode INTEGER, hashed_ns INTEGER, sha256 TEXT, crc64nvme TEXT,"
            " part_size INTEGER, composite TEXT, parts INTEGER)"
        )

    def load(self) -> dict[str, FileDigest]:
        """Every trustworthy entry, by absolute path (one query; fast for 100k files)."""
        out: dict[str, FileDigest] = {}
        rows = self.conn.execute(
            "SELECT path, size, mtime_ns, ctime_ns, inode, hashed_ns, sha256, crc64nvme, part_size,"
            " composite, parts FROM files"
        )
        for path, size, mtime, ctime, ino, hashed, sha, crc, psize, comp, parts in rows:
            if hashed - max(mtime, ctime) < RACY_NS:
                continue
            out[path] = FileDigest(sha, size, mtime, ctime, ino, crc, psize, comp, parts)
        return out

    def store(self, items: Iterable[tuple[str, FileDigest, int]]) -> None:
        rows = [
            (
                p,
                d.size,
                d.mtime_ns,
                d.ctime_ns,
                d.inode,
                hashed,
                d.sha256,
                d.crc64nvme,
                d.part_size,
                d.composite,
                d.parts,
            )
            for p, d, hashed in items
        ]
        if not rows:
            return
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)

    def forget_except(self, keep: set[str]) -> int:
        """Drop entries of files no set contains any more, so the cache does not grow forever."""
        known = [r[0] for r in self.conn.execute("SELECT path FROM files")]
        gone = [(p,) for p in known if p not in keep]
        if gone:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.executemany("DELETE FROM files WHERE path = ?", gone)
        return len(gone)

    def close(self) -> None:
        self.conn.close()


class RemoteIndex:
    """What one bucket/prefix holds, as far as our manifests and verified uploads tell."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = _connect(path)
        cols = [r[1] for r in self.conn.execute("PRAGMA table_info(snapshots)")]
        if cols and "refs" not in cols:  # an older layout: it is only a cache, start over
            self.conn.executescript("DROP TABLE IF EXISTS snapshots; DROP TABLE IF EXISTS refs;")
        self.conn.executescript(
            "CREATE TABLE IF NOT EXISTS objects(sha256 TEXT PRIMARY KEY, size INTEGER, algorithm TEXT,"
            " type TEXT, checksum TEXT, parts INTEGER, recorded_ns INTEGER);"
            # refs: the snapshot's object digests, 32 raw bytes each, concatenated (one row per snapshot)
            "CREATE TABLE IF NOT EXISTS snapshots(id TEXT PRIMARY KEY, created TEXT, files INTEGER,"
            " bytes INTEGER, refs BLOB);"
        )

    @staticmethod
    def path_for(state_dir: Path, endpoint_url: str | None, bucket: str, prefix: str) -> Path:
        ident = hashlib.sha256(f"{endpoint_url or 'aws'}|{bucket}|{prefix}".encode()).hexdigest()[:16]
        return state_dir / "backup" / f"remote-{ident}.sqlite"

    def snapshot_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT id FROM snapshots")}

    def add_snapshot(
        self,
        snapshot_id: str,
        created: str,
        files: int,
        nbytes: int,
        objects: dict[str, ObjRec],
        *,
        records_known: bool = False,
    ) -> None:
        """``records_known``: every record is in the objects table already (our own backup put it there)."""
        refs = b"".join(bytes.fromhex(sha) for sha in sorted(objects))
        now = time.time_ns()
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?,?,?,?,?)",
                (snapshot_id, created, files, nbytes, refs),
            )
            if not records_known:
                # Records of existing objects do not change: keep the first.
                self.conn.executemany(
                    "INSERT OR IGNORE INTO objects VALUES (?,?,?,?,?,?,?)",
                    [
                        (sha, r.size, r.algorithm, r.type, r.checksum, r.parts, now)
                        for sha, r in objects.items()
                    ],
                )

    def add_manifest(self, m: Manifest) -> None:
        self.add_snapshot(
            m.snapshot,
            m.created.isoformat(),
            m.stats.files,
            m.stats.bytes,
            {sha: ObjRec(r.size, r.algorithm, r.type, r.checksum, r.parts) for sha, r in m.objects.items()},
        )

    def drop_snapshots(self, ids: Iterable[str]) -> None:
        rows = [(i,) for i in ids]
        if not rows:
            return
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany("DELETE FROM snapshots WHERE id = ?", rows)

    def referenced(self, only: Iterable[str] | None = None) -> set[str]:
        """Objects named by the snapshots the store holds (kept in sync by the caller), or by ``only``."""
        keep = set(only) if only is not None else None
        out: set[str] = set()
        for sid, refs in self.conn.execute("SELECT id, refs FROM snapshots"):
            if keep is not None and sid not in keep:
                continue
            out.update(refs[i : i + 32].hex() for i in range(0, len(refs), 32))
        return out

    def records(self, shas: Iterable[str] | None = None) -> dict[str, ObjRec]:
        rows = self.conn.execute("SELECT sha256, size, algorithm, type, checksum, parts FROM objects")
        if shas is None:
            return {r[0]: ObjRec(*r[1:]) for r in rows}
        wanted = shas if isinstance(shas, set | dict) else set(shas)
        return {r[0]: ObjRec(*r[1:]) for r in rows if r[0] in wanted}

    def add_objects(self, items: list[tuple[str, ObjRec]]) -> None:
        """Verified uploads (or HEAD-confirmed objects): replace what we knew."""
        if not items:
            return
        now = time.time_ns()
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany(
                "INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?,?,?)",
                [(sha, r.size, r.algorithm, r.type, r.checksum, r.parts, now) for sha, r in items],
            )

    def add_object(self, sha: str, r: ObjRec) -> None:
        self.add_objects([(sha, r)])

    def forget_objects(self, shas: Iterable[str]) -> None:
        rows = [(s,) for s in shas]
        if rows:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.executemany("DELETE FROM objects WHERE sha256 = ?", rows)

    def close(self) -> None:
        self.conn.close()


def hash_cache_path(state_dir: Path) -> Path:
    return Path(os.path.expanduser(str(state_dir))) / "backup" / "hashcache.sqlite"
