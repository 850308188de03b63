"""Snapshot manifest and result shapes (the JSON contract of the CLI and the flows)."""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

FORMAT = "llm-upkeep-backup/1"
SNAPSHOT_ID = re.compile(r"^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def new_snapshot_id(now: float | None = None) -> str:
    """Sortable by time (to the millisecond), unique across hosts: 20261128T030000.123Z-a1b2c3."""
    t = now if now is not None else time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(t))
    return f"{stamp}.{int(t * 1000) % 1000:03d}Z-{secrets.token_hex(3)}"


# A snapshot reference: the id, prefixed in a fleet by the namespace of the host that made it
# ("gpu-01/20261128T030000.123Z-a1b2c3"); every host's snapshots, and their retention, live in
# their own namespace (snapshots/<host>/<id>.json), while the content-addressed objects are shared.
SNAPSHOT_REF = re.compile(
    r"^(?:(?P<ns>[A-Za-z0-9][A-Za-z0-9._-]{0,62})/)?(?P<id>\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6})$"
)


def split_ref(ref: str) -> tuple[str | None, str]:
    """(namespace or None, bare id) of a valid reference; ValueError otherwise."""
    m = SNAPSHOT_REF.match(ref)
    if not m:
        raise ValueError(f"{ref!r} is not a snapshot reference")
    return m.group("ns"), m.group("id")


def snapshot_ref(namespace: str | None, snapshot_id: str) -> str:
    return f"{namespace}/{snapshot_id}" if namespace else snapshot_id


def namespace_of(ref: str) -> str | None:
    return split_ref(ref)[0]


