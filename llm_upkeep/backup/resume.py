"""Resuming a multipart upload that a cut run left open, instead of sending the file again.

A run that dies mid-upload (killed, endpoint gone, too_slow) leaves the object's multipart
upload open in the store with the parts that arrived. The next run finds it (one
ListMultipartUploads for all the objects it must send), lists its parts (ListParts), checks
each completed part against the local file's bytes at that offset, sends only the parts that
are missing or do not match, and completes the upload with every part's checksum. The object
is then confirmed like any other upload (the checksum S3 reports against the one we computed).

Checking a completed part: its size must be the part size s3transfer would use, and its
checksum (the upload's algorithm, when the store lists it per part, as AWS does) or else its
ETag (the part's MD5 on stores that list no checksum, like moto and SSE-S3 buckets) must equal
the local part's. A part that cannot be checked either way is sent again. The hash cache
keeps only the composite, so the completed parts are read once more locally (disk speed,
against network speed for sending them).

An open upload that cannot be resumed (another algorithm or checksum type, another part
layout, another storage class) is aborted; of several compatible ones the one holding the
most bytes is kept and the others aborted, always after the choice, so the upload this run
resumes is never the one it aborts.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from awscrt import checksums
from botocore.exceptions import ClientError
from s3transfer.utils import ReadFileChunk

from llm_upkeep.backup.config import BackupConfig
from llm_upkeep.backup.hashing import b64, part_size_for
from llm_upkeep.backup.models import ObjRec
from llm_upkeep.backup.store import S3Store, classify

log = logging.getLogger("llm_upkeep.backup")

_MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')
READ = 1024 * 1024
# CompleteMultipartUpload answers that mean the open upload is not what we took it for (an
# upload without a checksum algorithm on a store that does not list it, a part layout it
# rejects): abort it and send the object afresh rather than fail every later run on it.
_REFUSED = {"InvalidPart", "InvalidPartOrder", "InvalidRequest", "EntityTooSmall", "InvalidArgument"}


class UploadGone(Exception):
    """The open upload disappeared (aborted elsewhere) while resuming: send the object afresh."""


@dataclass
class Resumable:
    key: str
    upload_id: str
    part_size: int
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)  # number -> ListParts entry

    @property
    def stored_bytes(self) -> int:
        return sum(int(p.get("Size", 0)) for p in self.parts.values())


def layout(size: int, cfg: BackupConfig) -> tuple[int, list[int]]:
    """(part size, size of each part) as s3transfer lays out a file of ``size`` bytes."""
    ps = part_size_for(size, cfg)
    n = max(1, -(-size // ps))
    return ps, [min(ps, size - i * ps) for i in range(n)]


def _compatible(
    up: dict[str, Any], parts: list[dict[str, Any]], rec: ObjRec, cfg: BackupConfig
) -> str | None:
    """None when the open upload can be resumed for ``rec``; else why not."""
    algo = (up.get("ChecksumAlgorithm") or "").upper()
    if algo and algo != rec.algorithm:
        return f"checksum algorithm {algo}, not {rec.algorithm}"
    ctype = (up.get("ChecksumType") or "").upper()
    want_type = "FULL_OBJECT" if rec.type == "FULL_OBJECT" else "COMPOSITE"
    if ctype and ctype != want_type:
        return f"checksum type {ctype}, not {want_type}"
    sc = up.get("StorageClass")
    if sc and sc != cfg.storage_class:
        return f"storage class {sc}, not {cfg.storage_class}"
    _ps, sizes = layout(rec.size, cfg)
    for p in parts:
        n = int(p.get("PartNumber", 0))
        if not 1 <= n <= len(sizes) or int(p.get("Size", -1)) != sizes[n - 1]:
            return f"part {n} of {p.get('Size')} bytes does not fit the part size {_ps}"
    return None


def _list_parts(store: S3Store, key: str, upload_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    first: dict[str, Any] = {}
    try:
        for page in store.client.get_paginator("list_parts").paginate(
            Bucket=store.bucket, Key=key, UploadId=upload_id
        ):
            first = first or page
            parts.extend(page.get("Parts", []))
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) == "NoSuchUpload":
            raise UploadGone(key) from None
        raise classify(exc, "listing the parts of an open upload") from None
    except Exception as exc:
        raise classify(exc, "listing the parts of an open upload") from None
    return parts, first


def open_uploads(store: S3Store, keys: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Open multipart uploads of the given keys (one ListMultipartUploads for all of them)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not keys:
        return out
    for up in store.list_uploads():
        if up.get("Key") in keys:
            out.setdefault(up["Key"], []).append(up)
    return out


def choose(
    store: S3Store, key: str, uploads: list[dict[str, Any]], rec: ObjRec, cfg: BackupConfig
) -> Resumable | None:
    """The open upload to resume for ``key`` (None: send afresh); every other one is aborted."""
    best: Resumable | None = None
    losers: list[tuple[str, str]] = []
    for up in uploads:
        try:
            parts, page = _list_parts(store, key, up["UploadId"])
        except UploadGone:
            continue
        why = _compatible({**page, **{k: v for k, v in up.items() if v}}, parts, rec, cfg)
        if why is not None:
            log.info("open upload of %s cannot be resumed (%s); aborting it", key, why)
            losers.append((up["UploadId"], why))
            continue
        cand = Resumable(
            key, up["UploadId"], layout(rec.size, cfg)[0], {int(p["PartNumber"]): p for p in parts}
        )
        if best is None or cand.stored_bytes > best.stored_bytes:
            if best is not None:
                losers.append((best.upload_id, "another open upload holds more"))
            best = cand
        else:
            losers.append((cand.upload_id, "another open upload holds more"))
    for upload_id, _why in losers:  # only now: the chosen one is never among them
        store.abort_upload(key, upload_id)
    return best


def _part_checksum(data_crc: int | None, sha: Any, algorithm: str) -> str:
    if algorithm == "CRC64NVME":
        assert data_crc is not None
        return b64(data_crc.to_bytes(8, "big"))
    return b64(sha.digest())


def _hash_part(path: str, offset: int, size: int, algorithm: str) -> tuple[str, str]:
    """(checksum in the upload's algorithm, md5 hex) of one part of the local file."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha256() if algorithm == "SHA256" else None
    crc = 0 if algorithm == "CRC64NVME" else None
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        left = size
        while left:
            chunk = f.read(min(READ, left))
            if not chunk:
                raise OSError(f"{path} is shorter than when it was hashed")
            left -= len(chunk)
            md5.update(chunk)
            if sha is not None:
                sha.update(chunk)
            if crc is not None:
                crc = checksums.crc64nvme(chunk, crc)
    return _part_checksum(crc, sha, algorithm), md5.hexdigest()


def _matches(stored: dict[str, Any], checksum: str, md5_hex: str, algorithm: str) -> bool:
    theirs = stored.get(f"Checksum{algorithm}")
    if theirs:
        return theirs.split("-")[0] == checksum
    m = _MD5_ETAG.match(str(stored.get("ETag", "")))
    return bool(m) and m.group(1) == md5_hex


def resume_upload(
    store: S3Store,
    path: str,
    res: Resumable,
    rec: ObjRec,
    cfg: BackupConfig,
    on_part: Callable[[int], None],
    tick: Callable[[], None],
) -> int:
    """Finish the open upload ``res`` from the local file; returns the bytes sent.

    Raises UploadGone when the upload vanished meanwhile; any other failure as the transfer
    manager would (the caller classifies it). ``on_part(n_bytes)`` after each part is settled,
    ``tick()`` from the calling thread about every 0.2 s (lease refresh, progress)."""
    _ps, sizes = layout(rec.size, cfg)
    algo = rec.algorithm
    done: dict[int, str] = {}  # number -> ETag
    sums: dict[int, str] = {}
    sent = 0

    def settle_part(n: int) -> tuple[int, bool]:
        offset = (n - 1) * res.part_size
        checksum, md5_hex = _hash_part(path, offset, sizes[n - 1], algo)
        sums[n] = checksum
        stored = res.parts.get(n)
        if stored is not None and _matches(stored, checksum, md5_hex, algo):
            done[n] = stored["ETag"]
            return n, False
        if stored is not None:
            log.info("part %d of %s in the store does not match the local file; sending it again", n, res.key)
        with ReadFileChunk.from_filename(path, offset, sizes[n - 1], enable_callbacks=False) as body:
            try:
                resp = store.client.upload_part(
                    Bucket=store.bucket, Key=res.key, UploadId=res.upload_id, PartNumber=n, Body=body,
                    ChecksumAlgorithm=algo, **{f"Checksum{algo}": checksum},
                )  # fmt: skip
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) == "NoSuchUpload":
                    raise UploadGone(res.key) from None
                raise
        done[n] = resp["ETag"]
        return n, True

    with ThreadPoolExecutor(max_workers=cfg.max_concurrency, thread_name_prefix="resume") as pool:
        futs = {pool.submit(settle_part, n) for n in range(1, len(sizes) + 1)}
        try:
            while futs:
                finished, futs = wait(futs, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in finished:
                    n, was_sent = fut.result()
                    sent += sizes[n - 1] if was_sent else 0
                    on_part(sizes[n - 1])
                tick()
        except BaseException:
            for fut in futs:
                fut.cancel()
            raise
    log.info(
        "resuming the upload of %s: %d of %d bytes were already in the store",
        res.key,
        rec.size - sent,
        rec.size,
    )
    extra: dict[str, Any] = {}
    if rec.type == "FULL_OBJECT":
        extra = {f"Checksum{algo}": rec.checksum, "ChecksumType": "FULL_OBJECT"}
    parts = [{"PartNumber": n, "ETag": done[n], f"Checksum{algo}": sums[n]} for n in range(1, len(sizes) + 1)]
    try:
        store.client.complete_multipart_upload(
            Bucket=store.bucket,
            Key=res.key,
            UploadId=res.upload_id,
            MultipartUpload={"Parts": parts},
            **extra,
        )
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code"))
        if code in _REFUSED:  # the store will not complete this upload as we laid it out
            log.info(
                "the store refused to complete the resumed upload of %s (%s); sending it afresh",
                res.key,
                code,
            )
            store.abort_upload(res.key, res.upload_id)
            raise UploadGone(res.key) from None
        if code == "NoSuchUpload":
            raise UploadGone(res.key) from None
        raise
    return sent
