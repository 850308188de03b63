"""Content digests and the S3 checksums we expect back, computed in one read of each file.

The sha256 is the object's address. The S3 checksum we ask for depends on the algorithm and,
for SHA256 multipart uploads, on the part size: S3 then reports a *composite* value, the
sha256 of the concatenated part digests, which we compute locally to verify the upload.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from awscrt import checksums
from s3transfer.utils import ChunksizeAdjuster

from llm_upkeep.backup.config import BackupConfig

BUF_SIZE = 1024 * 1024


class FileChangedError(OSError):
    """The file changed while it was being read; its digest would describe no real state."""


@dataclass(slots=True)
class FileDigest:
    sha256: str  # hex
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    crc64nvme: str | None = None  # base64, big-endian 8 bytes, as S3 reports it
    part_size: int | None = None
    composite: str | None = None  # base64 SHA256 of the part digests (no -N suffix)
    parts: int | None = None


@dataclass(slots=True, frozen=True)
class ChecksumPlan:
    """What a file of a given size needs besides its sha256, under one config."""

    crc64nvme: bool
    part_size: int | None


def part_size_for(size: int, cfg: BackupConfig) -> int:
    """The part size s3transfer will really use (it grows the chunk to stay within 10,000 parts)."""
    return ChunksizeAdjuster().adjust_chunksize(cfg.multipart_chunksize, size)


def plan_for(size: int, cfg: BackupConfig) -> ChecksumPlan:
    if cfg.checksum_algorithm == "CRC64NVME":
        return ChecksumPlan(crc64nvme=True, part_size=None)
    if size >= cfg.multipart_threshold:
        return ChecksumPlan(crc64nvme=False, part_size=part_size_for(size, cfg))
    return ChecksumPlan(crc64nvme=False, part_size=None)


def satisfies(d: FileDigest, plan: ChecksumPlan) -> bool:
    if plan.crc64nvme and d.crc64nvme is None:
        return False
    if plan.part_size is not None and (d.part_size != plan.part_size or d.composite is None):
        return False
    return True


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def sha256_b64(hex_digest: str) -> str:
    return b64(bytes.fromhex(hex_digest))


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ino) == (b.st_size, b.st_mtime_ns, b.st_ino)


def hash_file(path: str, plan: ChecksumPlan) -> FileDigest:
    """Read the file once: sha256, plus CRC64NVME or per-part sha256 when the plan asks.

    Raises FileChangedError if size, mtime or inode moved while reading.
    """
    whole = hashlib.sha256()
    crc = 0
    part_digests: list[bytes] = []
    part = hashlib.sha256() if plan.part_size else None
    in_part = 0
    buf = bytearray(BUF_SIZE)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        before = os.fstat(f.fileno())
        total = 0
        while True:
            n = f.readinto(buf)
            if not n:
                break
            chunk = view[:n]
            total += n
            whole.update(chunk)
            if plan.crc64nvme:
                crc = checksums.crc64nvme(chunk, crc)
            if part is not None and plan.part_size:
                off = 0
                while off < n:
                    take = min(n - off, plan.part_size - in_part)
                    part.update(chunk[off : off + take])
                    in_part += take
                    off += take
                    if in_part == plan.part_size:
                        part_digests.append(part.digest())
                        part = hashlib.sha256()
                        in_part = 0
        after = os.fstat(f.fileno())
    if not _same(before, after) or total != before.st_size:
        raise FileChangedError(f"{path} changed while it was read")
    digest = FileDigest(
        sha256=whole.hexdigest(),
        size=before.st_size,
        mtime_ns=before.st_mtime_ns,
        ctime_ns=before.st_ctime_ns,
        inode=before.st_ino,
    )
    if plan.crc64nvme:
        digest.crc64nvme = b64(crc.to_bytes(8, "big"))
    if part is not None and plan.part_size:
        if in_part or not part_digests:
            part_digests.append(part.digest())
        digest.part_size = plan.part_size
        digest.parts = len(part_digests)
        digest.composite = b64(hashlib.sha256(b"".join(part_digests)).digest())
    return digest