def snapshot_created(snapshot_id: str) -> datetime:
    bare = split_ref(snapshot_id)[1] if SNAPSHOT_REF.match(snapshot_id) else snapshot_id
    return datetime.strptime(bare[:19], "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class ObjRec(NamedTuple):
    """ObjectRecord's fields in a tuple: cheap enough to hold one per file of a 100k-file store."""

    size: int
    algorithm: str
    type: str
    checksum: str
    parts: int | None

    def doc(self) -> dict:
        return {
            "size": self.size,
            "algorithm": self.algorithm,
            "type": self.type,
            "checksum": self.checksum,
            "parts": self.parts,
        }


class ObjectRecord(BaseModel):
    """How the store holds one content object, so verify knows what S3 must report."""

    size: int = Field(ge=0, description="Object size in bytes.")
    algorithm: Literal["SHA256", "CRC64NVME"] = Field(description="S3 checksum algorithm of the object.")
    type: Literal["FULL_OBJECT", "COMPOSITE"] = Field(
        description="Full-object or composite (multipart SHA256)."
    )
    checksum: str = Field(description="Base64 checksum as S3 reports it, without the -N part-count suffix.")
    parts: int | None = Field(default=None, description="Part count of a composite checksum.")


class FileEntry(BaseModel):
    path: str = Field(description="Path in the snapshot: <set>/<root label>/<relative path>.")
    size: int = Field(ge=0, description="Size in bytes.")
    mode: int = Field(description="Permission bits (st_mode & 0o7777).")
    mtime_ns: int = Field(description="Modification time, nanoseconds since the epoch.")
    sha256: str = Field(description="SHA-256 of the content (hex); the object's address.")
    object: str = Field(description="Object key relative to the prefix: objects/sha256/<hex>.")


class SymlinkEntry(BaseModel):
    path: str = Field(description="Path of the link in the snapshot.")
    target: str = Field(description="The link's target, as stored in the link.")


class SkippedEntry(BaseModel):
    path: str = Field(description="Path in the snapshot (or the root) that was not backed up.")
    reason: str = Field(description="Why: unreadable, not a regular file, changed while read...")


class RootEntry(BaseModel):
    set: str = Field(description="Backup set name.")
    label: str = Field(description="Folder name of this root inside the set.")
    source: str = Field(description="Absolute source path on the host that made the snapshot.")


class SnapshotStats(BaseModel):
    files: int = Field(description="Files in the snapshot.")
    bytes: int = Field(description="Bytes of those files.")
    uploaded_objects: int = Field(description="Objects uploaded by this backup.")
    uploaded_bytes: int = Field(description="Bytes uploaded by this backup.")
    reused_objects: int = Field(description="Objects already in the store (deduplicated).")
    skipped: int = Field(description="Entries not backed up.")
    hashed_files: int = Field(description="Files read and hashed (cache misses).")
    hashed_bytes: int = Field(description="Bytes read and hashed.")
    duration_s: float = Field(description="Wall time of the backup, seconds.")


class Manifest(BaseModel):
    format: Literal["llm-upkeep-backup/1"] = Field(default=FORMAT, description="Manifest format version.")
    snapshot: str = Field(description="Snapshot id.")
    created: datetime = Field(description="When the backup started (UTC).")
    finished: datetime = Field(description="When the manifest was written (UTC).")
    host: str = Field(description="Host that made the snapshot.")
    roots: list[RootEntry] = Field(default_factory=list, description="Where each set's roots came from.")
    files: list[FileEntry] = Field(default_factory=list, description="Backed-up files.")
    symlinks: list[SymlinkEntry] = Field(default_factory=list, description="Symlinks (not followed).")
    skipped: list[SkippedEntry] = Field(default_factory=list, description="What was left out and why.")
    objects: dict[str, ObjectRecord] = Field(
        default_factory=dict, description="Checksum record of every object the files name, by sha256."
    )
    stats: SnapshotStats = Field(description="Counts and timing.")


class SnapshotInfo(BaseModel):
    snapshot: str = Field(description="Snapshot id.")
    created: datetime = Field(description="When the backup started (UTC).")
    files: int | None = Field(description="Files in the snapshot.")
    bytes: int | None = Field(description="Bytes of those files.")


class BackupResult(BaseModel):
    snapshot: str = Field(description="Id of the snapshot written.")
    created: datetime = Field(description="When the backup started (UTC).")
    files: int = Field(description="Files in the snapshot.")
    bytes: int = Field(description="Bytes of those files.")
    uploaded_objects: int = Field(description="Objects uploaded (new content).")
    uploaded_bytes: int = Field(description="Bytes uploaded.")
    reused_objects: int = Field(description="Objects already present in the store.")
    symlinks: int = Field(description="Symlinks recorded.")
    skipped: list[SkippedEntry] = Field(default_factory=list, description="What was left out and why.")
    hashed_files: int = Field(description="Files hashed (the rest came from the local hash cache).")
    hashed_bytes: int = Field(description="Bytes hashed.")
    duration_s: float = Field(description="Wall time, seconds.")
    upload_duration_s: float = Field(description="Time spent uploading, seconds.")
    upload_bytes_per_s: float = Field(description="uploaded_bytes / upload_duration_s.")


class Problem(BaseModel):
    problem: str = Field(
        description="missing, size_mismatch, checksum_mismatch, no_checksum, content_mismatch..."
    )
    object: str | None = Field(default=None, description="Object key relative to the prefix.")
    path: str | None = Field(default=None, description="A snapshot path that uses this object.")
    detail: str = Field(default="", description="Human-readable explanation.")


class VerifyResult(BaseModel):
    snapshot: str = Field(description="Snapshot verified.")
    ok: bool = Field(description="True when no problem was found.")
    files: int = Field(description="Files in the snapshot.")
    objects: int = Field(description="Distinct objects checked with HeadObject.")
    deep_checked: int = Field(description="Objects downloaded and rehashed.")
    problems: list[Problem] = Field(default_factory=list, description="Everything wrong, one entry each.")


class RestoreResult(BaseModel):
    snapshot: str = Field(description="Snapshot restored.")
    to: str = Field(description="Destination directory.")
    ok: bool = Field(description="True when every selected file was restored or already identical.")
    files: int = Field(description="Files written.")
    bytes: int = Field(description="Bytes written.")
    identical: int = Field(description="Files already present with the right content (left alone).")
    symlinks: int = Field(description="Symlinks created.")
    problems: list[Problem] = Field(default_factory=list, description="What could not be restored.")


class PruneResult(BaseModel):
    dry_run: bool = Field(description="True when nothing was deleted.")
    kept: list[str] = Field(description="Snapshots kept.")
    deleted_snapshots: list[str] = Field(description="Snapshots deleted (or that would be).")
    deleted_objects: int = Field(description="Unreferenced objects deleted (or that would be).")
    deleted_bytes: int = Field(description="Their bytes.")
    aborted_uploads: int = Field(description="Abandoned multipart uploads aborted.")
    expired_leases: int = Field(description="Expired leases of dead backups removed.")
    sweep_skipped: str | None = Field(
        default=None, description="Why objects were not swept (a backup holds a live lease), if so."
    )


class DrillResult(BaseModel):
    snapshot: str = Field(description="Snapshot the drill restored from.")
    ok: bool = Field(description="True when every sampled file restored intact.")
    sampled: int = Field(description="Files picked for the drill.")
    restored: int = Field(description="Files restored and verified against their sha256.")
    bytes: int = Field(description="Bytes restored.")
    matched_source: int = Field(description="Restored files byte-identical to the unchanged source file.")
    source_changed: int = Field(
        description="Sampled files whose source changed since the snapshot (not compared)."
    )
    problems: list[Problem] = Field(default_factory=list, description="What failed.")
    duration_s: float = Field(description="Wall time, seconds.")
