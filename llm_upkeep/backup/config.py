"""The ``[backup]`` config section: where backups go, what they contain, how hard to try."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llm_upkeep.configbase import HttpUrl, PositiveFloat, Section, require_unique

# Storage classes whose objects can be read back at once; archive classes (GLACIER,
# DEEP_ARCHIVE) need a RestoreObject round trip first, which would break verify and the drill.
STORAGE_CLASSES = (
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "REDUCED_REDUNDANCY",
)

_SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class BackupSet(Section):
    name: str = Field(
        description="Name of the set (letters, digits, '.', '_', '-'); the first folder of its files in a "
        "snapshot and in a restore.",
    )
    paths: list[str] = Field(
        min_length=1,
        description="Files or directories to back up (~ expanded). Each becomes <set>/<basename>/... in the "
        "snapshot.",
    )
    include: list[str] = Field(
        default_factory=list,
        description="Glob patterns a file must match to be backed up (all files when empty). A pattern "
        "without '/' matches the file name at any depth; with '/' it matches the path under the root; "
        "'**' spans directories.",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Glob patterns of files and directories to leave out (same syntax as include); a "
        "matching directory is not descended into.",
    )
    follow_symlinks: bool = Field(
        default=False,
        description="Back up what symlinks point to instead of recording the links themselves.",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _SET_NAME.match(v) or v in (".", ".."):
            raise ValueError("must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return v

    @field_validator("paths")
    @classmethod
    def _check_paths(cls, v: list[str]) -> list[str]:
        for p in v:
            if not p.strip():
                raise ValueError("paths must not be empty strings")
        return v


class BackupConfig(Section):
    bucket: str | None = Field(
        default=None, description="S3 bucket that receives the backups; backup is off while this is unset."
    )
    prefix: str = Field(
        default="llm-upkeep",
        description="Key prefix inside the bucket; objects/, snapshots/ and locks/ live under it.",
    )
    endpoint_url: HttpUrl | None = Field(
        default=None,
        description="Endpoint of an S3-compatible store (MinIO, Ceph, R2...); AWS S3 when unset.",
    )
    region: str | None = Field(
        default=None, description="Region name; from the standard AWS configuration chain when unset."
    )
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto",
        description="Bucket addressing: 'path' for most self-hosted S3-compatible stores, 'auto' otherwise.",
    )
    storage_class: Literal[STORAGE_CLASSES] = Field(  # type: ignore[valid-type]
        default="STANDARD",
        description="Storage class of file objects (manifests stay STANDARD). Only instantly readable "
        "classes are allowed, so verify and restore always work.",
    )
    keep_snapshots: int = Field(
        default=12, ge=1, description="How many most recent snapshots prune keeps (12 = a year of monthly)."
    )
    access_key_id_env: str | None = Field(
        default=None,
        description="Env var holding the access key id; the standard AWS credential chain when unset.",
    )
    secret_access_key_env: str | None = Field(
        default=None,
        description="Env var holding the secret access key (set together with access_key_id_env).",
    )
    session_token_env: str | None = Field(
        default=None, description="Env var holding a session token for temporary credentials (optional)."
    )
    checksum_algorithm: Literal["SHA256", "CRC64NVME"] = Field(
        default="SHA256",
        description="S3 checksum sent with every upload and checked by verify: SHA256 (composite for "
        "multipart uploads) or CRC64NVME (full-object, also for multipart).",
    )
    multipart_threshold_mib: int = Field(
        default=64, ge=5, le=5120, description="Files at least this large (MiB) go up as multipart uploads."
    )
    multipart_chunksize_mib: int = Field(
        default=32,
        ge=5,
        le=5120,
        description="Part size of multipart uploads in MiB (raised automatically to stay within 10,000 parts).",
    )
    max_concurrency: int = Field(
        default=10, ge=1, le=64, description="Parallel S3 requests of the transfer manager."
    )
    hash_workers: int = Field(default=2, ge=1, le=32, description="Threads hashing files in parallel.")
    connect_timeout_s: PositiveFloat = Field(default=10.0, description="TCP connect timeout of S3 requests.")
    read_timeout_s: PositiveFloat = Field(
        default=60.0, description="Longest silence tolerated while reading an S3 response, in seconds."
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        description="Requests per S3 operation in all, the first one included (botocore 'standard' retry mode, "
        "passed as its total_max_attempts: botocore's own max_attempts counts retries only).",
    )
    min_throughput_kib_s: float = Field(
        default=64.0,
        ge=0,
        description="Slowest acceptable backup: its S3 work must end within slow_grace_s plus the bytes "
        "to upload at this rate (KiB/s), checked before every request; past it the run stops with "
        "'too_slow' (a store answering each request just inside read_timeout_s otherwise stretches "
        "a small backup to many minutes). 0: no limit.",
    )
    slow_grace_s: PositiveFloat = Field(
        default=300.0,
        description="Seconds of S3 work a backup may spend beyond its bytes at min_throughput_kib_s "
        "(listing, HEAD requests, the lease, the manifest).",
    )
    lease_ttl_hours: PositiveFloat = Field(
        default=24.0,
        description="Life of the remote lease a running backup holds (refreshed while it runs); prune "
        "deletes no object while a live lease exists.",
    )
    prune_wait_s: float = Field(
        default=120.0, ge=0, description="How long a backup waits for a prune running elsewhere to finish."
    )
    prune_after_backup: bool = Field(
        default=True, description="The monthly flow prunes old snapshots after a successful backup."
    )
    drill_sample_files: int = Field(
        default=20, ge=1, description="How many files the monthly restore drill restores and compares."
    )
    drill_max_mib: int = Field(
        default=1024, ge=1, description="Upper bound of the bytes the restore drill downloads, in MiB."
    )
    drill_dir: str | None = Field(
        default=None,
        description="Where the restore drill makes its temporary directory (system temp if unset).",
    )
    sets: list[BackupSet] = Field(
        default_factory=list, description="What to back up: named sets of paths ([[backup.sets]] tables)."
    )

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", v):
            raise ValueError("not a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
        return v

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, v: str) -> str:
        v = v.strip("/")
        if any(part in ("", ".", "..") for part in v.split("/")) and v != "":
            raise ValueError("must not contain empty, '.' or '..' segments")
        return v

    @field_validator("sets")
    @classmethod
    def _unique_sets(cls, v: list[BackupSet]) -> list[BackupSet]:
        return require_unique(v, lambda s: s.name, "duplicate set name")

    @model_validator(mode="after")
    def _check_credentials(self) -> BackupConfig:
        if bool(self.access_key_id_env) != bool(self.secret_access_key_env):
            raise ValueError("access_key_id_env and secret_access_key_env must be set together")
        return self

    @property
    def configured(self) -> bool:
        return self.bucket is not None

    @property
    def multipart_threshold(self) -> int:
        return self.multipart_threshold_mib * 1024 * 1024

    @property
    def multipart_chunksize(self) -> int:
        return self.multipart_chunksize_mib * 1024 * 1024
